"""`lfr watchlist build|verify`: make a signed bundle at headquarters; check one without importing it.

The van-side actions (`import`, `status`, `wipe`, `expire`) live in `watchlist_van` and are registered here.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from pathlib import Path

from firmware.cli import watchlist_van
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.errors import LfrError
from firmware.hardware.clock import SystemClock
from firmware.watchlist.bundle import build_bundle
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import allowed_categories, parse_instant
from firmware.watchlist.signing import load_private_key, load_trusted_keys, short_fingerprint
from firmware.watchlist.verify import verify_bundle


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watchlist", help="build, verify and (on the van) import signed watchlist bundles")
    wsub = p.add_subparsers(dest="watchlist_command", metavar="ACTION", required=True)

    b = wsub.add_parser("build", help="make a signed .lfrw bundle from reference images and an entries CSV")
    b.add_argument("--images", required=True, metavar="DIR", help="folder holding the reference images")
    b.add_argument("--entries", required=True, metavar="CSV",
                   help="CSV with exactly the columns id, name, category, reason, image")
    b.add_argument("--deployment", required=True, metavar="REF", help="deployment / authority reference")
    b.add_argument("--valid-from", required=True, metavar="ISO", help="e.g. 2026-11-22T06:00:00Z")
    b.add_argument("--valid-until", required=True, metavar="ISO", help="e.g. 2026-11-22T20:00:00Z")
    b.add_argument("--key", required=True, metavar="SIGNING_KEY", help="lfr-signing.key (mode 0600)")
    b.add_argument("--out", required=True, metavar="FILE.lfrw", help="bundle file to write")
    b.add_argument("--created-by", default=None, metavar="NAME", help="default: user@host")
    b.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_config_argument(b)
    add_json_argument(b)
    b.set_defaults(func=_build)

    v = wsub.add_parser("verify", help="check a bundle (file or stick folder) without importing it")
    v.add_argument("path", help="a .lfrw file, or a mounted stick folder holding exactly one")
    v.add_argument("--trusted-keys", metavar="DIR", default=None,
                   help="folder of trusted *.pub keys (default: watchlist.trusted_keys_dir)")
    add_config_argument(v)
    add_json_argument(v)
    v.set_defaults(func=_verify)
    watchlist_van.register(wsub)


def _summary_text(summary: dict[str, object]) -> str:
    lines = [f"{k.replace('_', ' ')}: {summary[k]}" for k in
             ("deployment_ref", "valid_from", "valid_until", "created_by", "created_at", "entries",
              "by_category", "bundle_sha256", "size_bytes")]
    fp = str(summary["signer_fingerprint"])
    lines.append(f"signer fingerprint: {fp} ({short_fingerprint(fp)})")
    return "\n".join(lines)


def _build(args: argparse.Namespace) -> int:
    cfg = app_config(args, state=False).watchlist
    result = build_bundle(
        images_dir=Path(args.images), entries_csv=Path(args.entries), deployment_ref=args.deployment,
        valid_from=parse_instant(args.valid_from, "--valid-from"),
        valid_until=parse_instant(args.valid_until, "--valid-until"),
        private_key=load_private_key(args.key), out=Path(args.out),
        created_by=args.created_by or f"{getpass.getuser()}@{socket.gethostname()}", clock=SystemClock(),
        limits=BundleLimits.from_config(cfg), categories=allowed_categories(cfg.extra_categories),
        overwrite=args.force)
    summary = {**result.manifest.summary(), "bundle_sha256": result.sha256, "size_bytes": result.size_bytes,
               "signer_fingerprint": result.signer_fingerprint, "path": str(result.path)}
    emit(args, summary, f"wrote {result.path}\n{_summary_text(summary)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    try:
        cfg = app_config(args, state=False).watchlist
        trusted = load_trusted_keys(args.trusted_keys or cfg.trusted_keys_dir)
        bundle = verify_bundle(Path(args.path), trusted, SystemClock(), BundleLimits.from_config(cfg),
                               allowed_categories(cfg.extra_categories))
    except LfrError as exc:
        if not args.json:
            raise
        emit(args, {"valid": False, "code": getattr(exc, "code", type(exc).__name__), "error": str(exc)}, "")
        print(f"lfr: error: {exc}", file=sys.stderr)
        return 2
    summary = bundle.summary()
    emit(args, {**summary, "valid": True}, f"bundle is valid\n{_summary_text(summary)}")
    return 0
