"""The bundle container: an uncompressed POSIX (ustar) tar, read entirely from memory with strict checks.

Why tar: every member carries its type, so links and devices are visible and refused; it is uncompressed,
so a member's size is the bytes it occupies (no zip-bomb ratio); standard tools can list it for an audit.
Nothing is ever extracted to disk (no `extractall`): members are read into a dict after their name, type
and size passed the checks, and the bytes after the last member must be the all-zero end-of-archive marker.
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
)
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import check_relative_path

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
_END_MARKER = 2 * tarfile.BLOCKSIZE


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


def _kind(info: tarfile.TarInfo) -> str:
    if info.isdir():
        return "a directory"
    if info.ischr() or info.isblk():
        return "a device"
    if info.isfifo():
        return "a fifo"
    if info.issparse():
        return "a sparse file"
    return f"of tar type {info.type!r}"


def read_archive(data: bytes, limits: BundleLimits) -> dict[str, bytes]:
    """Every member of the archive in `data` by name, after refusing unsafe names, links, devices,
    oversized or duplicate members, too many members, and anything but zeros after the end."""
    members: dict[str, bytes] = {}
    try:
        tf = tarfile.open(fileobj=io.BytesIO(data), mode="r:")
    except tarfile.TarError as exc:
        raise ArchiveCorrupt(f"not an uncompressed tar bundle: {exc}") from exc
    try:
        while (info := tf.next()) is not None:
            if len(members) >= limits.max_members:
                raise ArchiveCorrupt(f"more than {limits.max_members} members; the limit is "
                                     f"{limits.max_entries} images plus manifest and signature")
            name = info.name
            check_relative_path(name, "archive member")
            if info.issym() or info.islnk():
                kind = "symbolic" if info.issym() else "hard"
                raise LinkMember(f"archive member {name!r} is a {kind} link (to {info.linkname!r}); "
                                 "bundles hold regular files only")
            if not info.isreg() or info.issparse():
                raise SpecialMember(f"archive member {name!r} is {_kind(info)}; "
                                    "bundles hold regular files only")
            if info.size > limits.max_member_bytes:
                raise MemberTooLarge(f"archive member {name!r} is {info.size} bytes, more than the "
                                     f"{limits.max_member_bytes} allowed")
            if name in members:
                raise DuplicateMember(f"archive member {name!r} appears twice")
            fh = tf.extractfile(info)
            content = fh.read() if fh is not None else b""
            if len(content) != info.size:
                raise ArchiveCorrupt(f"archive member {name!r} is cut short: the bundle is truncated")
            members[name] = content
    except tarfile.TarError as exc:
        raise ArchiveCorrupt(f"the bundle is truncated or corrupt: {exc}") from exc
    tail = data[tf.offset:]
    if len(tail) < _END_MARKER or tail.strip(b"\x00"):
        raise ArchiveCorrupt("the bundle does not end with the tar end-of-archive marker: it is truncated or "
                             "has data hidden after its last member")
    return members
