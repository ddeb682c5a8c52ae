"""QR codes for pairing, drawn as SVG by `segno` (pure Python, no image libraries)."""

from __future__ import annotations

import io


def qr_svg(text: str) -> str:
    """An SVG QR code of `text` (error correction M, black on white, 6 px modules)."""
    import segno

    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="svg", scale=6, border=2, xmldecl=False,
                                                  svgns=True, dark="#000", light="#fff")
    return out.getvalue().decode("utf-8")
