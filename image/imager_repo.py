#!/usr/bin/env python3
"""Write a Raspberry Pi Imager repository file (os_list JSON) for one built image.

Imager checks `extract_sha256` against the uncompressed image it writes and refuses a
mismatch, so every size and checksum here is computed from the files themselves.

    image/imager_repo.py --img pi-im.img --xz pi-im.img.xz --url https://.../pi-im.img.xz \
        --out os_list.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

CHUNK = 1 << 20
NAME = "pi-im appliance (Raspberry Pi 4, 64-bit)"
DESCRIPTION = "Self-hosted chat: ejabberd, RabbitMQ and an admin console on :8080"


@dataclass(frozen=True)
class Digest:
    size: int
    sha256: str


def digest(path: Path) -> Digest:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return Digest(size, sha.hexdigest())


def os_entry(
    img: Path, xz: Path, url: str, released: date, name: str, description: str, icon: str = ""
) -> dict[str, object]:
    extracted, download = digest(img), digest(xz)
    if download.size >= extracted.size:
        raise ValueError(f"{xz} is not smaller than {img}: is it really the compressed image?")
    return {
        "name": name,
        "description": description,
        "icon": icon,
        "url": url,
        "extract_size": extracted.size,
        "extract_sha256": extracted.sha256,
        "image_download_size": download.size,
        "image_download_sha256": download.sha256,
        "release_date": released.isoformat(),
        "devices": ["pi4"],
        # Imager writes its OS customisation (host name, user, SSH key, Wi-Fi) as cloud-init
        # NoCloud files on the boot partition; the image reads them at first boot.
        "init_format": "cloudinit",
        "architecture": "armv8",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--img", type=Path, required=True, help="the uncompressed .img")
    parser.add_argument("--xz", type=Path, required=True, help="the .img.xz users download")
    parser.add_argument("--url", required=True, help="where the .img.xz will be served")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default=NAME)
    parser.add_argument("--description", default=DESCRIPTION)
    parser.add_argument("--icon", default="")
    parser.add_argument("--release-date", type=date.fromisoformat, default=date.today())
    args = parser.parse_args()
    for path in (args.img, args.xz):
        if not path.is_file():
            parser.error(f"{path} does not exist")
    entry = os_entry(
        args.img, args.xz, args.url, args.release_date, args.name, args.description, args.icon
    )
    args.out.write_text(json.dumps({"os_list": [entry]}, indent=2) + "\n")
    print(f"wrote {args.out}: {entry['extract_size']} bytes, sha256 {entry['extract_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
