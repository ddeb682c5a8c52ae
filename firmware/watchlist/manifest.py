"""The signed manifest of a watchlist bundle: its fields, its canonical JSON, and the rules both the builder
and the importer apply to it (so a bundle that builds is a bundle that imports)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from firmware.errors import ConfigError
from firmware.watchlist.errors import (
    AbsolutePath,
    DuplicateId,
    EmptyWatchlist,
    ManifestInvalid,
    UnknownCategory,
    UnsafePath,
    WindowInvalid,
)
from firmware.watchlist.limits import BundleLimits

FORMAT = "lfr-watchlist-bundle"
FORMAT_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
MAX_PHOTOS = 5  # reference photos per entry (version 2); enrolment fuses those that pass into one template
BASE_CATEGORIES: tuple[str, ...] = ("warrant", "wanted", "court-order conditions", "missing/vulnerable")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
IMAGES_PREFIX = "images/"
_IMAGE_NAME = re.compile(r"images/[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TEXT_LIMITS = {"id": 64, "name": 200, "category": 64, "reason": 500, "deployment_ref": 120, "created_by": 120}
_ENTRY_KEYS = ("id", "name", "category", "reason", "image", "sha256")  # version 1: one photo
_ENTRY_KEYS_V2 = ("id", "name", "category", "reason", "images")  # version 2: 1..MAX_PHOTOS photos
_PHOTO_KEYS = ("image", "sha256")
_TOP_KEYS = ("format", "format_version", "deployment_ref", "valid_from", "valid_until", "created_by",
             "created_at", "entries")


@dataclass(frozen=True)
class Photo:
    """One reference photo: archive member name and its SHA-256 hex digest."""

    image: str
    sha256: str


@dataclass(frozen=True)
class Entry:
    """One watchlist subject: `image`/`sha256` its first reference photo, `more` the others (version 2)."""

    id: str
    name: str
    category: str
    reason: str
    image: str
    sha256: str
    more: tuple[Photo, ...] = ()

    @property
    def photos(self) -> tuple[Photo, ...]:
        """Every reference photo of the entry, first one first."""
        return (Photo(self.image, self.sha256), *self.more)


@dataclass(frozen=True)
class Manifest:
    """What headquarters signed. Times are seconds since the epoch (UTC); the JSON carries ISO 8601 UTC."""

    deployment_ref: str
    valid_from: float
    valid_until: float
    created_by: str
    created_at: float
    entries: tuple[Entry, ...]
    format_version: int = FORMAT_VERSION

    def to_json_bytes(self) -> bytes:
        """Canonical UTF-8 JSON (sorted keys, no spaces): the exact bytes that are signed."""
        if self.format_version == 1:
            if any(e.more for e in self.entries):
                raise ManifestInvalid("bundle format version 1 holds one photo per entry; use version 2")
            entries = [{k: getattr(e, k) for k in _ENTRY_KEYS} for e in self.entries]
        else:
            entries = [{"id": e.id, "name": e.name, "category": e.category, "reason": e.reason,
                        "images": [{"image": p.image, "sha256": p.sha256} for p in e.photos]} for e in self.entries]
        doc = {"format": FORMAT, "format_version": self.format_version, "deployment_ref": self.deployment_ref,
               "valid_from": format_instant(self.valid_from), "valid_until": format_instant(self.valid_until),
               "created_by": self.created_by, "created_at": format_instant(self.created_at),
               "entries": entries}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def summary(self) -> dict[str, Any]:
        """The facts shown by `lfr watchlist verify|status` and written to the audit log (no names)."""
        counts: dict[str, int] = {}
        for e in self.entries:
            counts[e.category] = counts.get(e.category, 0) + 1
        return {"format_version": self.format_version, "deployment_ref": self.deployment_ref,
                "valid_from": format_instant(self.valid_from),
                "valid_until": format_instant(self.valid_until), "created_by": self.created_by,
                "created_at": format_instant(self.created_at),
                "entries": len(self.entries), "photos": sum(len(e.photos) for e in self.entries),
                "by_category": counts}


def allowed_categories(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The four policy categories plus those a deployment's config adds."""
    extras = tuple(extra)
    for c in extras:
        if not c.strip() or len(c) > TEXT_LIMITS["category"] or _has_control(c):
            raise ConfigError(f"watchlist.extra_categories: {c!r} is not a usable category name")
    return BASE_CATEGORIES + tuple(c for c in extras if c not in BASE_CATEGORIES)


