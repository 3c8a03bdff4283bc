"""Input rules: XMPP localparts, passwords, group and room names."""

from __future__ import annotations

import re
import stringprep
import unicodedata

from .errors import Problem

# Nodeprep (RFC 6122 appendix A, the stringprep profile ejabberd 23.01 applies to every
# localpart): these may not appear in a localpart.
_FORBIDDEN = set("\"&'/:<>@")
# Stringprep's prohibited tables: resourceprep's (which ejabberd applies to passwords), and
# nodeprep's, the same and the ASCII space.
_RESOURCEPREP_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)
_NODEPREP_PROHIBITED = (stringprep.in_table_c11, *_RESOURCEPREP_PROHIBITED)
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


def nodeprep(raw: str) -> str:
    """The name ejabberd itself stores and compares: stringprep's nodeprep profile (map
    table B.1 away, case-fold with B.2, NFKC of Unicode 3.2), so fullwidth `admin` and `admin` are
    one account. A Problem for what the profile prohibits."""
    mapped = "".join(
        stringprep.map_table_b2(c) for c in raw.strip() if not stringprep.in_table_b1(c)
    )
    value = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)
    if not value:
        raise Problem("The user name is empty.")
    bad = sorted({c for c in value if c in _FORBIDDEN})
    if bad:
        raise Problem(f"A user name may not contain {' '.join(bad)} (XMPP address rules).")
    if any(check(c) for c in value for check in _NODEPREP_PROHIBITED):
        raise Problem("A user name may not contain spaces or control characters.")
    if any(stringprep.in_table_a1(c) for c in value):
        raise Problem("A user name may not contain characters unassigned in Unicode 3.2.")
    if _mixes_directions(value):
        raise Problem("A user name may not mix right-to-left and left-to-right letters.")
    return value


def localpart(raw: str) -> str:
    """The canonical form of an XMPP localpart, or a Problem saying what is wrong with it."""
    value = nodeprep(raw)
    if len(value.encode()) > 1023:
        raise Problem("The user name is longer than XMPP allows (1023 bytes).")
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
    # ejabberd takes only what stringprep's resourceprep profile takes.
    if any(check(c) for c in value for check in _RESOURCEPREP_PROHIBITED) or any(
        stringprep.in_table_a1(c) for c in value
    ):
        raise Problem(
            "The password may not contain control, private-use or unassigned characters, "
            "or spaces other than the ordinary one."
        )
    if _mixes_directions(value):
        raise Problem("The password may not mix right-to-left and left-to-right letters.")
    if len(value.encode()) > 1023:
        raise Problem("The password is too long (at most 1023 bytes).")
    return value


def _mixes_directions(value: str) -> bool:
    """Stringprep's bidirectional rule (RFC 3454 section 6), which nodeprep and resourceprep
    apply."""
    right_to_left = [stringprep.in_table_d1(c) for c in value]
    return any(right_to_left) and (
        any(stringprep.in_table_d2(c) for c in value)
        or not (right_to_left[0] and right_to_left[-1])
    )


def name(value: str, what: str) -> str:
    """Group, room and operator names: lower-case letters, digits, '.', '_' and '-'."""
    value = value.strip().lower()
    if not _NAME.match(value):
        raise Problem(
            f"The {what} name must be 1-64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return value


# What XML 1.0 cannot carry (ejabberd refuses the whole command) and what no reader wants:
# control characters, lone surrogates, non-characters. Line breaks only where text may
# have several lines.
_LINE_BREAKS = set("\t\n\r")


def _unwritable(char: str, multiline: bool) -> bool:
    code = ord(char)
    return not (multiline and char in _LINE_BREAKS) and (
        unicodedata.category(char) in ("Cc", "Cs")
        or 0xFDD0 <= code <= 0xFDEF
        or code & 0xFFFE == 0xFFFE
    )


def text(value: str, what: str, max_length: int, multiline: bool = False) -> str:
    """Free text that goes to ejabberd (a ban reason, an announcement): stripped, bounded,
    printable."""
    value = value.strip()
    if len(value) > max_length:
        raise Problem(f"The {what} is too long (at most {max_length} characters).")
    if any(_unwritable(char, multiline) for char in value):
        kind = "control characters" if multiline else "line breaks or control characters"
        raise Problem(f"The {what} may not contain {kind}.")
    return value


def writable(value: str, max_length: int) -> str:
    """Text from elsewhere (an AI service's answer) made what text() takes: what XML cannot
    carry left out, bounded."""
    return "".join(char for char in value if not _unwritable(char, True)).strip()[:max_length]
