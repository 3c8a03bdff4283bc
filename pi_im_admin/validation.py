"""Input rules: XMPP localparts (RFC 7622), passwords, group and room names."""

from __future__ import annotations

import re
import unicodedata

from .errors import Problem

# RFC 7622 section 3.3.1: these may not appear in a localpart.
_FORBIDDEN = set("\"&'/:<>@")
_COMMON = {
    "password",
    "password1",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "iloveyou",
    "letmein123",
    "welcome123",
    "admin12345",
    "changeme12",
    "raspberry1",
    "raspberrypi",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 10


def localpart(raw: str) -> str:
    """The canonical form of an XMPP localpart, or a Problem saying what is wrong with it."""
    value = unicodedata.normalize("NFC", raw.strip()).lower()
    if not value:
        raise Problem("The user name is empty.")
    if len(value.encode()) > 1023:
        raise Problem("The user name is longer than XMPP allows (1023 bytes).")
    bad = sorted({c for c in value if c in _FORBIDDEN})
    if bad:
        raise Problem(f"A user name may not contain {' '.join(bad)} (XMPP address rules).")
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zs", "Zl", "Zp"} for c in value):
        raise Problem("A user name may not contain spaces or control characters.")
    return value


def password(value: str, username: str = "") -> str:
    """A password strong enough for an account reachable from the network."""
    if len(value) < MIN_PASSWORD:
        raise Problem(f"The password is too short: use at least {MIN_PASSWORD} characters.")
    if len(value) > 1024:
        raise Problem("The password is too long (at most 1024 characters).")
    if len(set(value)) < 4:
        raise Problem("The password repeats too few different characters.")
    if value.lower() in _COMMON or (username and username.lower() in value.lower()):
        raise Problem("The password is too easy to guess (common, or contains the user name).")
    return value


def name(value: str, what: str) -> str:
    """Group, room and operator names: lower-case letters, digits, '.', '_' and '-'."""
    value = value.strip().lower()
    if not _NAME.match(value):
        raise Problem(
            f"The {what} name must be 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return value
