"""Face-free stand-in images (a colour gradient with a caption) for tests, the benchmark and screenshots.

Committed screenshots and test alerts must never show a real person, so alerts made outside the real
pipeline carry these instead of crops.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def gradient_jpeg(caption: str, hue: float, size: tuple[int, int] = (320, 320), quality: int = 85) -> bytes:
    """A JPEG of `size` pixels: a diagonal gradient around `hue` (0..1) with `caption` centred on it."""
    width, height = size
    yy, xx = np.mgrid[0:height, 0:width]
    t = (xx / width + yy / height) / 2
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, 0.55, 1.0)
    base = np.array([r, g, b])
    dark = np.array(colorsys.hsv_to_rgb((hue + 0.15) % 1.0, 0.55, 1.0))
    rgb = ((1 - t)[..., None] * base * 0.35 + t[..., None] * dark * 0.85) * 255
    image = Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    font = _font(max(12, width // 10))
    lines = caption.split("\n")
    boxes = [draw.textbbox((0, 0), line, font=font) for line in lines]
    total = sum(b[3] - b[1] for b in boxes) + 8 * (len(lines) - 1)
    y = (height - total) // 2
    for line, box in zip(lines, boxes, strict=True):
        w, h = box[2] - box[0], box[3] - box[1]
        draw.text(((width - w) // 2 + 2, y + 2), line, font=font, fill=(0, 0, 0))
        draw.text(((width - w) // 2, y), line, font=font, fill=(255, 255, 255))
        y += h + 8
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def pixelated_scene_jpeg(caption: str, size: tuple[int, int] = (640, 360), block: int = 16) -> bytes:
    """A preview-like frame: a gradient scene coarsely pixelated (as unmatched faces are on the van)."""
    small = Image.open(io.BytesIO(gradient_jpeg(caption, 0.55, size))).resize(
        (size[0] // block, size[1] // block), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    small.resize(size, Image.Resampling.NEAREST).save(buf, "JPEG", quality=80)
    return buf.getvalue()
