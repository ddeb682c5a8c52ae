"""Reference images: check what a file really is and how big it would decode, before decoding it."""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from firmware.watchlist.errors import ImageTooLarge, NotAnImage, TruncatedImage

ALLOWED_FORMATS = ("JPEG", "PNG")
REFERENCE_JPEG_QUALITY = 90
REFERENCE_MAX_SIDE = 1024


def check_image(name: str, data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) in pixels of a JPEG or PNG that decodes completely; the pixel count is read from the
    header and refused above `max_pixels` before any pixel is decoded."""
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{name}: image declares too many pixels to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage(f"{name} is not an image (its content is neither JPEG nor PNG)") from exc
    with img:
        if img.format not in ALLOWED_FORMATS:
            raise NotAnImage(f"{name} is a {img.format} image; only JPEG and PNG are accepted")
        width, height = img.size
        if width * height > max_pixels:
            raise ImageTooLarge(f"{name} declares {width}x{height} pixels, more than the {max_pixels} "
                                "allowed (a decompression bomb, or a photo that should be downscaled)")
        if width < 1 or height < 1:
            raise NotAnImage(f"{name} declares an empty {width}x{height} image")
        if not _has_end_marker(img.format, data):
            raise TruncatedImage(f"{name}: image data is truncated or corrupt (no {img.format} end marker)")
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise TruncatedImage(f"{name}: image data is truncated or corrupt ({exc})") from exc
    return width, height


def _has_end_marker(fmt: str, data: bytes) -> bool:
    """A JPEG's end-of-image marker (in its last 4 KiB: some tools append a short trailer) or a PNG's IEND
    chunk at its end. Checked here because Pillow's own refusal of truncated files is a process-wide switch
    that any library may turn off (face_recognition does on import)."""
    if fmt == "JPEG":
        return b"\xff\xd9" in data[-4096:]
    return data[-12:-8] == b"\x00\x00\x00\x00" and data[-8:-4] == b"IEND"


def decode_bgr(data: bytes) -> np.ndarray:
    """An image already passed by `check_image` as an HxWx3 BGR uint8 array, turned upright by its EXIF
    orientation (phones store portraits sideways)."""
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img).convert("RGB")
    return np.ascontiguousarray(np.asarray(upright)[:, :, ::-1])


def reference_jpeg(image_bgr: np.ndarray) -> bytes:
    """The reference image stored with an entry: re-encoded (which drops EXIF, GPS and other metadata) and
    downscaled so its longer side is at most REFERENCE_MAX_SIDE pixels."""
    h, w = image_bgr.shape[:2]
    scale = REFERENCE_MAX_SIDE / max(h, w)
    if scale < 1:
        image_bgr = cv2.resize(image_bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, REFERENCE_JPEG_QUALITY])
    if not ok:
        raise ValueError("OpenCV could not encode the reference image as JPEG")
    return buf.tobytes()
