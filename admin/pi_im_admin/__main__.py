"""Command line: `python -m pi_im_admin serve` runs the console, `ensure-owner` creates the
first owner from a password file (first start on a device)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .settings import Settings


def main() -> int:
    parser = argparse.ArgumentParser(prog="pi-im-admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the console and API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--plain-http",
        action="store_true",
        help="serve without TLS (development only: passwords would cross the network in clear)",
    )
    owner = sub.add_parser("ensure-owner", help="create the first owner if there is none")
    owner.add_argument("--username", default="owner")
    owner.add_argument(
        "--password-file",
        required=True,
        help="file with the password, or - to read it from standard input",
    )
    args = parser.parse_args()

    if args.command == "serve":
        import logging

        import uvicorn

        from .app import create_app

        settings = Settings()
        if settings.tls_pem is None and not args.plain_http:
            parser.error("no TLS certificate was handed over (LoadCredential=tls.pem:...)")
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        # Each call to ejabberd's API (the dashboard's sample, every minute) was a journal
        # entry, and each entry rewrites a few pages of the journal on the card; failures
        # are still logged, by the console itself.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        uvicorn.run(
            create_app(settings),
            host=args.host,
            port=args.port,
            proxy_headers=False,
            server_header=False,
            log_level="info",
            # Its access log prints whole URLs; the app's own (middleware.AccessLog) does not.
            access_log=False,
            ssl_certfile=settings.tls_pem,
            # TLS 1.2 or newer with forward secrecy and AEAD only, like ejabberd's listeners.
            ssl_ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",
        )
        return 0

    from .app import build_context
    from .services import operators

    ctx = build_context(Settings())
    source = sys.stdin.read() if args.password_file == "-" else Path(args.password_file).read_text()
    created = operators.ensure_owner(ctx, args.username, source.strip())
    print("created" if created else "exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
