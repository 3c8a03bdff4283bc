"""QR codes as inline SVG, drawn by the device (segno): no script, nothing fetched, and a
phone's camera reads them off the screen."""

from __future__ import annotations

import segno


def svg(text: str, title: str) -> str:
    """`text` as an SVG for an HTML page; `title` is what a screen reader says. Medium error
    correction and the standard four-module quiet zone, dark on white, whatever the page's
    colours."""
    code = segno.make(text, error="m", micro=False)
    return str(code.svg_inline(scale=5, border=4, dark="#000", light="#fff", title=title))
