"""Client of ejabberd's admin API (mod_http_api on 127.0.0.1). The console keeps no copy of
XMPP accounts: every read and change goes through here."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from .errors import Conflict, NotFound, Problem, Unavailable

# The API version each command is asked in, so both releases the appliance runs on (ejabberd
# 23.01 and 24.12) take the same arguments and answer alike: version 1 is every command's
# original form on both (24.12's default is its newest: kick_user answers a text, set_room_
# affiliation takes a user and a host), answered without 23.01's {"name": value} wrapping;
# srg_create's version 1 (24.02) takes a list of groups to display, its version 0 one name.
# The version goes before the command (/api/v1/stats): 23.01 reads it only from there.
API_VERSION = 1
API_VERSIONS = {"srg_create": 0}


def _bare(result: Any) -> Any:
    """A single result comes bare or wrapped in a one-key object: {"stat": 3}, and 23.01's
    {"result": "ok"} for text."""
    if isinstance(result, dict) and len(result) == 1:
        return next(iter(result.values()))
    return result


def _number(result: Any) -> int:
    return int(_bare(result))


def _text(result: Any) -> str:
    return str(_bare(result))


def trusting(pem: Path) -> ssl.SSLContext:
    """TLS that trusts exactly the device's certificate: the API is reached as 127.0.0.1,
    which no certificate names, so the certificate itself is the check."""
    context = ssl.create_default_context(cafile=str(pem))
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


class Ejabberd:
    def __init__(
        self,
        api_url: str,
        domain: str,
        credentials: tuple[str, str] | None = None,
        certificate: Path | None = None,
    ):
        self.domain = domain
        self.muc_service = f"conference.{domain}"
        self._http = httpx.AsyncClient(
            base_url=api_url.rstrip("/") + "/",
            timeout=30,
            auth=credentials,
            verify=trusting(certificate) if certificate else True,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def call(self, command: str, **args: Any) -> Any:
        try:
            version = API_VERSIONS.get(command, API_VERSION)
            response = await self._http.post(f"v{version}/{command}", json=args)
        except httpx.HTTPError as error:
            raise Unavailable(f"ejabberd did not answer ({error.__class__.__name__}).") from error
        if response.status_code >= 500:
            raise Unavailable(f"ejabberd failed on {command}: {response.text[:200]}")
        body = response.json() if response.content else None
        # A command this ejabberd does not have (its module is not loaded) is a 400 with
        # this bare body: as absent as a 404.
        if response.status_code == 400 and body == "unknown_command":
            raise NotFound(f"ejabberd has no command {command}.")
        if response.status_code == 404 and isinstance(body, dict):
            raise NotFound(str(body.get("message", "not found")))
        if response.status_code == 409 and isinstance(body, dict):
            raise Conflict(str(body.get("message", "conflict")))
        if response.status_code >= 400:
            message = body.get("message") if isinstance(body, dict) else response.text
            raise Problem(f"ejabberd refused {command}: {message}")
        return body

    # Accounts

    async def users(self) -> list[str]:
        return sorted(await self.call("registered_users", host=self.domain))

    async def exists(self, user: str) -> bool:
        return await self.call("check_account", user=user, host=self.domain) == 0

    async def register(self, user: str, password: str) -> None:
        await self.call("register", user=user, host=self.domain, password=password)

    async def unregister(self, user: str) -> None:
        await self.call("unregister", user=user, host=self.domain)

    async def set_password(self, user: str, password: str) -> None:
        await self.call("change_password", user=user, host=self.domain, newpass=password)

    async def kick(self, user: str) -> int:
        return _number(await self.call("kick_user", user=user, host=self.domain))

    async def ban(self, user: str, reason: str) -> None:
        await self.call("ban_account", user=user, host=self.domain, reason=reason)

    async def sessions(self, user: str) -> list[dict[str, Any]]:
        return list(await self.call("user_sessions_info", user=user, host=self.domain))

    async def online(self) -> set[str]:
        """Bare localparts of every connected user of the domain."""
        suffix = "@" + self.domain
        online = set()
        for full_jid in await self.call("connected_users"):
            bare = str(full_jid).split("/", 1)[0]
            if bare.endswith(suffix):
                online.add(bare[: -len(suffix)])
        return online

    # Shared roster groups: members of a group see each other in their contact lists.

    async def groups(self) -> list[str]:
        return sorted(await self.call("srg_list", host=self.domain))

    async def group_info(self, group: str) -> dict[str, str]:
        info = await self.call("srg_get_info", group=group, host=self.domain)
        return {str(item["key"]): str(item["value"]) for item in info}

    async def group_members(self, group: str) -> list[str]:
        members = await self.call("srg_get_members", group=group, host=self.domain)
        return sorted(str(m).split("@", 1)[0] for m in members)

    async def create_group(self, group: str, label: str, description: str) -> None:
        await self.call(
            "srg_create",
            group=group,
            host=self.domain,
            label=label,
            description=description,
            display=group,
        )

    async def delete_group(self, group: str) -> None:
        await self.call("srg_delete", group=group, host=self.domain)

    async def add_to_group(self, user: str, group: str) -> None:
        await self.call(
            "srg_user_add", user=user, host=self.domain, group=group, grouphost=self.domain
        )

    async def remove_from_group(self, user: str, group: str) -> None:
        await self.call(
            "srg_user_del", user=user, host=self.domain, group=group, grouphost=self.domain
        )

    # Group chats (MUC rooms), persistent and members-only.

    async def rooms(self) -> list[str]:
        rooms = await self.call("muc_online_rooms", service=self.muc_service)
        return sorted(str(r).split("@", 1)[0] for r in rooms)

    async def create_room(self, room: str, title: str) -> None:
        options = [
            {"name": "persistent", "value": "true"},
            {"name": "members_only", "value": "true"},
            {"name": "title", "value": title},
            {"name": "mam", "value": "true"},
        ]
        await self.call(
            "create_room_with_opts",
            name=room,
            service=self.muc_service,
            host=self.domain,
            options=options,
        )

    async def destroy_room(self, room: str) -> None:
        await self.call("destroy_room", name=room, service=self.muc_service)

    async def room_members(self, room: str) -> list[str]:
        affiliations = await self.call("get_room_affiliations", name=room, service=self.muc_service)
        return sorted(
            str(a["username"])
            for a in affiliations
            if a.get("domain") == self.domain
            and a.get("affiliation") in ("member", "admin", "owner")
        )

    async def set_room_member(self, room: str, user: str, member: bool) -> None:
        await self.call(
            "set_room_affiliation",
            name=room,
            service=self.muc_service,
            jid=f"{user}@{self.domain}",
            affiliation="member" if member else "none",
        )

    # Messages and server state.

    async def send(
        self, sender: str, to: str, subject: str, body: str, kind: str = "normal"
    ) -> None:
        await self.call(
            "send_message",
            type=kind,
            to=to,
            subject=subject,
            body=body,
            **{"from": f"{sender}@{self.domain}"},
        )

    async def stat(self, name: str) -> int:
        return _number(await self.call("stats", name=name))

    async def event_bus_status(self) -> dict[str, object] | None:
        """How the server's events reach RabbitMQ (the appliance's mod_event_bus); None when
        no events are published."""
        try:
            status = await self.call("event_bus_status", host=self.domain)
        except NotFound:
            return None
        counts = ("buffered", "in_flight", "confirmed", "dropped")
        return {
            "connected": str(status["connected"]).lower() == "true",
            **{name: int(status[name]) for name in counts},
            "last_error": str(status["last_error"]),
        }

    async def set_moderation_rules(self, rules: str) -> str:
        """The moderation list (mod_moderation's JSON document): "ok", or why ejabberd did
        not take it (nothing changed then). NotFound when moderation is off."""
        return _text(await self.call("moderation_set_rules", host=self.domain, rules=rules))

    async def moderation_rules(self) -> str:
        """The list ejabberd applies, as last set."""
        return _text(await self.call("moderation_rules", host=self.domain))

    async def set_bots(self, bots: str) -> str:
        """The bots (mod_bots's JSON document): "ok", or why ejabberd did not take it."""
        return _text(await self.call("bots_set", host=self.domain, bots=bots))

    async def bots(self) -> str:
        """The bots ejabberd sends to the event bus, as last set."""
        return _text(await self.call("bots_list", host=self.domain))

    async def upload_usage(self) -> tuple[int, int] | None:
        """Bytes and files members have shared (XEP-0363); None when file sharing is off
        (the command comes with the appliance's mod_upload_space)."""
        try:
            usage = await self.call("upload_usage", host=self.domain)
        except NotFound:
            return None
        return int(usage["bytes"]), int(usage["files"])
