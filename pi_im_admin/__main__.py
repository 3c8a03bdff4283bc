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
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8080)
    owner = sub.add_parser("ensure-owner", help="create the first owner if there is none")
    owner.add_argument("--username", default="owner")
    owner.add_argument(
        "--password-file",
        required=True,
        help="file with the password, or - to read it from standard input",
    )
    args = parser.parse_args()

    if args.command == "serve":
        import uvicorn

        from .app import create_app

        uvicorn.run(
            create_app(),
            host=args.host,
            port=args.port,
            proxy_headers=False,
            server_header=False,
            log_level="info",
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