def format_instant(t: float) -> str:
    """ISO 8601 in UTC with a Z, to the second."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str, what: str) -> float:
    """An ISO 8601 date-time WITH a UTC offset (or Z) as epoch seconds; a local time with no offset is
    ambiguous on a van crossing midnight or a DST change, so it is refused."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError) as exc:
        raise WindowInvalid(f"{what} {text!r} is not an ISO 8601 date-time "
                            "such as 2026-11-22T06:00:00Z") from exc
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise WindowInvalid(f"{what} {text!r} has no time zone; add Z or an offset such as +00:00")
    try:  # an offset can push 0001-01-01 or 9999-12-31 out of the range a UTC date-time can show
        t = dt.timestamp()
        datetime.fromtimestamp(t, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise WindowInvalid(f"{what} {text!r} is outside the dates this appliance can represent") from exc
    return t


def check_window(valid_from: float, valid_until: float, max_hours: float) -> None:
    """The window must be forward and no longer than policy allows (the list is wiped at its end)."""
    if valid_until <= valid_from:
        raise WindowInvalid(f"valid-until {format_instant(valid_until)} is not after valid-from "
                            f"{format_instant(valid_from)}")
    hours = (valid_until - valid_from) / 3600
    if hours > max_hours:
        raise WindowInvalid(f"validity window of {hours:.1f} h is longer than the {max_hours:g} h allowed "
                            "(watchlist.max_validity_hours)")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") for ch in text)


def check_text(field: str, value: object, where: str) -> str:
    """A required single-line text field, bounded in length, without control characters."""
    if not isinstance(value, str) or not value.strip():
        raise ManifestInvalid(f"{where}: {field} is empty or not text")
    if len(value) > TEXT_LIMITS[field]:
        raise ManifestInvalid(f"{where}: {field} is longer than {TEXT_LIMITS[field]} characters")
    if _has_control(value) or value != value.strip():
        raise ManifestInvalid(f"{where}: {field} {value!r} has control characters or surrounding spaces")
    return value


def check_relative_path(name: str, what: str) -> PurePosixPath:
    """Refuse absolute paths and any path that could leave its folder; return it as a PurePosixPath."""
    if not name or "\x00" in name:
        raise UnsafePath(f"{what} {name!r} is empty or holds a NUL byte")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise AbsolutePath(f"{what} {name!r} is an absolute path; only paths inside the bundle are allowed")
    if "\\" in name:
        raise UnsafePath(f"{what} {name!r} holds a backslash; use / between folders")
    parts = name.split("/")
    if ".." in parts:
        raise UnsafePath(f"{what} {name!r} escapes the bundle with '..'")
    if any(p in ("", ".") for p in parts[:-1]) or parts[-1] in ("", "."):
        raise UnsafePath(f"{what} {name!r} has an empty or '.' path component")
    return PurePosixPath(name)


def check_image_member_name(name: str, where: str) -> None:
    """Archive image names are `images/` plus a plain file name with a .jpg/.jpeg/.png suffix."""
    check_relative_path(name, f"{where}: image")
    if not _IMAGE_NAME.fullmatch(name) or not name.lower().endswith(IMAGE_SUFFIXES):
        raise ManifestInvalid(f"{where}: image {name!r} must be images/<letters, digits, . _ -> ending in "
                              f"{', '.join(IMAGE_SUFFIXES)}")


def check_entries(entries: Sequence[Entry], categories: Sequence[str], limits: BundleLimits) -> None:
    """Rules on the entry list as a whole: not empty, bounded, unique ids and images, known categories."""
    if not entries:
        raise EmptyWatchlist("the watchlist has no entries; an empty bundle would silently disable matching")
    if len(entries) > limits.max_entries:
        raise ManifestInvalid(f"{len(entries)} entries is more than the {limits.max_entries} allowed")
    seen: dict[str, int] = {}
    images: dict[str, str] = {}
    for i, e in enumerate(entries, 1):
        if e.id in seen:
            raise DuplicateId(f"entry id {e.id!r} appears twice (entries {seen[e.id]} and {i})")
        seen[e.id] = i
        if e.category not in categories:
            raise UnknownCategory(f"entry {e.id!r}: category {e.category!r} is not one of "
                                  f"{', '.join(map(repr, categories))}")
        if len(e.photos) > MAX_PHOTOS:
            raise ManifestInvalid(f"entry {e.id!r} has {len(e.photos)} photos; at most {MAX_PHOTOS} are allowed")
        for p in e.photos:
            if p.image in images:
                raise ManifestInvalid(f"entries {images[p.image]!r} and {e.id!r} share the image {p.image!r}")
            images[p.image] = e.id


def parse_manifest(data: bytes, categories: Sequence[str], limits: BundleLimits) -> Manifest:
    """Validate signed manifest bytes into a Manifest; every field is checked, unknown keys are refused."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ManifestInvalid(f"manifest.json is not UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest.json is not a JSON object")
    _exact_keys(doc, _TOP_KEYS, "manifest")
    if doc["format"] != FORMAT:
        raise ManifestInvalid(f"manifest format {doc['format']!r} is not {FORMAT!r}")
    version = doc["format_version"]
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise ManifestInvalid(f"bundle format version {version!r} is not supported "
                              f"(this appliance reads versions {', '.join(map(str, SUPPORTED_VERSIONS))}); "
                              "update the appliance")
    for k in ("valid_from", "valid_until", "created_at"):
        if not isinstance(doc[k], str):
            raise ManifestInvalid(f"manifest: {k} is not text")
    valid_from = parse_instant(doc["valid_from"], "valid_from")
    valid_until = parse_instant(doc["valid_until"], "valid_until")
    check_window(valid_from, valid_until, limits.max_validity_hours)
    if not isinstance(doc["entries"], list):
        raise ManifestInvalid("manifest: entries is not a list")
    entries = tuple(_parse_entry(raw, i, version) for i, raw in enumerate(doc["entries"], 1))
    check_entries(entries, categories, limits)
    return Manifest(deployment_ref=check_text("deployment_ref", doc["deployment_ref"], "manifest"),
                    valid_from=valid_from, valid_until=valid_until,
                    created_by=check_text("created_by", doc["created_by"], "manifest"),
                    created_at=parse_instant(doc["created_at"], "created_at"), entries=entries,
                    format_version=version)


def _exact_keys(obj: dict[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in obj]
    extra = sorted(set(obj) - set(keys))
    if missing or extra:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(extra)}"] if extra else [])
        raise ManifestInvalid(f"{where}: {'; '.join(parts)}")


def _parse_photo(raw: dict[str, Any], where: str) -> Photo:
    if not isinstance(raw["image"], str):
        raise ManifestInvalid(f"{where}: image is not text")
    check_image_member_name(raw["image"], where)
    sha = raw["sha256"]
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise ManifestInvalid(f"{where}: sha256 is not 64 lowercase hex digits")
    return Photo(raw["image"], sha)


def _parse_entry(raw: object, i: int, version: int = FORMAT_VERSION) -> Entry:
    where = f"manifest entry {i}"
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where} is not a JSON object")
    if version == 1:
        _exact_keys(raw, _ENTRY_KEYS, where)
        photos = [_parse_photo(raw, where)]
    else:
        _exact_keys(raw, _ENTRY_KEYS_V2, where)
        if not isinstance(raw["images"], list) or not 1 <= len(raw["images"]) <= MAX_PHOTOS:
            raise ManifestInvalid(f"{where}: images must be a list of 1 to {MAX_PHOTOS} photos")
        photos = []
        for j, p in enumerate(raw["images"], 1):
            if not isinstance(p, dict):
                raise ManifestInvalid(f"{where} photo {j} is not a JSON object")
            _exact_keys(p, _PHOTO_KEYS, f"{where} photo {j}")
            photos.append(_parse_photo(p, f"{where} photo {j}"))
    return Entry(id=check_text("id", raw["id"], where), name=check_text("name", raw["name"], where),
                 category=check_text("category", raw["category"], where),
                 reason=check_text("reason", raw["reason"], where), image=photos[0].image,
                 sha256=photos[0].sha256, more=tuple(photos[1:]))
