"""`lfr viewer`: the operator's alert viewer on the laptop, a local web page fed by the encrypted link."""

from __future__ import annotations

import argparse
import dataclasses

from firmware.cli.common import add_config_argument, app_config
from firmware.config import AppConfig
from firmware.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("viewer", help="serve the operator's alert viewer (browser page on this laptop)")
    add_config_argument(p)
    p.add_argument("--host", default=None, help="address to serve the page on (default: viewer.host, "
                                                "127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="TCP port of the page (default: viewer.port, 8080)")
    p.add_argument("--handheld-cert", action="store_true",
                   help="make (or keep) the handhelds' HTTPS certificate for handheld.address, print its file "
                        "and SHA-256 fingerprint and exit (an install step; see docs/handheld.md)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.viewer.server import open_console, serve

    cfg = app_config(args)
    viewer = dataclasses.replace(cfg.viewer, **{k: v for k, v in (("host", args.host), ("port", args.port))
                                                if v is not None})
    if not 0 < viewer.port < 65536:
        raise ConfigError(f"--port {viewer.port} is not a TCP port")
    cfg = dataclasses.replace(cfg, viewer=viewer)
    if args.handheld_cert:
        return _handheld_cert(cfg)
    console = open_console(cfg)
    try:
        serve(console, viewer.host, viewer.port, cfg)
    finally:
        console.store.close()
    return 0


def _handheld_cert(cfg: AppConfig) -> int:
    from firmware.viewer.handheld.server import lan_address
    from firmware.viewer.handheld.tls import ensure_certificate
    from firmware.viewer.server import viewer_db_path

    address = cfg.handheld.address or lan_address()
    cert = ensure_certificate(viewer_db_path(cfg).parent, address)
    print(f"handheld certificate for {address}: {cert.cert_file}")
    print(f"SHA-256 fingerprint: {cert.fingerprint}")
    return 0
