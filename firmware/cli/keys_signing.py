"""`lfr keys signing-init`: make the Ed25519 key pair headquarters signs watchlist bundles with."""

from __future__ import annotations

import argparse

from firmware.cli.common import add_json_argument, emit
from firmware.watchlist.signing import init_signing_keys, short_fingerprint


def register(ksub: argparse._SubParsersAction) -> None:
    p = ksub.add_parser("signing-init", help="make a watchlist signing key pair (headquarters)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for lfr-signing.key (mode 0600) and lfr-signing.pub; created 0700 if absent")
    add_json_argument(p)
    p.set_defaults(func=_signing_init)


def _signing_init(args: argparse.Namespace) -> int:
    pair = init_signing_keys(args.out)
    emit(args, {"private_key": str(pair.private), "public_key": str(pair.public),
                "fingerprint": pair.fingerprint},
         f"private key: {pair.private} (keep it offline; mode 0600)\n"
         f"public key:  {pair.public} (copy to each van's trusted signers folder)\n"
         f"fingerprint: {pair.fingerprint}  ({short_fingerprint(pair.fingerprint)})")
    return 0
