"""Screenshots of the demo's RabbitMQ management UI while `make bench` runs: the events
exchange's message rates and the queues bound to it, for the benchmark records (docs/records).

    python scripts/management_screenshots.py OUT_DIR [--url http://127.0.0.1:15672]

Signs in as the demo's administrator (its password read with `pi-im-secret show` in the
container, never printed) with Debian's Chromium, waits for the rates to be drawn, and saves
exchange.png and queues.png.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
QUIET = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--url", default="http://127.0.0.1:15672")
    parser.add_argument("--container", default="pi-im-demo")
    args = parser.parse_args()
    password = subprocess.run(
        ["docker", "exec", args.container, "pi-im-secret", "show", "rabbitmq-admin-password"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(args.url)
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", password)
        page.click("input[type=submit]")
        page.wait_for_selector("#logout", timeout=30000)
        page.goto(f"{args.url}/#/exchanges/pi-im/pi-im.events")
        page.wait_for_timeout(12000)  # the UI polls every 5 s: two points of the rate chart
        page.screenshot(path=args.out / "exchange.png", full_page=True)
        page.goto(f"{args.url}/#/queues")
        page.wait_for_timeout(7000)
        page.screenshot(path=args.out / "queues.png", full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
