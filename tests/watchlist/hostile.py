"""Hostile bundles as the external review (issue 13) and an attacker with a USB stick would make them: each
is a function of a good bundle's members and the trusted signing key, and names the refusal code expected.

Raw ustar headers are written by hand here (not through `tarfile`), so that the bytes are exactly what an
attacker controls: extension headers, GNU magic, base-256 sizes, bad checksums, names that are not UTF-8.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from bundle_helpers import NOW, image_names, resign
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.watchlist.archive import MANIFEST_NAME, SIGNATURE_NAME, write_archive
from firmware.watchlist.signing import fingerprint
from firmware.watchlist.verify import encode_signature, signed_message

Members = dict[str, bytes]
Maker = Callable[[Members, Ed25519PrivateKey], bytes]
USTAR = b"ustar\x0000"
GNU = b"ustar  \x00"


def header(name: bytes, size: int, typeflag: bytes = b"0", magic: bytes = USTAR,
           size_field: bytes | None = None, checksum_delta: int = 0) -> bytes:
    """One 512-byte tar header with the checksum computed (then shifted by `checksum_delta`)."""
    h = bytearray(512)
    h[0:len(name[:100])] = name[:100]
    h[100:108] = b"0000444\x00"
    h[108:116] = h[116:124] = b"0000000\x00"
    h[124:136] = size_field if size_field is not None else b"%011o\x00" % size
    h[136:148] = b"%011o\x00" % int(NOW)
    h[156:157] = typeflag
    h[257:265] = magic
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\x00 " % (sum(h) + checksum_delta)
    return bytes(h)


def member(name: bytes, data: bytes, **kw: Any) -> bytes:
    return header(name, len(data), **kw) + data + bytes(-len(data) % 512)


def archive(*parts: bytes) -> bytes:
    return b"".join(parts) + bytes(10240)


def good_parts(m: Members) -> list[bytes]:
    return [member(n.encode(), d) for n, d in m.items()]


def _pax_before(payload: bytes, typeflag: bytes) -> Maker:
    def make(m: Members, key: Ed25519PrivateKey) -> bytes:
        return archive(member(b"././@PaxHeader", payload, typeflag=typeflag), *good_parts(m))
    return make


def _gnu_long_name(m: Members, key: Ed25519PrivateKey) -> bytes:
    long = b"images/" + b"a" * 150 + b".jpg"
    return archive(member(b"././@LongLink", long + b"\x00", typeflag=b"L"), *good_parts(m))


def _gnu_magic(m: Members, key: Ed25519PrivateKey) -> bytes:
    return archive(*[member(n.encode(), d, magic=GNU) for n, d in m.items()])


def _bad_checksum(m: Members, key: Ed25519PrivateKey) -> bytes:
    (n0, d0), *rest = m.items()
    return archive(member(n0.encode(), d0, checksum_delta=1), *[member(n.encode(), d) for n, d in rest])


def _base256_size(m: Members, key: Ed25519PrivateKey) -> bytes:
    (n0, d0), *rest = m.items()
    field = b"\x80" + bytes(7) + struct.pack(">I", len(d0))
    return archive(member(n0.encode(), d0, size_field=field), *[member(n.encode(), d) for n, d in rest])


def _size_not_octal(m: Members, key: Ed25519PrivateKey) -> bytes:
    (n0, d0), *rest = m.items()
    return archive(member(n0.encode(), d0, size_field=b"0000000009a\x00"), *[member(n.encode(), d) for n, d in rest])


def _non_utf8_name(m: Members, key: Ed25519PrivateKey) -> bytes:
    return archive(*good_parts(m), member(b"images/\xff\xfe\x1b[31m.jpg", b"x"))


def _control_chars_in_name(m: Members, key: Ed25519PrivateKey) -> bytes:
    return archive(*good_parts(m), member("images/\u202e\x1b[2Jgpj.exe".encode(), b"x"))


def _huge_size(m: Members, key: Ed25519PrivateKey) -> bytes:
    (n0, d0), *_ = m.items()
    return archive(header(n0.encode(), 0o77777777777) + d0)


def _with_signature(sig: bytes) -> Maker:
    def make(m: Members, key: Ed25519PrivateKey) -> bytes:
        return write_archive([*{**m, SIGNATURE_NAME: sig}.items()], NOW)
    return make


def _resigned(edit: Callable[[dict[str, Any]], None]) -> Maker:
    def make(m: Members, key: Ed25519PrivateKey) -> bytes:
        m = dict(m)
        resign(m, key, edit)
        return write_archive(list(m.items()), NOW)
    return make


def _manifest_deep(m: Members, key: Ed25519PrivateKey) -> bytes:
    """A manifest a trusted key signed that would drive a recursive JSON parser 200,000 levels deep."""
    m = dict(m)
    m[MANIFEST_NAME] = b"[" * 200_000
    m[SIGNATURE_NAME] = encode_signature(fingerprint(key.public_key()),
                                         key.sign(signed_message(m[MANIFEST_NAME])))
    return write_archive(list(m.items()), NOW)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def face_png(jpeg: bytes, *extra_chunks: bytes) -> bytes:
    """The face of `jpeg` as a PNG with `extra_chunks` inserted right after its IHDR chunk."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    ok, buf = cv2.imencode(".png", image)
    assert ok
    png = buf.tobytes()
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + b"".join(extra_chunks) + png[ihdr_end:]


