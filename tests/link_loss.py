"""The link's loss scenario over real sockets: alerts made while the viewer keeps stopping and restarting
and the appliance process is SIGKILLed and restarted; afterwards the viewer must hold every alert once, in
order. Used by `tests/test_link_loss.py` (small N) and `scripts/link_loss.py` (1,000 alerts, figures)."""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from link_fixtures import Relay, create_outbox, free_port, link_config, paired_keys

from firmware.link.messages import Alert
from firmware.link.viewer_link import ViewerLink

FIXTURES = Path(__file__).resolve().parent / "link_fixtures.py"


@dataclass
class LossReport:
    alerts: int
    made: int
    delivered_seqs: list[int]
    delivered_ids: list[str]
    made_ids: list[str]
    viewer_restarts: int
    network_cuts: int
    appliance_kills: int
    viewer_connections: int
    cuts_severing: int
    duplicates_dropped: int
    outbox_left: int
    seconds: float

    @property
    def exactly_once_in_order(self) -> bool:
        return self.delivered_ids == self.made_ids and self.delivered_seqs == list(range(1, self.alerts + 1))


class _Appliance:
    """The appliance as a child process that can be SIGKILLed and started again on the same ports."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(FIXTURES), "appliance", *self.args],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"appliance process did not start (said {line!r}, exit {self.proc.poll()})")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def run_loss(workdir: Path, alerts: int = 1000, viewer_restarts: int = 20, appliance_kills: int = 5,
             network_cuts: int = 10, stream_seconds: float = 12.0, seed: int = 1,
             timeout: float = 120.0) -> LossReport:
    """Make `alerts` alerts over about `stream_seconds`, interrupting both ends while they are made: the
    viewer stops and restarts, its connection is cut (through a relay), the appliance is SIGKILLed."""
    rng = random.Random(seed)
    keys = paired_keys(workdir / "keys")
    db_path = workdir / "appliance.db"
    db = create_outbox(db_path)
    alerts_port, preview_port = free_port(), free_port()
    relay = Relay(alerts_port)
    config = link_config(keys, relay.port, preview_port)
    appliance = _Appliance(["--db", str(db_path), "--keys", str(keys.directory), "--alerts-port",
                            str(alerts_port), "--preview-port", str(preview_port), "--total", str(alerts),
                            "--rate", str(alerts / stream_seconds)])
    got: list[Alert] = []
    dropped = 0

    def open_viewer() -> ViewerLink:
        return ViewerLink(dataclasses.replace(config), when_alert=got.append, keypair=keys.laptop,
                          appliance_public=keys.appliance.public,
                          last_seq=got[-1].seq if got else 0, seen=[a.alert_id for a in got])

    def made() -> int:
        return int(db.execute("SELECT COUNT(*) FROM made_alerts").fetchone()[0])

    start = time.monotonic()
    appliance.start()
    viewer: ViewerLink | None = open_viewer()
    restarts = kills = cuts = 0
    # Spread the interruptions over the stream so each lands while alerts are still being made.
    viewer_gap, kill_gap = stream_seconds / (viewer_restarts + 2), stream_seconds / (appliance_kills + 1.5)
    cut_gap = stream_seconds / (network_cuts + 2)
    next_viewer = start + rng.uniform(0.3, 1.0) * viewer_gap
    next_kill = start + rng.uniform(0.6, 1.0) * kill_gap
    next_cut = start + rng.uniform(0.3, 1.0) * cut_gap
    try:
        while True:
            now = time.monotonic()
            if now - start > timeout:
                break
            streaming = made() < alerts
            if streaming and viewer is not None and restarts < viewer_restarts and now >= next_viewer:
                assert viewer is not None
                dropped += viewer.protocol.receiver.duplicates
                viewer.close()
                viewer = None
                time.sleep(rng.uniform(0.0, 0.4) * viewer_gap)  # the laptop is away for a while
                viewer = open_viewer()
                restarts += 1
                next_viewer = time.monotonic() + rng.uniform(0.5, 1.0) * viewer_gap
            if streaming and cuts < network_cuts and now >= next_cut:
                relay.cut(rng.uniform(0.0, 0.5) * cut_gap)
                cuts += 1
                next_cut = time.monotonic() + rng.uniform(0.5, 1.0) * cut_gap
            if streaming and kills < appliance_kills and now >= next_kill:
                appliance.kill()
                kills += 1
                time.sleep(rng.uniform(0.0, 0.3))
                appliance.start()
                next_kill = time.monotonic() + rng.uniform(0.7, 1.0) * kill_gap
            if not streaming and len(got) >= alerts:
                break
            time.sleep(0.01)
        time.sleep(0.5)  # let the last acknowledgements reach the outbox
    finally:
        if viewer is not None:
            dropped += viewer.protocol.receiver.duplicates
            viewer.close()
        appliance.stop()
        severing = relay.severed  # before closing: the relay's own shutdown is no interruption
        relay.close()
    rows = db.execute("SELECT alert_id FROM made_alerts ORDER BY seq").fetchall()
    left = int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    db.close()
    return LossReport(alerts=alerts, made=len(rows), delivered_seqs=[a.seq for a in got],
                      delivered_ids=[a.alert_id for a in got], made_ids=[r[0] for r in rows],
                      viewer_restarts=restarts, network_cuts=cuts, appliance_kills=kills,
                      viewer_connections=relay.connections, cuts_severing=severing,
                      duplicates_dropped=dropped,
                      outbox_left=left, seconds=time.monotonic() - start)
