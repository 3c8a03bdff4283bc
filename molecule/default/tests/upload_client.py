"""A real XEP-0363 client (slixmpp's plugin, which PUTs with aiohttp) run in a process of its
own: the tests start it with SSL_CERT_FILE naming the device's certificate, which Python's
TLS (the XMPP stream's and aiohttp's, fixed at import) then trusts. Reads the password on
stdin and prints one JSON result.

    upload_client.py ADDRESS JID upload FILE...     the announced GET URL of each file
    upload_client.py ADDRESS JID slot NAME SIZE     a slot requested by hand: its URLs, or
                                                    the server's error as the client sees it

ADDRESS is where the device is reached. Its name (the JID's domain, which the upload URLs
carry) resolves to ADDRESS in this process only: the line a LAN's DNS or mDNS would give.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp.connector
import aiohttp.resolver
import slixmpp
from slixmpp.exceptions import IqError

UPLOAD = "urn:xmpp:http:upload:0"


def resolve(name: str, address: str) -> None:
    """Answer `name` with `address`, and every other name as before."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(address if host == name else host, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    # aiohttp asks aiodns (which slixmpp pulls in) when it is there, and aiodns reads DNS
    # itself: the system's resolver instead, as aiohttp uses without it.
    aiohttp.connector.DefaultResolver = aiohttp.resolver.ThreadedResolver  # type: ignore[misc]


def error_of(error: IqError) -> dict[str, Any]:
    """The stanza error as XEP-0363 §5 shapes it: condition, text, and the limit if any."""
    stanza = error.iq["error"]
    limit = stanza.xml.find(f"{{{UPLOAD}}}file-too-large/{{{UPLOAD}}}max-file-size")
    return {
        "condition": stanza["condition"],
        "text": stanza["text"],
        "max_file_size": int(limit.text) if limit is not None else None,
    }


async def session(address: str, jid: str, password: str) -> slixmpp.ClientXMPP:
    client = slixmpp.ClientXMPP(jid, password)
    client.register_plugin("xep_0363")
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: started.set_result(None))
    client.add_event_handler(
        "failed_all_auth", lambda _: started.set_exception(PermissionError("login failed"))
    )
    client.connect(host=address, port=5222)
    await asyncio.wait_for(started, 30)
    return client


async def upload(client: slixmpp.ClientXMPP, files: list[str]) -> dict[str, Any]:
    urls = []
    for name in files:
        urls.append(await client["xep_0363"].upload_file(Path(name), timeout=30))
        # mod_http_upload_quota orders a user's files by mtime, in whole seconds.
        await asyncio.sleep(1.1)
    return {"urls": urls}


async def slot(client: slixmpp.ClientXMPP, name: str, size: str) -> dict[str, Any]:
    service = await client["xep_0363"].find_upload_service(timeout=30)
    try:
        answer = await client["xep_0363"].request_slot(
            service["from"], name, int(size), "application/octet-stream", timeout=30
        )
    except IqError as error:
        return {"error": error_of(error)}
    return {"put": answer["http_upload_slot"]["put"]["url"]}


async def main() -> None:
    address, jid, command, *rest = sys.argv[1:]
    password = sys.stdin.read().strip()
    resolve(slixmpp.JID(jid).domain, address)
    client = await session(address, jid, password)
    try:
        commands = {"upload": lambda: upload(client, rest), "slot": lambda: slot(client, *rest)}
        result = await commands[command]()
    finally:
        client.disconnect()
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
