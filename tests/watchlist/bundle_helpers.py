"""Plain helpers for the watchlist tests: constants of the test deployment, and ways to craft bad bundles
from a good one (edit members, re-sign a manifest, append a link or device member)."""

from __future__ import annotations

import errno
import functools
import io
import json
import struct
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.match.score import ScoreCalibration
from firmware.watchlist.archive import MANIFEST_NAME, SIGNATURE_NAME, read_archive, write_archive
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import parse_instant
from firmware.watchlist.signing import TrustedKey, fingerprint
from firmware.watchlist.verify import encode_signature, signed_message

VALID_FROM = "2026-11-22T06:00:00Z"
VALID_UNTIL = "2026-11-22T20:00:00Z"
NOW = parse_instant("2026-11-22T08:00:00Z", "now")
PEOPLE = 4
CATEGORIES = ("warrant", "wanted", "court-order conditions", "missing/vulnerable")

TEST_CALIBRATION = ScoreCalibration(slope=15.0, cosine_at_threshold=0.55, threshold=0.6, far=1e-6)

Build = Callable[..., Path]
"""The `build` fixture: build_bundle with good defaults, keyword overrides; returns the bundle path."""


@dataclass(frozen=True)
class Keys:
    private: Ed25519PrivateKey
    private_path: Path
    trusted_dir: Path
    trusted: dict[str, TrustedKey]


def lfw_faces(lfw_dir: Path, n: int) -> list[Path]:
    """The first image of the first `n` people (sorted by name) in the shared LFW copy."""
    people = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())[:n]
    return [sorted(p.glob("*.jpg"))[0] for p in people]


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def members_of(bundle: Path) -> dict[str, bytes]:
    """A built bundle's members, in archive order (manifest, signature, images)."""
    return read_archive(bundle.read_bytes(), BundleLimits())


def image_names(members: dict[str, bytes]) -> list[str]:
    return [n for n in members if n.startswith("images/")]


def write_members(path: Path, members: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    items = list(members.items()) if isinstance(members, dict) else members
    path.write_bytes(write_archive(items, NOW))
    return path


def resign(members: dict[str, bytes], key: Ed25519PrivateKey, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit the manifest as a dict and sign it again with `key`: a bundle a trusted key really signed."""
    doc = json.loads(members[MANIFEST_NAME])
    edit(doc)
    manifest = json.dumps(doc).encode()
    members[MANIFEST_NAME] = manifest
    members[SIGNATURE_NAME] = encode_signature(fingerprint(key.public_key()),
                                               key.sign(signed_message(manifest)))


def tar_with_extra(members: dict[str, bytes], extra: tarfile.TarInfo, data: bytes | None = None) -> bytes:
    """The good members plus one crafted member (a link, a device, an odd name) appended."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.USTAR_FORMAT) as tf:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
        if data is not None:
            extra.size = len(data)
        tf.addfile(extra, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


@functools.cache
def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A real, complete 1-bit PNG of width x height zeros: ~110 KB on disk, 900 Mpx once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes((width + 7) // 8)
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row * 1000) for _ in range(height // 1000)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class PulledStick(io.RawIOBase):
    """A bundle file whose USB stick is pulled after `after` bytes: reads then fail with EIO, as on Linux."""

    def __init__(self, data: bytes, after: int) -> None:
        self._data, self._after, self._pos = data, after, 0
        self.name = "/media/usb0/day.lfrw"

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._pos >= self._after:
            raise OSError(errno.EIO, "Input/output error")
        n = min(len(buf), self._after - self._pos)
        buf[:n] = self._data[self._pos:self._pos + n]
        self._pos += n
        return n
