"""`lfr watchlist build`: turn a folder of reference images and an entries CSV into one signed bundle.

Every rule the importer applies is applied here first, and the finished bundle is read back through the
importer's own verification before it is written, so headquarters finds a bad list, not the van.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.hardware.clock import Clock
from firmware.watchlist.archive import MANIFEST_NAME, SIGNATURE_NAME, write_archive
from firmware.watchlist.errors import (
    BundleTooLarge,
    DuplicateId,
    EntriesCsvInvalid,
    Expired,
    ImageMissing,
    MemberTooLarge,
    NotAnImage,
    OutputExists,
    UnsafePath,
)
from firmware.watchlist.images import check_image
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import (
    BASE_CATEGORIES,
    IMAGE_SUFFIXES,
    IMAGES_PREFIX,
    MAX_PHOTOS,
    Entry,
    Manifest,
    Photo,
    check_entries,
    check_relative_path,
    check_text,
    check_window,
    format_instant,
)
from firmware.watchlist.signing import fingerprint, sign, trusted_from_public_keys
from firmware.watchlist.verify import encode_signature, open_bundle_bytes, signed_message

log = logging.getLogger(__name__)

CSV_COLUMNS = ("id", "name", "category", "reason", "image")
EXTRA_IMAGE_COLUMNS = tuple(f"image{i}" for i in range(2, MAX_PHOTOS + 1))  # optional: image2 .. image5
MAX_CSV_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class CsvRow:
    """One row of the entries CSV, cells stripped, with its line number for messages."""

    line: int
    id: str
    name: str
    category: str
    reason: str
    image: str
    more_images: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildResult:
    path: Path
    sha256: str
    size_bytes: int
    signer_fingerprint: str
    manifest: Manifest


def read_entries_csv(path: Path | str) -> list[CsvRow]:
    """Rows of an entries CSV whose header is id, name, category, reason, image (any order), optionally with
    image2 .. image5 for more reference photos of the same person (empty cells are skipped)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EntriesCsvInvalid(f"cannot read the entries CSV {path}: {exc}") from exc
    if len(raw) > MAX_CSV_BYTES:
        raise EntriesCsvInvalid(f"{path} is larger than {MAX_CSV_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EntriesCsvInvalid(f"{path} is not UTF-8 text: {exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        if not header:
            raise EntriesCsvInvalid(f"{path} is empty; expected a header {','.join(CSV_COLUMNS)}")
        missing = [c for c in CSV_COLUMNS if c not in header]
        extra = [h for h in header if h not in CSV_COLUMNS + EXTRA_IMAGE_COLUMNS]
        doubled = sorted({h for h in header if header.count(h) > 1})
        if missing or extra or doubled:
            problems = ([f"missing column(s) {', '.join(missing)}"] if missing else []) + \
                       ([f"unexpected column(s) {', '.join(map(repr, extra))}"] if extra else []) + \
                       ([f"repeated column(s) {', '.join(doubled)}"] if doubled else [])
            raise EntriesCsvInvalid(f"{path}: {'; '.join(problems)}; the columns must be exactly "
                                    f"{', '.join(CSV_COLUMNS)} (and optionally image2 .. image{MAX_PHOTOS})")
        rows: list[CsvRow] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise EntriesCsvInvalid(f"{path} line {reader.line_num}: {len(cells)} cells, expected "
                                        f"{len(header)} ({', '.join(header)})")
            cell = {h: c.strip() for h, c in zip(header, cells, strict=True)}
            rows.append(CsvRow(line=reader.line_num, id=cell["id"], name=cell["name"],
                               category=cell["category"].lower(), reason=cell["reason"], image=cell["image"],
                               more_images=tuple(cell[c] for c in EXTRA_IMAGE_COLUMNS if cell.get(c))))
    except csv.Error as exc:
        raise EntriesCsvInvalid(f"{path} line {reader.line_num}: malformed CSV: {exc}") from exc
    return rows


def _photo_names(images_dir: Path, row: CsvRow, where: str) -> list[str]:
    """The row's photo paths (relative to `images_dir`): its image columns, or, when `image` names a folder,
    the JPEG/PNG files in it (a folder per entry), sorted by name; 1..MAX_PHOTOS of them."""
    names = [row.image, *row.more_images]
    if len(names) == 1 and not row.image.lower().endswith(IMAGE_SUFFIXES):
        check_relative_path(row.image, f"{where}: image")
        folder = images_dir / row.image
        if folder.is_dir():
            if not folder.resolve().is_relative_to(images_dir.resolve()):
                raise UnsafePath(f"{where}: folder {row.image!r} resolves outside {images_dir}")
            names = sorted(f"{row.image.rstrip('/')}/{p.name}" for p in folder.iterdir()
                           if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
            if not names:
                raise ImageMissing(f"{where}: folder {folder} holds no {', '.join(IMAGE_SUFFIXES)} photo")
    if len(names) > MAX_PHOTOS:
        raise EntriesCsvInvalid(f"{where}: {len(names)} photos; at most {MAX_PHOTOS} per entry")
    return names


def _read_image_file(images_dir: Path, rel: str, where: str, limits: BundleLimits) -> bytes:
    check_relative_path(rel, f"{where}: image")
    if not rel.lower().endswith(IMAGE_SUFFIXES):
        raise NotAnImage(f"{where}: image {rel!r} must be a JPEG or PNG ending in "
                         f"{', '.join(IMAGE_SUFFIXES)}")
    path = images_dir / rel
    try:
        resolved = path.resolve(strict=True)
    except (FileNotFoundError, RuntimeError) as exc:
        raise ImageMissing(f"{where}: image {path} does not exist") from exc
    if not resolved.is_relative_to(images_dir.resolve()):
        raise UnsafePath(f"{where}: image {rel!r} resolves outside {images_dir} (through a symbolic link)")
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK)  # a fifo must not hang the build
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise UnsafePath(f"{where}: image {path} is not a regular file")
            if st.st_size > limits.max_member_bytes:
                raise MemberTooLarge(f"{where}: image {path} is {st.st_size} bytes, more than the "
                                     f"{limits.max_member_bytes} allowed (watchlist.max_image_mib)")
            return fh.read(limits.max_member_bytes + 1)
    except OSError as exc:
        raise ImageMissing(f"{where}: cannot read image {path}: {exc}") from exc


def build_bundle(*, images_dir: Path | str, entries_csv: Path | str, deployment_ref: str, valid_from: float,
                 valid_until: float, private_key: Ed25519PrivateKey, out: Path | str, created_by: str,
                 clock: Clock, limits: BundleLimits | None = None,
                 categories: Sequence[str] = BASE_CATEGORIES, overwrite: bool = False) -> BuildResult:
    """Check every entry and image, sign the manifest, verify the result as the van will, and write it
    atomically to `out` (a temporary file renamed into place: never a half-written bundle)."""
    limits = limits or BundleLimits()
    images_dir, out = Path(images_dir), Path(out)
    if not images_dir.is_dir():
        raise ImageMissing(f"images folder {images_dir} does not exist")
    if out.exists() and not overwrite:
        raise OutputExists(f"{out} already exists; pass --force to replace it")
    check_window(valid_from, valid_until, limits.max_validity_hours)
    now = clock.time()
    if valid_until <= now:
        raise Expired(f"valid-until {format_instant(valid_until)} is already past; the van would refuse it")
    check_text("deployment_ref", deployment_ref, "deployment reference")
    check_text("created_by", created_by, "created-by")
    rows = read_entries_csv(entries_csv)
    seen: dict[str, int] = {}
    for r in rows:
        if r.id in seen:
            raise DuplicateId(f"{entries_csv}: id {r.id!r} appears on lines {seen[r.id]} and {r.line}")
        seen[r.id] = r.line
    entries: list[Entry] = []
    members: list[tuple[str, bytes]] = []
    width = max(4, len(str(len(rows))))
    for n, r in enumerate(rows, 1):
        where = f"{entries_csv} line {r.line} (id {r.id!r})"
        for field in ("id", "name", "category", "reason"):
            check_text(field, getattr(r, field), where)
        photos: list[Photo] = []
        names = _photo_names(images_dir, r, where)
        for j, rel in enumerate(names, 1):
            data = _read_image_file(images_dir, rel, where, limits)
            check_image(f"{where}: image {rel}", data, limits.max_image_pixels)
            suffix = Path(rel).suffix.lower()
            member = f"{IMAGES_PREFIX}{n:0{width}d}{suffix}" if len(names) == 1 else \
                f"{IMAGES_PREFIX}{n:0{width}d}-{j}{suffix}"
            photos.append(Photo(member, hashlib.sha256(data).hexdigest()))
            members.append((member, data))
        entries.append(Entry(id=r.id, name=r.name, category=r.category, reason=r.reason, image=photos[0].image,
                             sha256=photos[0].sha256, more=tuple(photos[1:])))
    check_entries(entries, categories, limits)
    # version 1 when every entry has one photo, so appliances not yet updated still read the list
    manifest = Manifest(deployment_ref=deployment_ref, valid_from=valid_from, valid_until=valid_until,
                        created_by=created_by, created_at=now, entries=tuple(entries),
                        format_version=2 if any(e.more for e in entries) else 1)
    manifest_bytes = manifest.to_json_bytes()
    fp = fingerprint(private_key.public_key())
    signature = encode_signature(fp, sign(private_key, signed_message(manifest_bytes)))
    data = write_archive([(MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, signature), *members], now)
    if len(data) > limits.max_bundle_bytes:
        raise BundleTooLarge(f"the bundle would be {len(data)} bytes, more than the "
                             f"{limits.max_bundle_bytes} allowed (watchlist.max_bundle_mib); "
                             "downscale the images")
    verified = open_bundle_bytes(data, trusted_from_public_keys(private_key.public_key()), limits, categories)
    _write_atomically(out, data)
    log.info("built %s: %d entries, deployment %s, sha256 %s", out, len(entries), deployment_ref,
             verified.sha256)
    return BuildResult(path=out, sha256=verified.sha256, size_bytes=len(data), signer_fingerprint=fp,
                       manifest=verified.manifest)


def _write_atomically(out: Path, data: bytes) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
