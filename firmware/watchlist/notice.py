"""The newest watchlist import's result as the operator is told it, on the status LED and in the viewer.

The import runs in its own process (`lfr watchlist import`, started by the USB unit) and ends with one audit
row: `watchlist_import` when the list was swapped in, `watchlist_import_refused` otherwise. The appliance
reads the newest such row on its health tick (`newest_import`: one probe of the audit log's action index,
only rows after the last one it saw) and turns it into an `ImportNotice`. Facts only: counts, the refusal
code and its fixed short summary; the refusal message (which may name an image file) stays in the audit log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from firmware.store.watchlists import NothingEnrolled
from firmware.watchlist import errors
from firmware.watchlist.install import DeploymentRefMismatch, NoOpenDeployment

log = logging.getLogger(__name__)

IMPORTED, REFUSED = "watchlist_import", "watchlist_import_refused"
"""The audit actions that end an import (store/watchlists.py and watchlist/install.py write them)."""


def _bundle_refusals() -> list[type[errors.BundleRefused]]:
    return [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.BundleRefused)]


REFUSAL_SUMMARIES: dict[str, str] = {
    **{c.code: c.summary for c in _bundle_refusals()},
    DeploymentRefMismatch.code: DeploymentRefMismatch.summary,
    NoOpenDeployment.code: NoOpenDeployment.summary,
    NothingEnrolled.code: NothingEnrolled.summary,
}
"""Refusal code -> the few words the viewer shows, for every refusal the import raises with its own code."""


def refusal_summary(code: str) -> str:
    """The short reason for `code`; a failure without its own code (a model or disk error) is named by type."""
    return REFUSAL_SUMMARIES.get(code) or f"import failed ({code}); see the van's journal"


@dataclass(frozen=True)
class ImportNotice:
    """One import's result: audit `seq`, wall `time` (Unix s), accepted or refused with `code` and `reason`,
    entries accepted and rejected (accepted imports only) and the bundle's deployment reference."""

    seq: int
    time: float
    is_accepted: bool
    code: str | None = None
    reason: str = ""
    entries_accepted: int | None = None
    entries_rejected: int | None = None
    deployment_ref: str | None = None
    operating_point: dict[str, Any] | None = None

    @property
    def is_flagged(self) -> bool:
        """Accepted, but the list is too large for the false-alert budget at `match.min_tpir` (or a fixed
        threshold is over budget): the operating point carries a warning."""
        return bool(self.is_accepted and self.operating_point and self.operating_point.get("warning"))

    @property
    def outcome(self) -> str:
        """"accepted" or "refused", as `Health.import_outcome` carries it."""
        return "accepted" if self.is_accepted else "refused"

    def describe(self) -> str:
        """One journal line, e.g. "refused (untrusted_signer: signature by an untrusted key)"."""
        if self.is_accepted:
            flag = f"; {self.operating_point.get('warning')}" if self.is_flagged and self.operating_point else ""
            return (f"accepted for {self.deployment_ref}: {self.entries_accepted} entries accepted, "
                    f"{self.entries_rejected} rejected{flag}")
        return f"refused ({self.code}: {self.reason})"


def notice_from_row(seq: int, time: float, action: str, details: dict[str, Any]) -> ImportNotice:
    """The notice for one `watchlist_import` / `watchlist_import_refused` audit row."""
    if action == IMPORTED:
        rejected = details.get("rejected")
        ref = details.get("deployment_ref")
        op = details.get("operating_point")
        return ImportNotice(seq, float(time), True, entries_accepted=_count(details.get("accepted")),
                            entries_rejected=len(rejected) if isinstance(rejected, list) else None,
                            deployment_ref=ref[:200] if isinstance(ref, str) else None,
                            operating_point=op if isinstance(op, dict) else None)
    code = details.get("code")
    code = code[:64] if isinstance(code, str) and code else "unknown"
    return ImportNotice(seq, float(time), False, code=code, reason=refusal_summary(code)[:200])


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def newest_import(db: sqlite_utils.Database, after_seq: int = 0) -> ImportNotice | None:
    """The newest import result written after audit row `after_seq`, or None when there is none since."""
    row = db.execute("SELECT seq, time, action, details FROM audit WHERE action IN (?, ?) AND seq > ? "
                     "ORDER BY seq DESC LIMIT 1", [IMPORTED, REFUSED, after_seq]).fetchone()
    if row is None:
        return None
    try:
        details = json.loads(row[3])
    except ValueError:
        details = None
    if not isinstance(details, dict):
        log.error("audit row %d (%s) holds no JSON object; its import result is shown as unknown", row[0], row[2])
        details = {}
    return notice_from_row(int(row[0]), float(row[1]), str(row[2]), details)
