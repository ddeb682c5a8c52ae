"""`lfr keys init|pair|unpair|show`: the link's CURVE keys and the laptops paired with this appliance.

Pairing: run `lfr keys init` on the appliance and on the laptop; copy the laptop's `link.key` (public) to the
appliance and run `lfr keys pair --laptop-key FILE`; copy the appliance's `link.key` to the laptop as its
`appliance_public_key`. Both sides print fingerprints: read them to each other before trusting the pairing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.errors import KeyFileError
from firmware.link.keys import (
    SECRET_SUFFIX,
    AllowedKeys,
    check_z85_key,
    create_keypair,
    fingerprint,
    load_keypair,
    load_public,
)


def register(ksub: argparse._SubParsersAction) -> None:
    init = ksub.add_parser("init", help="make this machine's CURVE link keypair and print its fingerprint")
    init.add_argument("--dir", default=None, help="folder for link.key and link.key_secret "
                      "(default: the folder of link.secret_key in the configuration)")
    pair = ksub.add_parser("pair", help="allow a laptop's public key to connect to this appliance")
    pair.add_argument("--laptop-key", required=True, metavar="FILE", help="the laptop's link.key file")
    pair.add_argument("--comment", default="", help="who or which laptop this is, kept beside the key")
    unpair = ksub.add_parser("unpair", help="stop accepting a laptop key")
    unpair.add_argument("--laptop-key", required=True, metavar="FILE|FINGERPRINT",
                        help="the laptop's link.key file, or its fingerprint (or an unambiguous prefix)")
    show = ksub.add_parser("show", help="print this machine's key fingerprint and the paired laptops")
    for parser, func in ((init, _init), (pair, _pair), (unpair, _unpair), (show, _show)):
        add_config_argument(parser)
        add_json_argument(parser)
        parser.set_defaults(func=func)


def _init(args: argparse.Namespace) -> int:
    config = app_config(args).link
    directory = Path(args.dir) if args.dir else Path(config.secret_key).parent
    pair = create_keypair(directory)
    secret = directory / ("link" + SECRET_SUFFIX)
    emit(args, {"public_key_file": str(directory / "link.key"), "secret_key_file": str(secret),
                "fingerprint": pair.fingerprint},
         f"made {secret} (secret, mode 0600) and {directory / 'link.key'} (public)\n"
         f"fingerprint: {pair.fingerprint}")
    return 0


def _laptop_key(value: str) -> bytes:
    path = Path(value)
    if not path.exists():
        raise KeyFileError(f"laptop key file {path} does not exist")
    return check_z85_key(load_public(path), f"laptop key in {path}")


def _pair(args: argparse.Namespace) -> int:
    allowed = AllowedKeys(app_config(args).link.allowed_keys)
    key = _laptop_key(args.laptop_key)
    added = allowed.pair(key, args.comment)
    state = "paired" if added else "already paired"
    emit(args, {"fingerprint": fingerprint(key), "paired": True, "new": added,
                "allowed_keys": str(allowed.path)},
         f"laptop key {state}: {fingerprint(key)}\ncheck this fingerprint with the one the laptop printed")
    return 0


def _unpair(args: argparse.Namespace) -> int:
    allowed = AllowedKeys(app_config(args).link.allowed_keys)
    target: bytes | str = _laptop_key(args.laptop_key) if Path(args.laptop_key).exists() else args.laptop_key
    removed = allowed.unpair(target)
    emit(args, {"fingerprint": fingerprint(removed), "paired": False},
         f"laptop key unpaired: {fingerprint(removed)} (connections using it are refused from now on)")
    return 0


def _show(args: argparse.Namespace) -> int:
    config = app_config(args).link
    own = load_keypair(config.secret_key)
    laptops = AllowedKeys(config.allowed_keys).entries()
    lines = [f"this machine: {own.fingerprint} ({config.secret_key})",
             f"paired laptops ({len(laptops)}, {config.allowed_keys}):"]
    lines += [f"  {fingerprint(k)}  {comment}".rstrip() for k, comment in laptops.items()] or ["  none"]
    appliance = None
    if Path(config.appliance_public_key).exists():
        appliance = fingerprint(load_public(config.appliance_public_key))
        lines.append(f"appliance this laptop trusts: {appliance} ({config.appliance_public_key})")
    emit(args, {"fingerprint": own.fingerprint, "secret_key_file": config.secret_key, "appliance": appliance,
                "paired_laptops": [{"fingerprint": fingerprint(k), "comment": c}
                                   for k, c in laptops.items()]},
         "\n".join(lines))
    return 0
