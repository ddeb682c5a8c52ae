"""Tamper-evident audit log: append-only rows chained by SHA-256, and a verifier that names the first bad row.

Each row stores `prev_hash` and `hash = SHA-256(canonical JSON of [prev_hash, seq, time, actor, action,
details])`, so editing, deleting or inserting a row breaks the chain at that row. Triggers refuse UPDATE and
DELETE as a first line; `verify` does not rely on them. Details are facts only: never images, embeddings or
long opaque text.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from firmware.errors import AuditError
from firmware.store.db import transaction

GENESIS_HASH = "0" * 64
MAX_DETAIL_TEXT = 2000  # characters per string value: room for facts, too little for a base64 image


def _check_facts(value: Any, path: str = "details") -> None:
    """Refuse bytes and long strings anywhere in `details`: the audit log keeps facts, never images."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise AuditError(f"{path}: binary data may not enter the audit log (facts only, no images)")
    if isinstance(value, str) and len(value) > MAX_DETAIL_TEXT:
        raise AuditError(f"{path}: {len(value)} characters is too long for an audit fact "
                         f"(max {MAX_DETAIL_TEXT})")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_facts(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_facts(item, f"{path}[{i}]")


def canonical_details(details: dict[str, Any]) -> str:
    """The JSON text stored for `details`: sorted keys, no spaces, so the same facts hash the same."""
    _check_facts(details)
    try:
        return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit details are not plain JSON facts: {exc}") from exc


def row_hash(prev_hash: str, seq: int, time: float, actor: str, action: str, details_json: str) -> str:
    """SHA-256 hex of the row's canonical encoding, chained to the previous row's hash."""
    payload = json.dumps([prev_hash, seq, repr(float(time)), actor, action, details_json],
                         separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def append(db: sqlite_utils.Database, *, time: float, actor: str, action: str,
           details: dict[str, Any] | None = None) -> int:
    """Append one row and return its seq; joins the caller's transaction when there is one.

    `time` is Unix wall seconds (from the caller's Clock); `actor` who acted (e.g. "cli:alice",
    "pipeline:cam0", "operator:laptop1"); `action` a short verb such as "deployment_start".
    """
    if not actor or not action:
        raise AuditError("an audit row needs an actor and an action")
    details_json = canonical_details(details or {})
    with transaction(db):
        last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        digest = row_hash(prev, seq, time, actor, action, details_json)
        db.execute("INSERT INTO audit (seq, time, actor, action, details, prev_hash, hash) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [seq, float(time), actor, action, details_json, prev, digest])
    return seq


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the chain: `ok`, rows checked, and the first broken row's seq and why."""

    ok: bool
    rows: int
    broken_seq: int | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "rows": self.rows, "broken_seq": self.broken_seq, "problem": self.problem}


def verify(db: sqlite_utils.Database) -> VerifyResult:
    """Walk the audit chain in seq order and report the first row that was edited, deleted or inserted.

    A deleted tail (the newest rows) leaves a valid shorter chain; the report's audit head and the
    deployment records are the outside anchor for that case.
    """
    prev = GENESIS_HASH
    expected_seq = 1
    rows = 0
    cursor = db.execute("SELECT seq, time, actor, action, details, prev_hash, hash FROM audit ORDER BY seq")
    for seq, time, actor, action, details, prev_hash, stored in cursor:
        rows += 1
        if seq != expected_seq:
            gap = (f"rows {expected_seq}..{seq - 1} are missing" if seq > expected_seq
                   else "sequence out of order")
            return VerifyResult(False, rows, seq, f"row {seq}: {gap} (deleted rows)")
        if prev_hash != prev:
            return VerifyResult(False, rows, seq, f"row {seq}: prev_hash does not match row {seq - 1}'s hash "
                                                  "(a row was deleted, inserted or replaced before it)")
        if row_hash(prev_hash, seq, time, actor, action, details) != stored:
            return VerifyResult(False, rows, seq, f"row {seq}: content does not match its hash (edited)")
        prev = stored
        expected_seq = seq + 1
    return VerifyResult(True, rows)


def head(db: sqlite_utils.Database) -> tuple[int, str]:
    """The newest row's (seq, hash), or (0, GENESIS_HASH): publish it to anchor the chain's end."""
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS_HASH)
