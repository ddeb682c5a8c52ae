"""Helpers for the link tests: the outbox table, test alerts, paired keys, free ports, an appliance process.

`create_outbox` opens the store's own database (its migrations create the outbox) on a real file.
Run as a script (`python tests/link_fixtures.py appliance ...`) it is the appliance process of the loss test:
it makes alerts into the outbox, each in one transaction with its row in `made_alerts`, and serves the link
until killed.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from PIL import Image
from sqlite_utils import Database

from firmware.bench.loopback import LoopbackKeys, make_keys
from firmware.config import LinkConfig
from firmware.link.keys import load_keypair
from firmware.link.messages import Alert
from firmware.store import outbox
from firmware.store.db import open_db

# The loss test's record of which alerts the appliance made: written in the alert's own transaction.
MADE_SCHEMA = "CREATE TABLE IF NOT EXISTS made_alerts (seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL)"


def create_outbox(path: Path | str) -> Database:
    """The appliance's real database (store migrations: outbox, audit, ...) plus the loss test's own table."""
    db = open_db(path)
    with db.atomic():
        db.execute(MADE_SCHEMA)
    return db


def tiny_jpeg(value: int) -> bytes:
    """A small real JPEG (a flat 16×16 grey square), so alerts carry decodable images but no face."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (value % 256,) * 3).save(buf, "JPEG")
    return buf.getvalue()


def make_alert(seq: int, *, alert_id: str | None = None) -> Alert:
    return Alert(alert_id=alert_id or str(uuid.uuid4()), seq=seq, t_wall=time.time(), camera="cam0",
                 track_id=seq * 10, subject_id=f"S{seq % 7}", subject_name=f"Subject {seq % 7}",
                 category="wanted", reason="test alert", score=0.75, probe_jpeg=tiny_jpeg(seq),
                 reference_jpeg=tiny_jpeg(seq + 100))


def add_alert(db: Database, seq: int) -> Alert:
    """Make alert `seq` in one transaction: its outbox row and its `made_alerts` row, or neither."""
    alert = make_alert(seq)
    with db.atomic():
        db.execute("INSERT INTO made_alerts (seq, alert_id) VALUES (?, ?)", [seq, alert.alert_id])
        outbox.enqueue(db, alert, time.time())
    return alert


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for processes that must rebind the same port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Relay:
    """A TCP relay from a local port to `target`, whose connections a test can cut, like a pulled cable.

    `cut(seconds)` closes every connection through it and refuses new ones for `seconds`.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._refuse_until = 0.0
        self.connections = 0
        self.severed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="relay", daemon=True)
        self._thread.start()

    def cut(self, seconds: float) -> None:
        with self._lock:
            self._refuse_until = time.monotonic() + seconds
            self.severed += bool(self._open)
            for sock in self._open:
                _shut(sock)
            self._open.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.cut(0)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                if time.monotonic() < self._refuse_until:
                    _shut(client)
                    continue
                try:
                    server = socket.create_connection(("127.0.0.1", self.target_port), timeout=1)
                except OSError:
                    _shut(client)
                    continue
                server.settimeout(None)
                self._open += [client, server]
                self.connections += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side
    sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy bytes one way until either side closes."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass  # the relay cut this connection
    _shut(src)
    _shut(dst)


# The loopback benchmark's paired keys serve the tests too (one way to make them).
PairedKeys = LoopbackKeys
paired_keys = make_keys


def link_config(keys: PairedKeys, alerts_port: int = 0, preview_port: int = 0, **timing: float) -> LinkConfig:
    """Link settings on 127.0.0.1 for tests: given ports (0: any free one) and fast timings."""
    fast = {"heartbeat_interval": 0.1, "link_timeout": 0.6, "resend_interval": 0.5, **timing}
    return dataclasses.replace(
        LinkConfig(), bind_address="127.0.0.1", appliance_host="127.0.0.1", alerts_port=alerts_port,
        preview_port=preview_port, secret_key=str(keys.directory / "appliance" / "link.key_secret"),
        allowed_keys=str(keys.directory / "appliance" / "allowed_laptops"), **fast)  # type: ignore[arg-type]


def _appliance_main(argv: list[str]) -> int:
    """The appliance process of the loss test: serve the link, make alerts up to --total, until killed."""
    from firmware.link.appliance_link import ApplianceLink

    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--keys", required=True)
    parser.add_argument("--alerts-port", type=int, required=True)
    parser.add_argument("--preview-port", type=int, required=True)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="alerts per second")
    args = parser.parse_args(argv)
    root = Path(args.keys)
    keys = PairedKeys(load_keypair(root / "appliance" / "link.key_secret"),
                      load_keypair(root / "laptop" / "link.key_secret"), root)
    db = create_outbox(args.db)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ApplianceLink(link_config(keys, args.alerts_port, args.preview_port), outbox.opener(args.db),
                       when_decision=lambda d: None) as link:
        print("ready", flush=True)
        while not stop.is_set():
            made = int(db.execute("SELECT COUNT(*) FROM made_alerts").fetchone()[0])
            if made >= args.total:
                stop.wait(0.2)
                continue
            add_alert(db, made + 1)
            link.notify()
            stop.wait(1.0 / args.rate)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["appliance"]:
        sys.exit("usage: link_fixtures.py appliance --db FILE --keys DIR --alerts-port N ...")
    sys.exit(_appliance_main(sys.argv[2:]))
