"""A webhook receiver for test_webhooks.py, run inside the device's network namespace (the
`netns` fixture) on the device's own network address: what a service on the local network
would be. Prints "listening", then one JSON line per request it answers. Reads commands on
stdin, one per line: "answer STATUS" (what it answers from now on), "slow SECONDS" (how
long it waits before answering) and "complete 1": answer as an OpenAI-compatible
chat-completions service would (test_bots.py's assistant), with the last question and how
many messages came with it.

    webhook_receiver.py ADDRESS PORT [CERT KEY]     with CERT and KEY: HTTPS
"""

from __future__ import annotations

import json
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

behaviour = {"answer": 200, "slow": 0.0, "complete": 0.0}
printing = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        answer, slow = int(behaviour["answer"]), float(behaviour["slow"])
        record = {
            "path": self.path,
            "headers": dict(self.headers.items()),
            "body": body.decode(),
            "answer": answer,
            "slow": slow,
            "at": time.time(),
        }
        with printing:
            print(json.dumps(record), flush=True)
        time.sleep(slow)
        reply = completion(body) if behaviour["complete"] and answer == 200 else b""
        self.send_response(answer)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


def completion(body: bytes) -> bytes:
    """A chat completion saying what it was asked, as OpenAI's API shapes one."""
    messages = json.loads(body)["messages"]
    said = f"You asked: {messages[-1]['content']} ({len(messages)} messages)"
    return json.dumps(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": json.loads(body)["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": said},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


def commands() -> None:
    for line in sys.stdin:
        what, _, value = line.strip().partition(" ")
        if what in behaviour:
            behaviour[what] = float(value)


def main() -> None:
    address, port = sys.argv[1], int(sys.argv[2])
    server = ThreadingHTTPServer((address, port), Handler)
    if len(sys.argv) > 3:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[3], sys.argv[4])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=commands, daemon=True).start()
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
