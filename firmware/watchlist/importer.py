"""Import a bundle: verify all of it, then enrol every entry; the caller swaps the store only on success.

`import_bundle` writes nothing. It returns the verified manifest and, per entry, an embedding and a
metadata-free reference JPEG, or the reason the entry was rejected. A refused bundle raises BundleRefused
before any image is enrolled, so the active watchlist stays as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from firmware.errors import ModelError
from firmware.hardware.clock import Clock
from firmware.watchlist.enrol import Enroller, EnrolResult, Rejection
from firmware.watchlist.images import decode_bgr, reference_jpeg
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import BASE_CATEGORIES, Entry, Manifest
from firmware.watchlist.signing import TrustedKey
from firmware.watchlist.verify import VerifiedBundle, verify_bundle

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""Called after each entry as (entries done, entries in total)."""


@dataclass(frozen=True)
class EntryResult:
    """The outcome for one entry: `embedding` and `reference_jpeg` when accepted, else `rejection`."""

    entry: Entry
    embedding: np.ndarray | None
    reference_jpeg: bytes | None
    rejection: Rejection | None
    detail: str = ""
    photos_fused: int = 1

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

    def report(self) -> dict[str, Any]:
        """The per-entry report (ids and reasons, no names or images) for the CLI, viewer and audit log."""
        return {**self.manifest.summary(), "bundle_sha256": self.bundle_sha256,
                "signer_fingerprint": self.signer_fingerprint, "accepted": len(self.accepted),
                "rejected": [{"id": r.entry.id, "reason": r.rejection.value if r.rejection else "",
                              "detail": r.detail} for r in self.rejected]}


def import_bundle(source: Path | str | BinaryIO, trusted_keys: Mapping[str, TrustedKey], clock: Clock,
                  enroller: Enroller, on_progress: ProgressCallback | None = None, *,
                  limits: BundleLimits | None = None,
                  categories: Sequence[str] = BASE_CATEGORIES) -> ImportResult:
    """Verify the bundle at `source` (file, stick folder or open binary file), then enrol each entry."""
    bundle = verify_bundle(source, trusted_keys, clock, limits, categories)
    return enrol_bundle(bundle, enroller, on_progress)


def enrol_bundle(bundle: VerifiedBundle, enroller: Enroller,
                 on_progress: ProgressCallback | None = None) -> ImportResult:
    """Enrol every entry of an already verified bundle; embeddings are checked to be usable."""
    total = len(bundle.manifest.entries)
    results: list[EntryResult] = []
    dims: int | None = None
    for done, entry in enumerate(bundle.manifest.entries, 1):
        result = _enrol_one(entry, bundle.images[entry.image], enroller)
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
