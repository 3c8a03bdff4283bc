"""Input rules of the admin service, checked without any service running."""

from __future__ import annotations

import pytest

from pi_im_admin import validation
from pi_im_admin.errors import Problem


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Alice", "alice"),
        ("  bob ", "bob"),
        ("zoë", "zoë"),
        ("zoe\u0308", "zoë"),  # NFKC composes
        ("o.brien-2", "o.brien-2"),
        # What ejabberd's nodeprep makes of them, so the console compares the same names.
        ("\uff41\uff44\uff4d\uff49\uff4e", "admin"),  # fullwidth
        ("ADMIN", "admin"),
        ("stra\u00dfe", "strasse"),  # case folding (table B.2)
        ("\u212aelvin", "kelvin"),  # KELVIN SIGN
        ("\ufb01le", "file"),  # the fi ligature
        ("zero\u200bwidth", "zerowidth"),  # table B.1: mapped to nothing
        ("ad\u00admin", "admin"),  # soft hyphen: B.1 too
    ],
)
def test_localpart_canonical_form(raw: str, canonical: str) -> None:
    assert validation.localpart(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("a@b", "may not contain @"),
        ("a/b", "may not contain /"),
        ('say"hi', 'may not contain "'),
        ("tab\there", "spaces or control"),
        ("no\u00a0break", "spaces or control"),
        ("\u200e" + "rtl", "spaces or control"),
        ("\u05d0a\u05d0", "right-to-left"),
        ("\u0221x", "unassigned"),
        ("é" * 600, "longer than XMPP allows"),
    ],
)
def test_localpart_refusals(raw: str, message: str) -> None:
    with pytest.raises(Problem, match=message):
        validation.localpart(raw)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "too short"),
        ("aaaaaaaaaaaa", "too few different"),
        ("raspberrypi", "too easy"),
        ("alice-rocks-2026", "too easy"),
        # What ejabberd refuses ("The password contains unacceptable characters", a 500
        # that reached the console as a 503, found by the fuzzer): a 400 saying why.
        ("tab\there-and-more", "control, private-use or unassigned"),
        ("no-break\u00a0space-here", "spaces other than the ordinary one"),
        ("private\ue000use-char", "control, private-use or unassigned"),
        ("mixed \u05d0\u05d1 hebrew latin", "mix right-to-left"),
        ("\u00e9\u00e8\u00ea\u00eb" * 130, "at most 1023 bytes"),
    ],
)
def test_weak_passwords(password: str, message: str) -> None:
    with pytest.raises(Problem, match=message):
        validation.password(password, "alice")


def test_strong_password_accepted() -> None:
    assert validation.password("correct horse battery", "alice") == "correct horse battery"
    hebrew = "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u05d8\u05d5\u05d1"
    assert validation.password(hebrew) == hebrew


@pytest.mark.parametrize("raw", ["-dash", "UPPER ok?", "a" * 65, "", "sp ace"])
def test_group_names(raw: str) -> None:
    with pytest.raises(Problem, match="lower-case letters"):
        validation.name(raw, "group")


@pytest.mark.parametrize(
    "raw",
    ["\u0099", "a\x00b", "bell\x07", "lone \ud800 surrogate", "not a \ufffe character", "\ufdd0"],
)
def test_text_refuses_what_xml_cannot_carry(raw: str) -> None:
    with pytest.raises(Problem, match="control characters"):
        validation.text(raw, "reason", 500)
    with pytest.raises(Problem, match="control characters"):
        validation.text(raw, "announcement", 10000, multiline=True)


def test_text_line_breaks_only_where_several_lines_belong() -> None:
    assert validation.text(" two\nlines\t ", "announcement", 100, multiline=True) == "two\nlines"
    with pytest.raises(Problem, match="line breaks"):
        validation.text("two\nlines", "reason", 100)


def test_text_keeps_what_people_write_and_bounds_it() -> None:
    written = "Spam 🙈 — zoë, 東京, emoji with a joiner: 👩\u200d💻"
    assert validation.text(f"  {written}  ", "reason", 500) == written
    with pytest.raises(Problem, match="too long"):
        validation.text("x" * 501, "reason", 500)
