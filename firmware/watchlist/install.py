"""Install a bundle on the van: verify, check it belongs to the open deployment, enrol, then swap atomically.

Verification and enrolment (seconds to minutes) run outside any transaction and write nothing; only then
`watchlist.swap.replace_active` swaps the list in one transaction. Any refusal or failure on the way
leaves the previous watchlist exactly as it was and is itself audited (`watchlist_import_refused`).

Deployment reference rule: the bundle's `deployment_ref` must equal the open deployment's `authority`
(compared after trimming spaces and ignoring case), so a list built for another operation cannot be
loaded by mistake. `watchlist.require_deployment_ref_match = false` turns the refusal off; both references
are audited either way.

Rollback rule (docs/watchlist-import.md): per deployment, a bundle must be newer (signed `created_at`) than
every list the deployment has loaded and must not be one it replaced or wiped (`rollback`); re-importing the
active bundle changes nothing and says so; a bundle created more than MAX_BUILD_LEAD_S before the deployment
was started is refused (`created_before_deployment`), and one dated in the future is refused by verification.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import sqlite_utils

from firmware.errors import LfrError, PolicyError
from firmware.hardware.clock import Clock
from firmware.match.operating_point import ThresholdPolicy
from firmware.match.score import ScoreCalibration
from firmware.store import audit
from firmware.store.db import truncate_wal
from firmware.store.deployments import current
from firmware.store.watchlists import WatchlistRecord
from firmware.watchlist.duplicates import DuplicatePair, cosine_similarity, find_duplicate_subjects
from firmware.watchlist.enrol import Enroller
from firmware.watchlist.errors import CreatedBeforeDeployment
from firmware.watchlist.importer import ImportResult, ProgressCallback, enrol_bundle
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import BASE_CATEGORIES, format_instant
from firmware.watchlist.signing import TrustedKey
from firmware.watchlist.swap import check_not_rollback, replace_active
from firmware.watchlist.verify import VerifiedBundle, verify_bundle

log = logging.getLogger(__name__)

MAX_BUILD_LEAD_S = 48 * 3600.0
"""A list may be built up to this long before its deployment is started on the van (the day before is
normal); one built earlier belongs to an earlier operation under the same reference and is refused."""


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
    """The stored record, the full enrolment result (per-entry report) and the duplicate pairs found;
    `unchanged` when the bundle already was the active list (nothing enrolled, nothing written but the audit
    row, `result.entries` empty)."""

    record: WatchlistRecord
    result: ImportResult
    duplicates: list[DuplicatePair]
    unchanged: bool = False


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
                   policy: ThresholdPolicy | None = None,
                   models: Callable[[], dict[str, str]] | None = None) -> InstallOutcome:
    """Verify and enrol the bundle at `source`, then make it the open deployment's watchlist; `models()` (the
    files and sha256 of the models that enrolled it, asked once enrolment has loaded them) is recorded with it.

    With `policy`, the list's operating point (threshold in force, expected false alerts and TPIR;
    `firmware.match.operating_point`) is computed for the entries accepted and stored with the import.

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
        if m.created_at < dep.started - MAX_BUILD_LEAD_S:
            raise CreatedBeforeDeployment(
                f"bundle was created at {format_instant(m.created_at)}, more than "
                f"{MAX_BUILD_LEAD_S / 3600:g} h before deployment {dep.id} was started "
                f"({format_instant(dep.started)}); it belongs to an earlier operation")
        already = check_not_rollback(db, dep.id, bundle.sha256, m.created_at)
        if already is not None:
            return _unchanged(db, clock, actor, bundle, already)
        result = enrol_bundle(bundle, enroller, on_progress)
        duplicates = duplicate_subjects(result, calibration, threshold)
        op = (policy.evaluate(calibration, [r.photos_fused for r in result.accepted])
              if policy is not None and result.accepted else None)
        if op is not None and op.warning:
            log.warning("%s", op.warning)
        record = replace_active(db, dep.id, result, duplicates, clock=clock, actor=actor,
                                operating_point=op.to_dict() if op is not None else None,
                                models=models() if models is not None else None)
    except Exception as exc:  # audited whatever it was (a refusal, a model or disk failure), then re-raised
        _audit_refusal(db, clock, actor, exc, deployment_id, bundle_sha256, source)
        raise
    truncate_wal(db)  # the replaced list's pages leave the WAL too
    return InstallOutcome(record, result, duplicates)


def _unchanged(db: sqlite_utils.Database, clock: Clock, actor: str, bundle: VerifiedBundle,
               record: WatchlistRecord) -> InstallOutcome:
    """The bundle is the active list already: audit that it was offered again and change nothing."""
    audit.append(db, time=clock.time(), actor=actor, action="watchlist_import_unchanged",
                 details={"deployment_id": record.deployment_id, "watchlist_id": record.id,
                          "bundle_sha256": bundle.sha256})
    log.info("bundle %s is already the active watchlist %d; nothing changed", bundle.sha256[:16], record.id)
    result = ImportResult(manifest=bundle.manifest, bundle_sha256=bundle.sha256,
                          signer_fingerprint=bundle.signer_fingerprint, entries=())
    return InstallOutcome(record, result, [], unchanged=True)


def escape_text(text: str, limit: int) -> str:
    """`text` safe for the audit log and a terminal: control characters and unpaired surrogates (a file name
    that is not UTF-8) written as escapes, cut to `limit` characters."""
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                  for ch in text[:limit])
    return out.encode("utf-8", "backslashreplace").decode("utf-8")


def _audit_refusal(db: sqlite_utils.Database, clock: Clock, actor: str, exc: Exception,
                   deployment_id: int | None, bundle_sha256: str | None, source: object) -> None:
    """Record why an import did not happen (code and message: facts, no names or images)."""
    code = getattr(exc, "code", type(exc).__name__)
    log.warning("watchlist import refused (%s): %s", code, exc)
    try:
        audit.append(db, time=clock.time(), actor=actor, action="watchlist_import_refused",
                     details={"deployment_id": deployment_id, "bundle_sha256": bundle_sha256,
                              "source": escape_text(str(getattr(source, "name", source)), 500),
                              "code": escape_text(str(code), 64), "error": escape_text(str(exc), 1000)})
    except LfrError:
        log.exception("could not audit the refused watchlist import (%s)", code)
