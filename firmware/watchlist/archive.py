"""The bundle container: an uncompressed POSIX ustar archive, read from memory by a strict reader of our own.

Why tar: every member carries its type, so links and devices are visible and refused; it is uncompressed,
so a member's size is the bytes it occupies (no zip-bomb ratio); standard tools can list it for an audit.

Why not `tarfile` for reading: the container is parsed BEFORE the signature is checked, so whatever reads it
faces an attacker. `tarfile` understands pax, GNU long-name and sparse extensions, whose parsing is
quadratic in places (a pax header of 240,000 digits cost 87 s of CPU) or raises plain `ValueError`, and a
global pax header carries data outside every signed byte. This reader knows only plain ustar headers of
512 bytes: a regular file's name (prefix + name), its octal size and the header checksum. Every extension
header is refused as `archive_corrupt`; each header is read once and each member's bytes are sliced once,
so the time is linear in the file's size, bounded by the member count and size limits, and every failure is
a `BundleRefused` with its code. Nothing is ever extracted to disk.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence

from firmware.watchlist.errors import (
    ArchiveCorrupt,
    DuplicateMember,
    LinkMember,
    MemberTooLarge,
    SpecialMember,
    UnsafePath,
)
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import check_relative_path

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
BLOCK = 512
_END_MARKER = 2 * BLOCK
_USTAR_MAGIC = b"ustar\x0000"  # POSIX ustar: magic "ustar\0", version "00" (GNU tar's "ustar  \0" is refused)
_REGULAR = (b"0", b"\x00")
_LINKS = {b"1": "hard", b"2": "symbolic"}
_SPECIAL = {b"3": "a device (character)", b"4": "a device (block)", b"5": "a directory", b"6": "a fifo",
            b"7": "a contiguous file"}
_EXTENSIONS = {b"x": "a pax extended header", b"g": "a pax global header", b"L": "a GNU long-name header",
               b"K": "a GNU long-link header", b"S": "a GNU sparse file", b"D": "a GNU directory dump",
               b"M": "a GNU multi-volume continuation", b"V": "a GNU volume label"}


def write_archive(members: Sequence[tuple[str, bytes]], mtime: float) -> bytes:
    """An uncompressed ustar archive of regular files (mode 0444, owner 0:0, one mtime) in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(mtime), 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _octal(field: bytes, what: str, offset: int) -> int:
    """A ustar numeric field: octal digits, optionally space-padded in front and NUL/space-terminated.
    Base-256 (GNU binary) numbers and anything else are refused; fields are at most 12 bytes."""
    digits = field.rstrip(b"\x00 ").lstrip(b" ")
    if not digits or any(c not in b"01234567" for c in digits):
        raise ArchiveCorrupt(f"the tar header at byte {offset} has a malformed {what} field "
                             f"({field!r}): the bundle is corrupt")
    return int(digits, 8)


def _text(field: bytes) -> bytes:
    """A NUL-terminated ustar text field (the whole field when it holds no NUL)."""
    end = field.find(b"\x00")
    return field if end < 0 else field[:end]


def _member_name(header: bytes, offset: int) -> str:
    """prefix/name of a ustar header as UTF-8 text; a name that is not UTF-8 is refused, shown escaped."""
    name, prefix = _text(header[0:100]), _text(header[345:500])
    raw = prefix + b"/" + name if prefix else name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafePath(f"archive member {raw!r} (header at byte {offset}) has a name that is not UTF-8 "
                         "text") from exc


def _check_header(header: bytes, offset: int) -> None:
    if header[257:265] != _USTAR_MAGIC:
        raise ArchiveCorrupt(f"the header at byte {offset} is not a POSIX ustar header (magic "
                             f"{bytes(header[257:265])!r}): not an uncompressed ustar bundle, or corrupt")
    expected = _octal(header[148:156], "checksum", offset)
    actual = sum(header[:148]) + 8 * 0x20 + sum(header[156:])
    if expected != actual:
        raise ArchiveCorrupt(f"the tar header at byte {offset} fails its checksum: the bundle is corrupt")


def _check_type(typeflag: bytes, name: str, header: bytes) -> None:
    """Refuse links and special files (extension headers were refused before the name was looked at)."""
    if typeflag in _REGULAR:
        return
    if typeflag in _LINKS:
        target = _text(header[157:257]).decode("utf-8", "backslashreplace")
        raise LinkMember(f"archive member {name!r} is a {_LINKS[typeflag]} link (to {target!r}); "
                         "bundles hold regular files only")
    raise SpecialMember(f"archive member {name!r} is {_SPECIAL[typeflag]}; bundles hold regular files only")


def read_archive(data: bytes, limits: BundleLimits) -> dict[str, bytes]:
    """Every member of the archive in `data` by name, after refusing unsafe names, links, devices, extension
    headers, oversized or duplicate members, too many members, and anything but zeros after the end."""
    view = memoryview(data)
    members: dict[str, bytes] = {}
    offset = 0
    while True:
        header = bytes(view[offset:offset + BLOCK])
        if len(header) < BLOCK:
            raise ArchiveCorrupt("the bundle ends in the middle of a tar header or without the tar "
                                 "end-of-archive marker: it is truncated or not a tar archive")
        if not header.strip(b"\x00"):
            break  # the first zero block of the end-of-archive marker
        if len(members) >= limits.max_members:
            raise ArchiveCorrupt(f"more than {limits.max_members} members; the limit is "
                                 f"{limits.max_entries} images plus manifest and signature")
        _check_header(header, offset)
        name = _member_name(header, offset)
        typeflag = header[156:157]
        if typeflag not in _REGULAR and typeflag not in _LINKS and typeflag not in _SPECIAL:
            raise ArchiveCorrupt(f"archive member {name!r} is "
                                 f"{_EXTENSIONS.get(typeflag, f'of unknown tar type {typeflag!r}')}; bundles "
                                 "are plain ustar archives without extension headers")
        if typeflag == b"5":
            name = name.rstrip("/")  # tar writes a directory as "name/"; report it as a directory, below
        check_relative_path(name, "archive member")
        _check_type(typeflag, name, header)
        size = _octal(header[124:136], "size", offset)
        if size > limits.max_member_bytes:
            raise MemberTooLarge(f"archive member {name!r} is {size} bytes, more than the "
                                 f"{limits.max_member_bytes} allowed")
        if name in members:
            raise DuplicateMember(f"archive member {name!r} appears twice")
        start = offset + BLOCK
        if start + size > len(data):
            raise ArchiveCorrupt(f"archive member {name!r} is cut short: the bundle is truncated")
        members[name] = bytes(view[start:start + size])
        offset = start + -(-size // BLOCK) * BLOCK
    tail = view[offset:]
    if len(tail) < _END_MARKER or bytes(tail).strip(b"\x00"):
        raise ArchiveCorrupt("the bundle does not end with the tar end-of-archive marker: it is truncated or "
                             "has data hidden after its last member")
    return members