def _bomb_8mb() -> bytes:
    return zlib.compress(bytes(8 * 1024 * 1024), 9)


def _png_image(*chunks: Callable[[], bytes]) -> Maker:
    """The first image replaced by a PNG of the same face carrying `chunks`, re-signed (a trusted key really
    signed it: the checks after the signature must hold too, the image is read by verify, import and build)."""
    def make(m: Members, key: Ed25519PrivateKey) -> bytes:
        m = dict(m)
        first = image_names(m)[0]
        m[first] = face_png(m[first], *(c() for c in chunks))
        digest = hashlib.sha256(m[first]).hexdigest()
        resign(m, key, lambda d: d["entries"][0].update(sha256=digest))
        return write_archive(list(m.items()), NOW)
    return make


def _iccp() -> bytes:
    return png_chunk(b"iCCP", b"icc\x00\x00" + _bomb_8mb())


def _ztxt() -> bytes:
    return png_chunk(b"zTXt", b"Comment\x00\x00" + _bomb_8mb())


def _itxt() -> bytes:
    return png_chunk(b"iTXt", b"Comment\x00\x01\x00en\x00\x00" + _bomb_8mb())


def _short_phys() -> bytes:
    """Pillow raises a bare ValueError ("Truncated pHYs chunk") on this while opening the file."""
    return png_chunk(b"pHYs", b"\x01")


PAX_DIGITS = b"9" * 240_000 + b" path=x\n"
"""A pax record whose length field has 240,000 digits: `tarfile` spent 87 s of CPU on it (issue 13)."""

HOSTILE: dict[str, tuple[Maker, str]] = {
    "pax header of 240,000 digits": (_pax_before(PAX_DIGITS, b"x"), "archive_corrupt"),
    "pax global header with unsigned data": (_pax_before(b"30 comment=unsigned payload!!\n", b"g"),
                                             "archive_corrupt"),
    "GNU.sparse.map=abc": (_pax_before(b"27 GNU.sparse.map=abc\n", b"x"), "archive_corrupt"),
    "GNU sparse member": (_pax_before(b"", b"S"), "archive_corrupt"),
    "GNU long name": (_gnu_long_name, "archive_corrupt"),
    "GNU magic": (_gnu_magic, "archive_corrupt"),
    "bad header checksum": (_bad_checksum, "archive_corrupt"),
    "base-256 size": (_base256_size, "archive_corrupt"),
    "size not octal": (_size_not_octal, "archive_corrupt"),
    "size of 8 GiB": (_huge_size, "member_too_large"),
    "member name not UTF-8": (_non_utf8_name, "unsafe_path"),
    "member name with control characters": (_control_chars_in_name, "extra_file"),
    "signature of 200,000 nested [": (_with_signature(b"[" * 200_000), "signature_malformed"),
    "signature nested 600 deep in 1 KiB": (_with_signature(b"[" * 600 + b"]" * 400), "signature_malformed"),
    "signature fields not text": (_with_signature(json.dumps(
        {"algorithm": ["ed25519"], "key_fingerprint": {"a": 1}, "signature": 7}).encode()),
        "signature_malformed"),
    "signature not ASCII": (_with_signature("{\"algorithm\": \"ed25519\u00e9\"}".encode()), "signature_malformed"),
    "manifest of 200,000 nested [ (signed)": (_manifest_deep, "manifest_invalid"),
    "created_at in 2099 (signed)": (_resigned(lambda d: d.update(created_at="2099-01-01T00:00:00Z")),
                                    "created_in_future"),
    "created_at 0001-01-01T00:00:00+14:00 (signed)": (
        _resigned(lambda d: d.update(created_at="0001-01-01T00:00:00+14:00")), "window_invalid"),
    "valid_until 9999-12-31T23:59:59-14:00 (signed)": (
        _resigned(lambda d: d.update(valid_until="9999-12-31T23:59:59-14:00")), "window_invalid"),
    "created_at not a date (signed)": (_resigned(lambda d: d.update(created_at="yesterday")), "window_invalid"),
    "PNG iCCP inflating to 8 MB (signed)": (_png_image(_iccp), "image_metadata_too_large"),
    "PNG zTXt inflating to 8 MB (signed)": (_png_image(_ztxt), "image_metadata_too_large"),
    "PNG iTXt inflating to 8 MB (signed)": (_png_image(_itxt), "image_metadata_too_large"),
    "PNG with a short pHYs chunk (signed)": (_png_image(_short_phys), "truncated_image"),
}
