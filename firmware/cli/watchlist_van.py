"""`lfr watchlist import|status|wipe|expire`: the van side of the watchlist, registered by watchlist_cmd.

`import` exits 0 only when the list was swapped in; any refusal exits 2 with the reason (and, with --json,
a JSON object carrying the refusal `code` for the udev unit, LED and viewer). `expire` exits 0 whether or
not anything was due, so the systemd timer that runs it every minute never reports a failure for "nothing
to do".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.cli.deployment_cmd import cli_actor
from firmware.errors import LfrError
from firmware.hardware.clock import SystemClock
from firmware.match.operating_point import ThresholdPolicy
from firmware.match.operating_point import describe as describe_operating_point
from firmware.match.score import load_calibration
from firmware.progress import ProgressBar
from firmware.store import deployments, watchlists
from firmware.store.db import open_config_db, truncate_wal
from firmware.watchlist.active import active_version
from firmware.watchlist.enrol import LazyEnroller
from firmware.watchlist.install import InstallOutcome, install_bundle
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import allowed_categories, format_instant
from firmware.watchlist.signing import load_trusted_keys, short_fingerprint


def register(wsub: argparse._SubParsersAction) -> None:
    i = wsub.add_parser("import", help="verify, enrol and activate a bundle for the open deployment")
    i.add_argument("path", help="a .lfrw file, or a mounted stick folder holding exactly one")
    i.add_argument("--trusted-keys", metavar="DIR", default=None,
                   help="folder of trusted *.pub keys (default: watchlist.trusted_keys_dir)")
    i.set_defaults(func=_import)
    s = wsub.add_parser("status", help="the open deployment's watchlist: window, counts, signer, sha256")
    s.set_defaults(func=_status)
    w = wsub.add_parser("wipe", help="destroy the open deployment's watchlist now")
    w.set_defaults(func=_wipe)
    e = wsub.add_parser("expire", help="wipe the watchlist if its valid-until has passed (run by a timer)")
    e.set_defaults(func=_expire)
    for parser in (i, s, w, e):
        add_config_argument(parser)
        add_json_argument(parser)


def _import(args: argparse.Namespace) -> int:
    db = None
    try:
        cfg = app_config(args)
        db = open_config_db(cfg)
        enroller = LazyEnroller(cfg)
        with ProgressBar("enrolling") as bar:
            outcome = install_bundle(
                db, Path(args.path), trusted_keys=load_trusted_keys(args.trusted_keys or
                                                                    cfg.watchlist.trusted_keys_dir),
                clock=SystemClock(), enroller=enroller, models=enroller.model_files,
                calibration=load_calibration(Path(cfg.models.dir)), threshold=cfg.match.threshold,
                actor=cli_actor(), limits=BundleLimits.from_config(cfg.watchlist),
                categories=allowed_categories(cfg.watchlist.extra_categories),
                require_ref_match=cfg.watchlist.require_deployment_ref_match, on_progress=bar,
                policy=ThresholdPolicy.from_config(cfg))
    except LfrError as exc:
        if not args.json:
            raise
        code = getattr(exc, "code", type(exc).__name__)
        emit(args, {"imported": False, "code": code, "error": str(exc)}, "")
        print(f"lfr: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if db is not None:
            db.close()
    if outcome.unchanged:
        rec = outcome.record
        emit(args, {"imported": False, "unchanged": True, "watchlist": _record_json(rec)},
             "\n".join([f"bundle {rec.bundle_sha256[:16]} is already the active watchlist {rec.id} of deployment "
                        f"{rec.deployment_id}; nothing changed", *_record_text(rec)]))
        return 0
    emit(args, _import_json(outcome), _import_text(outcome))
    warning = outcome.record.report.get("operating_point", {}).get("warning")
    if warning:
        print(f"lfr: WARNING: {warning}", file=sys.stderr)
    return 0


def _import_json(o: InstallOutcome) -> dict[str, Any]:
    entries = [{"id": r.entry.id, "accepted": r.is_accepted,
                "reason": r.rejection.value if r.rejection else None, "detail": r.detail,
                "photos_fused": r.photos_fused, "photos": [v.to_dict() for v in r.photos]}
               for r in o.result.entries]
    return {"imported": True, "watchlist": _record_json(o.record), "entries": entries,
            "operating_point": o.record.report.get("operating_point")}


def _record_json(rec: watchlists.WatchlistRecord) -> dict[str, Any]:
    return {**rec.to_dict(), "valid_from_iso": format_instant(rec.valid_from),
            "valid_until_iso": format_instant(rec.valid_until),
            "duplicates": rec.report.get("duplicates", []), "rejected_entries": rec.report.get("rejected", [])}


def _record_text(rec: watchlists.WatchlistRecord) -> list[str]:
    lines = [f"deployment reference: {rec.deployment_ref}",
             f"window: {format_instant(rec.valid_from)} .. {format_instant(rec.valid_until)}",
             f"entries: {rec.accepted} accepted, {rec.rejected} rejected",
             f"signer fingerprint: {rec.signer_fingerprint} ({short_fingerprint(rec.signer_fingerprint)})",
             f"bundle sha256: {rec.bundle_sha256}"]
    rejected = rec.report.get("rejected", [])
    if rejected:
        lines.append("rejected entries (id, reason):" + "".join(
            f"\n  {r['id']:<20} {r['reason']}" + (f" ({r['detail']})" if r.get("detail") else "") for r in rejected))
    dups = rec.report.get("duplicates", [])
    lines.append(f"duplicate subjects: {len(dups)}" + "".join(
        f"\n  {d['id_a']} ~ {d['id_b']}  score {d['score']:.3f}" for d in dups))
    return lines + describe_operating_point(rec.report.get("operating_point") or {})


def _import_text(o: InstallOutcome) -> str:
    rec = o.record
    lines = [f"watchlist {rec.id} active for deployment {rec.deployment_id}", *_record_text(rec)]
    for r in o.result.entries:
        state = "accepted" if r.is_accepted else f"REJECTED: {r.rejection.value if r.rejection else ''}"
        fused = f", {r.photos_fused} of {len(r.photos)} photos fused" if len(r.photos) > 1 and r.is_accepted else ""
        lines.append(f"  {r.entry.id:<20} {state}{fused}{f' ({r.detail})' if r.detail else ''}")
        if len(r.photos) > 1:
            lines += [f"    {v.image}: {'accepted' if v.is_accepted else 'rejected: ' + (v.rejection or '')}"
                      f"{f' ({v.detail})' if v.detail and not v.is_accepted else ''}" for v in r.photos]
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        dep = deployments.current(db)
        rec = watchlists.latest(db, dep.id) if dep else None
        version = active_version(db)
    finally:
        db.close()
    result: dict[str, Any] = {"deployment": dep.to_dict() if dep else None, "active_version": version,
                              "watchlist": _record_json(rec) if rec else None,
                              "operating_point": rec.report.get("operating_point") if rec else None,
                              "loaded": bool(rec and rec.is_active and version)}
    if dep is None:
        text = "no open deployment (no watchlist can be loaded)"
    elif rec is None:
        text = f"deployment {dep.id} (authority {dep.authority}, {dep.location}): no watchlist imported"
    else:
        state = ("loaded" if result["loaded"]
                 else f"wiped at {format_instant(rec.wiped_at or 0)} ({rec.wipe_reason})")
        text = "\n".join([f"deployment {dep.id} (authority {dep.authority}, {dep.location})",
                          f"watchlist {rec.id}: {state}", *_record_text(rec)])
    emit(args, result, text)
    return 0


def _wipe(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        dep = deployments.require_open(db)
        wiped = deployments.wipe_watchlist(db, dep.id, clock=SystemClock(), actor=cli_actor(),
                                           reason="wiped by operator")
        truncate_wal(db)
    finally:
        db.close()
    emit(args, {"deployment_id": dep.id, "entries_wiped": wiped},
         f"deployment {dep.id}: {wiped} watchlist entries wiped")
    return 0


def _expire(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        res = watchlists.expire_if_due(db, clock=SystemClock(), actor="timer:watchlist-expire")
    finally:
        db.close()
    rec = res.watchlist
    if rec is None:
        text = "no active watchlist"
    elif res.expired:
        text = (f"watchlist {rec.id} expired at {format_instant(rec.valid_until)}: "
                f"{res.entries_wiped} entries wiped")
    else:
        text = f"watchlist {rec.id} valid until {format_instant(rec.valid_until)}"
    emit(args, {"expired": res.expired, "entries_wiped": res.entries_wiped,
                "watchlist": _record_json(rec) if rec else None}, text)
    return 0
