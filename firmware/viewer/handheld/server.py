"""The handhelds' HTTPS listener: its own uvicorn server on a thread, beside the operator's page."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import uvicorn

from firmware.config import AppConfig
from firmware.viewer.console import Console
from firmware.viewer.handheld.app import create_handheld_app
from firmware.viewer.handheld.operator import HandheldSite
from firmware.viewer.handheld.service import Handhelds
from firmware.viewer.handheld.store import HandheldStore
from firmware.viewer.handheld.tls import Certificate, ensure_certificate
from firmware.viewer.threaded_server import ThreadedServer

log = logging.getLogger(__name__)

HANDHELD_DB = "handhelds.sqlite3"


def lan_address() -> str:
    """This laptop's address on its default route (no packet is sent: a UDP connect only picks a route)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 9))
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def open_handhelds(cfg: AppConfig, console: Console, state_dir: Path) -> tuple[HandheldSite, Certificate]:
    """The handheld store and service attached to `console`, and the certificate (made on first start)."""
    hh = cfg.handheld
    address = hh.address or lan_address()
    cert = ensure_certificate(state_dir, address)
    store = HandheldStore(state_dir / HANDHELD_DB)
    service = Handhelds(store, console.store, send=console.send_handheld_event, clock=console.clock,
                        ttl_s=hh.ttl_minutes * 60.0, pairing_s=hh.pairing_minutes * 60.0)
    service.when_changed = console.publish
    console.handhelds = service
    return HandheldSite(service, f"https://{address}:{hh.port}", cert.fingerprint), cert


class HandheldServer(ThreadedServer):
    """The phone app over HTTPS on a background thread; `port` 0 picks a free one. Close is safe twice."""

    def __init__(self, handhelds: Handhelds, cert: Certificate, host: str = "0.0.0.0", port: int = 8443) -> None:
        config = uvicorn.Config(create_handheld_app(handhelds), host=host, port=port, log_level="warning",
                                access_log=False, lifespan="off", ssl_certfile=str(cert.cert_file),
                                ssl_keyfile=str(cert.key_file))
        super().__init__(uvicorn.Server(config), "handheld-https",
                         f"the handheld listener did not start on {host}:{port} (port taken?)")
        log.info("handheld page at https://%s:%d/ (certificate %s)", host, self.port, cert.fingerprint)
