"""QR codes for pairing, drawn as SVG by `segno` (pure Python, no image libraries)."""

from __future__ import annotations

import io

QUIET_MODULES = 4
"""The quiet zone the QR specification asks for around the symbol, in modules."""
MODULE_PX = 5
"""CSS pixels per module on the operator's screen: phone cameras read 5 px modules at arm's length."""


def qr_svg(text: str) -> str:
    """An SVG QR code of `text` (error correction M, black on white) with a `viewBox`, so CSS may scale it
    without cutting it, and a width and height of `MODULE_PX` per module including the quiet zone."""
    import segno

    code = segno.make(text, error="m", micro=False)
    out = io.BytesIO()
    code.save(out, kind="svg", scale=1, border=QUIET_MODULES, xmldecl=False, svgns=True, omitsize=True,
              dark="#000", light="#fff", svgclass="qr")
    side = code.symbol_size(scale=MODULE_PX, border=QUIET_MODULES)[0]
    svg = out.getvalue().decode("utf-8")
    return svg.replace("<svg ", f'<svg width="{side}" height="{side}" ', 1)
