"""python -m pi_im_admin.webhooks: the dispatcher (the pi-im-webhooks service)."""

from __future__ import annotations

import asyncio
import logging

from .config import Config
from .dispatcher import Dispatcher


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # httpx logs each request with its URL at INFO; the deliveries page says what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(Dispatcher(Config()).run())


if __name__ == "__main__":
    main()
