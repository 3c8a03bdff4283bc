"""ejabberd's admin API lets the console's account call exactly the commands the console's
client uses (finding 7): one list in the role, the calls in admin/pi_im_admin/ejabberd.py."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).parents[1]


def test_the_api_permits_exactly_what_the_console_calls() -> None:
    client = (REPO / "admin/pi_im_admin/ejabberd.py").read_text()
    routers = "".join(p.read_text() for p in (REPO / "admin/pi_im_admin").rglob("*.py"))
    called = set(re.findall(r'self\.call\(\s*"([a-z_]+)"', client))
    called |= set(re.findall(r'ejabberd\.call\("([a-z_]+)"', routers))
    allowed = yaml.safe_load((REPO / "roles/ejabberd/vars/main.yml").read_text())[
        "__ejabberd_console_commands"
    ]
    assert len(called) > 20
    assert called == set(allowed)
