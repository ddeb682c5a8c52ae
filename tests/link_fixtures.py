"""Helpers for the link tests: the outbox table, test alerts, paired keys, free ports, an appliance process.

`create_outbox` stands in for the store's migration until it lands (same schema, on a real sqlite file).
Run as a script (`python tests/link_fixtures.py appliance ...`) it is the appliance process of the loss test:
it makes alerts into the outbox, each in one transaction with its row in `made_alerts`, and serves the link
until killed.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from sqlite_utils import Database

from firmware.config import LinkConfig
from firmware.link import outbox
from firmware.link.keys import AllowedKeys, KeyPair, create_keypair, load_keypair
from firmware.link.messages import Alert

OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    alert_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    header TEXT NOT NULL,
    probe_jpeg BLOB,
    reference_jpeg BLOB,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_sent REAL
)
"""
# The loss test's record of which alerts the appliance made: written in the alert's own transaction.
MADE_SCHEMA = "CREATE TABLE IF NOT EXISTS made_alerts (seq INTEGER PRIMARY KEY, alert_id TEXT NOT NULL)"


def create_outbox(path: Path | str) -> Database:
    """A sqlite file (WAL) with the outbox table exactly as the store's migration will create it."""
    db = Database(str(path))
    db.enable_wal()
    with db.atomic():
        db.execute(OUTBOX_SCHEMA)
        db.execute(MADE_SCHEMA)
    return db


def tiny_jpeg(value: int) -> bytes:
    """A small real JPEG (a flat 16×16 grey square), so alerts carry decodable images but no face."""
    ok, buf = cv2.imencode(".jpg", np.full((16, 16, 3), value % 256, np.uint8))
    assert ok
    return buf.tobytes()


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


@dataclass(frozen=True)
class PairedKeys:
    appliance: KeyPair
    laptop: KeyPair
    key_dir: Path


def paired_keys(root: Path) -> PairedKeys:
    """An appliance keypair, a laptop keypair, and the laptop paired with the appliance."""
    appliance = create_keypair(root / "appliance", "link")
    laptop = create_keypair(root / "laptop", "link")
    AllowedKeys(root / "appliance" / "allowed_laptops").pair(laptop.public, "test laptop")
    return PairedKeys(appliance, laptop, root)


def link_config(keys: PairedKeys, alerts_port: int = 0, preview_port: int = 0, **timing: float) -> LinkConfig:
    """Link settings on 127.0.0.1 for tests: given ports (0: any free one) and fast timings."""
    fast = {"heartbeat_interval": 0.1, "link_timeout": 0.6, "resend_interval": 0.5, **timing}
    return dataclasses.replace(
        LinkConfig(), bind_address="127.0.0.1", appliance_host="127.0.0.1", alerts_port=alerts_port,
        preview_port=preview_port, secret_key=str(keys.key_dir / "appliance" / "link.key_secret"),
        allowed_keys=str(keys.key_dir / "appliance" / "allowed_laptops"), **fast)  # type: ignore[arg-type]


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
    with ApplianceLink(link_config(keys, args.alerts_port, args.preview_port), args.db,
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
