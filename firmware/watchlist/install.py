"""Install a bundle on the van: verify, check it belongs to the open deployment, enrol, then swap atomically.

Verification and enrolment (seconds to minutes) run outside any transaction and write nothing; only then
`store.watchlists.replace_active` swaps the list in one transaction. Any refusal or failure on the way
leaves the previous watchlist exactly as it was and is itself audited (`watchlist_import_refused`).

Deployment reference rule: the bundle's `deployment_ref` must equal the open deployment's `authority`
(compared after trimming spaces and ignoring case), so a list built for another operation cannot be
loaded by mistake. `watchlist.require_deployment_ref_match = false` turns the refusal off; both references
are audited either way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import sqlite_utils

from firmware.errors import LfrError, PolicyError
from firmware.hardware.clock import Clock
from firmware.match.score import ScoreCalibration
from firmware.store import audit
from firmware.store.db import truncate_wal
from firmware.store.deployments import current
from firmware.store.watchlists import WatchlistRecord, replace_active
from firmware.watchlist.duplicates import DuplicatePair, cosine_similarity, find_duplicate_subjects
from firmware.watchlist.enrol import Enroller
from firmware.watchlist.importer import ImportResult, ProgressCallback, enrol_bundle
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import BASE_CATEGORIES
from firmware.watchlist.signing import TrustedKey
from firmware.watchlist.verify import verify_bundle

log = logging.getLogger(__name__)


class DeploymentRefMismatch(PolicyError):
    """The bundle was built for another deployment than the open one."""

    code = "deployment_ref_mismatch"
    summary = "built for another deployment"


class NoOpenDeployment(PolicyError):
    """A stick came in before the deployment was started: a list belongs to one authorised deployment."""

    code = "no_deployment"
    summary = "no deployment started"


@dataclass(frozen=True)
class InstallOutcome:
    """The stored record, the full enrolment result (per-entry report) and the duplicate pairs found."""

    record: WatchlistRecord
    result: ImportResult
    duplicates: list[DuplicatePair]


def same_reference(a: str, b: str) -> bool:
    """Deployment references compared as officers type them: spaces around and letter case ignored."""
    return a.strip().casefold() == b.strip().casefold()


def duplicate_subjects(result: ImportResult, calibration: ScoreCalibration,
                       threshold: float) -> list[DuplicatePair]:
    """Pairs of accepted entries whose reference faces score at or above `threshold` against each other."""
    accepted = result.accepted
    if len(accepted) < 2:
        return []
    emb = np.stack([np.asarray(r.embedding, np.float32) for r in accepted])
    return find_duplicate_subjects([r.entry.id for r in accepted], emb,
                                   lambda a, b: calibration.score(cosine_similarity(a, b)), threshold)


def install_bundle(db: sqlite_utils.Database, source: Path | str | BinaryIO, *,
                   trusted_keys: Mapping[str, TrustedKey], clock: Clock, enroller: Enroller,
                   calibration: ScoreCalibration, threshold: float, actor: str,
                   limits: BundleLimits | None = None, categories: Sequence[str] = BASE_CATEGORIES,
                   require_ref_match: bool = True,
                   on_progress: ProgressCallback | None = None,
                   models: dict[str, str] | None = None) -> InstallOutcome:
    """Verify and enrol the bundle at `source`, then make it the open deployment's watchlist; `models` (the
    enroller's `Recognizer.model_files()`) is recorded with it.

    Raises PolicyError with no open deployment (`NoOpenDeployment`) or a foreign deployment reference, a
    BundleError subclass for a refused bundle, PolicyError when no entry could be enrolled (`NothingEnrolled`);
    every refusal or failure is audited (`watchlist_import_refused`) with its code and re-raised.
    """
    deployment_id: int | None = None
    bundle_sha256: str | None = None
    try:
        dep = current(db)
        if dep is None:
            raise NoOpenDeployment("no open deployment: start one with `lfr deployment start --authority REF "
                                   "--officer NAME --location TEXT`, then insert the stick again")
        deployment_id = dep.id
        bundle = verify_bundle(source, trusted_keys, clock, limits, categories)
        bundle_sha256 = bundle.sha256
        m = bundle.manifest
        matches = same_reference(m.deployment_ref, dep.authority)
        audit.append(db, time=clock.time(), actor=actor, action="watchlist_verified",
                     details={"deployment_id": dep.id, "bundle_sha256": bundle.sha256,
                              "signer_fingerprint": bundle.signer_fingerprint, "entries": len(m.entries),
                              "deployment_ref": m.deployment_ref, "authority": dep.authority,
                              "reference_matches": matches, "valid_from": m.valid_from,
                              "valid_until": m.valid_until})
        if require_ref_match and not matches:
            raise DeploymentRefMismatch(
                f"bundle was built for deployment {m.deployment_ref!r} but the open deployment {dep.id} runs "
                f"under authority {dep.authority!r}; build the list for this deployment")
        result = enrol_bundle(bundle, enroller, on_progress)
        duplicates = duplicate_subjects(result, calibration, threshold)
        record = replace_active(db, dep.id, result, duplicates, clock=clock, actor=actor, models=models)
    except Exception as exc:  # audited whatever it was (a refusal, a model or disk failure), then re-raised
        _audit_refusal(db, clock, actor, exc, deployment_id, bundle_sha256, source)
        raise
    truncate_wal(db)  # the replaced list's pages leave the WAL too
    return InstallOutcome(record, result, duplicates)


def _audit_refusal(db: sqlite_utils.Database, clock: Clock, actor: str, exc: Exception,
                   deployment_id: int | None, bundle_sha256: str | None, source: object) -> None:
    """Record why an import did not happen (code and message: facts, no names or images)."""
    code = getattr(exc, "code", type(exc).__name__)
    log.warning("watchlist import refused (%s): %s", code, exc)
    try:
        audit.append(db, time=clock.time(), actor=actor, action="watchlist_import_refused",
                     details={"deployment_id": deployment_id, "bundle_sha256": bundle_sha256,
                              "source": str(getattr(source, "name", source))[:500], "code": code,
                              "error": str(exc)[:1000]})
    except LfrError:
        log.exception("could not audit the refused watchlist import (%s)", code)
