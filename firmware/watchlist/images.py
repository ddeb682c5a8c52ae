"""Reference images: check what a file really is and how big it would decode, before decoding it."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from firmware.watchlist.errors import ImageMetadataTooLarge, ImageTooLarge, NotAnImage, TruncatedImage

ALLOWED_FORMATS = ("JPEG", "PNG")
REFERENCE_JPEG_QUALITY = 90
REFERENCE_MAX_SIDE = 1024
MAX_METADATA_CHUNK_BYTES = PngImagePlugin.MAX_TEXT_CHUNK
"""One compressed PNG metadata chunk (iCCP, zTXt, iTXt) may inflate to at most this (1 MiB, Pillow's own
limit, beyond which it raises a bare ValueError): an ICC profile or a caption is far smaller."""
MAX_METADATA_BYTES = 4 * MAX_METADATA_CHUNK_BYTES
"""All compressed metadata chunks of one PNG together, inflated."""
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Exceptions Pillow's decoders raise on malformed input besides OSError (seen: struct.error on short chunks,
# ValueError on bad modes, EOFError, IndexError and TypeError on crafted headers, zlib.error on bad data).
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error,
                   zlib.error, ZeroDivisionError, OverflowError)


def check_png_metadata(name: str, data: bytes) -> None:
    """Walk a PNG's chunks (one pass, no pixel decoded) and inflate each compressed metadata chunk only up
    to its limit: a 40 KB iCCP or zTXt chunk that inflates to 8 MB is refused here with its own code."""
    pos, total = len(_PNG_SIGNATURE), 0
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND":
            return
        if kind not in (b"iCCP", b"zTXt", b"iTXt"):
            continue
        compressed = _compressed_part(kind, body)
        if compressed is None:
            continue
        inflater = zlib.decompressobj()
        try:
            plain = inflater.decompress(compressed, MAX_METADATA_CHUNK_BYTES + 1)
        except zlib.error as exc:
            raise TruncatedImage(f"{name}: its {kind.decode()} chunk is corrupt ({exc})") from exc
        total += len(plain)
        if len(plain) > MAX_METADATA_CHUNK_BYTES or total > MAX_METADATA_BYTES:
            raise ImageMetadataTooLarge(
                f"{name}: its {kind.decode()} metadata chunk inflates beyond the "
                f"{MAX_METADATA_CHUNK_BYTES if len(plain) > MAX_METADATA_CHUNK_BYTES else MAX_METADATA_BYTES}"
                " bytes allowed (a decompression bomb in the metadata)")


def _compressed_part(kind: bytes, body: bytes) -> bytes | None:
    """The zlib stream inside an iCCP / zTXt (name NUL method DATA) or a compressed iTXt chunk."""
    key_end = body.find(b"\x00")
    if key_end < 0:
        return None
    if kind != b"iTXt":
        return body[key_end + 2:]
    if body[key_end + 1:key_end + 2] != b"\x01":  # iTXt compression flag: 0 = plain text
        return None
    lang_end = body.find(b"\x00", key_end + 3)
    kw_end = body.find(b"\x00", lang_end + 1) if lang_end >= 0 else -1
    return body[kw_end + 1:] if kw_end >= 0 else None


def check_image(name: str, data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) in pixels of a JPEG or PNG that decodes completely; the pixel count is read from the
    header and refused above `max_pixels` before any pixel is decoded."""
    if data.startswith(_PNG_SIGNATURE):
        check_png_metadata(name, data)
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{name}: image declares too many pixels to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage(f"{name} is not an image (its content is neither JPEG nor PNG)") from exc
    except _DECODER_ERRORS as exc:
        raise TruncatedImage(f"{name}: image header is corrupt ({type(exc).__name__}: {exc})") from exc
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
        except _DECODER_ERRORS as exc:
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
        upright = ImageOps.exif_transpose(img)
        rgb = _to_8bit(upright).convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit greyscale images scaled to 8 bits. Pillow's convert("RGB") clips such values at
    255 instead of scaling them, so a 16-bit greyscale PNG came out almost all white and enrolled as
    "no face"; 8-bit modes, palettes and 16-bit colour (which Pillow reads as 8-bit) pass unchanged."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.clip(np.asarray(img).astype(np.int64), 0, 0xFFFF) >> 8
        return Image.fromarray(grey.astype(np.uint8), "L")
    if img.mode == "F":
        grey = np.clip(np.nan_to_num(np.asarray(img, dtype=np.float32)), 0, 255)
        return Image.fromarray(grey.astype(np.uint8), "L")
    return img


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
