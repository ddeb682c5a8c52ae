"""Enrol a verified bundle: every entry's embedding and reference JPEG, or the reason it was rejected.

The watchlist's steps, one verb each: `build` (bundle.py, at headquarters), `verify` (verify.py: signature,
window, limits; a refused bundle raises BundleRefused before any image is enrolled), `enrol` (here:
`enrol_bundle`, through an `Enroller`; enrol.py holds that boundary and the real `RecognizerEnroller`) and
`install` (install.py: verify, enrol, then swap the active list in one transaction, swap.py).
`enrol_bundle` writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware.errors import ModelError
from firmware.match.fusion import fuse
from firmware.watchlist.enrol import Enroller, EnrolResult, Rejection
from firmware.watchlist.images import decode_bgr, reference_jpeg
from firmware.watchlist.manifest import Entry, Manifest
from firmware.watchlist.verify import VerifiedBundle

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called after each entry as (entries done, entries in total)."""


@dataclass(frozen=True)
class PhotoVerdict:
    """What enrolment made of one reference photo of an entry: accepted, or the rejection and its detail."""

    image: str
    rejection: Rejection | None
    detail: str = ""

    @property
    def is_accepted(self) -> bool:
        return self.rejection is None

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "accepted": self.is_accepted,
                "reason": self.rejection.value if self.rejection else None, "detail": self.detail}


@dataclass(frozen=True)
class EntryResult:
    """The outcome for one entry: `embedding` (the template: its accepted photos' embeddings fused by the
    mean, L2-normalised) and `reference_jpeg` (its first accepted photo) when accepted, else `rejection`
    (the first photo's reason when none passed); `photos` holds every photo's verdict."""

    entry: Entry
    embedding: np.ndarray | None
    reference_jpeg: bytes | None
    rejection: Rejection | None
    detail: str = ""
    photos_fused: int = 1
    photos: tuple[PhotoVerdict, ...] = ()

    @property
    def is_accepted(self) -> bool:
        return self.rejection is None


@dataclass(frozen=True)
class ImportResult:
    """A verified bundle and what enrolment made of each entry, in manifest order."""

    manifest: Manifest
    bundle_sha256: str
    signer_fingerprint: str
    entries: tuple[EntryResult, ...]

    @property
    def accepted(self) -> tuple[EntryResult, ...]:
        return tuple(r for r in self.entries if r.is_accepted)

    @property
    def rejected(self) -> tuple[EntryResult, ...]:
        return tuple(r for r in self.entries if not r.is_accepted)

    def photos_rejected(self) -> list[dict[str, Any]]:
        """Photos that did not pass within entries that were accepted on their other photos (id, photo, why)."""
        return [{"id": r.entry.id, "image": v.image, "reason": v.rejection.value if v.rejection else "",
                 "detail": v.detail} for r in self.accepted for v in r.photos if not v.is_accepted]

    def report(self) -> dict[str, Any]:
        """The per-entry report (ids and reasons, no names or images) for the CLI, viewer and audit log."""
        return {**self.manifest.summary(), "bundle_sha256": self.bundle_sha256,
                "signer_fingerprint": self.signer_fingerprint, "accepted": len(self.accepted),
                "photos_rejected": self.photos_rejected(),
                "rejected": [{"id": r.entry.id, "reason": r.rejection.value if r.rejection else "",
                              "detail": r.detail} for r in self.rejected]}


def enrol_bundle(bundle: VerifiedBundle, enroller: Enroller,
                 on_progress: ProgressCallback | None = None) -> ImportResult:
    """Enrol every entry of an already verified bundle; embeddings are checked to be usable."""
    total = len(bundle.manifest.entries)
    results: list[EntryResult] = []
    dims: int | None = None
    for done, entry in enumerate(bundle.manifest.entries, 1):
        result = _enrol_entry(entry, bundle.images, enroller)
        if result.embedding is not None:
            dims = dims or result.embedding.shape[0]
            if result.embedding.shape != (dims,):
                raise ModelError(f"entry {entry.id!r}: embedding shape {result.embedding.shape} differs from "
                                 f"the {dims}-d embeddings of the other entries")
        else:
            log.info("entry %s rejected: %s %s", entry.id, result.rejection.value if result.rejection else "",
                     result.detail)
        results.append(result)
        if on_progress is not None:
            on_progress(done, total)
    out = ImportResult(manifest=bundle.manifest, bundle_sha256=bundle.sha256,
                       signer_fingerprint=bundle.signer_fingerprint, entries=tuple(results))
    log.info("enrolled bundle %s: %d accepted, %d rejected", bundle.sha256[:16], len(out.accepted),
             len(out.rejected))
    return out


def _enrol_entry(entry: Entry, images: Mapping[str, bytes], enroller: Enroller) -> EntryResult:
    """Enrol every photo of the entry and fuse those that pass into one template (mean of embeddings, the
    fusion measured best: docs/recognition.md, "Template fusion, measured")."""
    results = [_enrol_one(entry, images[p.image], enroller) for p in entry.photos]
    verdicts = tuple(PhotoVerdict(p.image, r.rejection, r.detail) for p, r in zip(entry.photos, results, strict=True))
    good = [r for r in results if r.embedding is not None]
    if not good:
        first = results[0]
        detail = first.detail if len(results) == 1 else f"none of {len(results)} photos passed; first: {first.detail}"
        return EntryResult(entry, None, None, first.rejection or Rejection.NO_FACE, detail, 0, verdicts)
    template = fuse([r.embedding for r in good if r.embedding is not None])
    return EntryResult(entry, template, good[0].reference_jpeg, None, "", len(good), verdicts)


def _enrol_one(entry: Entry, data: bytes, enroller: Enroller) -> EntryResult:
    try:
        image = decode_bgr(data)
    except (OSError, ValueError) as exc:
        return EntryResult(entry, None, None, Rejection.UNREADABLE_IMAGE, str(exc))
    res: EnrolResult = enroller.enrol(image)
    if res.rejection is not None or res.embedding is None:
        return EntryResult(entry, None, None, res.rejection or Rejection.NO_FACE, res.detail)
    emb = np.asarray(res.embedding, dtype=np.float32)
    norm = float(np.linalg.norm(emb)) if emb.ndim == 1 else 0.0
    if emb.ndim != 1 or not np.isfinite(emb).all() or norm == 0.0:
        raise ModelError(f"entry {entry.id!r}: the enroller returned an unusable embedding "
                         f"(shape {emb.shape}, norm {norm})")
    return EntryResult(entry, emb / norm, reference_jpeg(image), None)
