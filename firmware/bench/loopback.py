"""An appliance end on 127.0.0.1 for the viewer's tests and benchmark: a real store with an open
deployment, a real `ApplianceLink`, alerts raised through `record_alert` and decisions recorded with
`record_decision` (alert row, stats, audit), exactly as the appliance does. Images are face-free stand-ins.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

from firmware.config import LinkConfig
from firmware.errors import LfrError
from firmware.hardware.clock import Clock, SystemClock
from firmware.link.appliance_link import ApplianceLink
from firmware.link.keys import AllowedKeys, KeyPair, create_keypair
from firmware.link.messages import Decision, HandheldEvent, Health
from firmware.store import deployments, outbox
from firmware.store.alerts import NewAlert, record_alert, record_decision
from firmware.store.db import Checkpointer, open_db
from firmware.store.handheld import record_handheld_event
from firmware.viewer.sample_images import gradient_jpeg, pixelated_scene_jpeg

log = logging.getLogger(__name__)

FAST_TIMINGS = {"heartbeat_interval": 0.1, "link_timeout": 0.6, "resend_interval": 0.5}
"""Link timings for loopback runs: the link shows down 0.6 s after the appliance goes quiet."""


@dataclasses.dataclass(frozen=True)
class LoopbackKeys:
    """The appliance's and the laptop's CURVE keypairs, the laptop paired with the appliance."""

    appliance: KeyPair
    laptop: KeyPair
    directory: Path


def make_keys(directory: Path) -> LoopbackKeys:
    """Fresh keypairs in `directory` with the laptop paired (as `lfr keys init` / `pair` would)."""
    appliance = create_keypair(directory / "appliance", "link")
    laptop = create_keypair(directory / "laptop", "link")
    AllowedKeys(directory / "appliance" / "allowed_laptops").pair(laptop.public, "loopback viewer")
    return LoopbackKeys(appliance, laptop, directory)


def loopback_config(keys: LoopbackKeys, alerts_port: int = 0, preview_port: int = 0,
                    **timings: float) -> LinkConfig:
    """Link settings on 127.0.0.1 with fast heartbeats; ports 0 mean any free port."""
    return dataclasses.replace(
        LinkConfig(), bind_address="127.0.0.1", appliance_host="127.0.0.1", alerts_port=alerts_port,
        preview_port=preview_port, secret_key=str(keys.directory / "appliance" / "link.key_secret"),
        allowed_keys=str(keys.directory / "appliance" / "allowed_laptops"),
        **{**FAST_TIMINGS, **timings})  # type: ignore[arg-type]


class LoopbackAppliance:
    """A store with an open deployment served by a real `ApplianceLink`; `viewer_config` is the laptop's.

    `timings` override the fast link timings (`heartbeat_interval`, `link_timeout`, `resend_interval`).
    """

    def __init__(self, directory: Path, keys: LoopbackKeys, *, clock: Clock | None = None,
                 alerts_port: int = 0, preview_port: int = 0, **timings: float) -> None:
        self.clock = clock or SystemClock()
        self.db_path = directory / "appliance.sqlite3"
        # as the hub: no connection checkpoints on commit, a Checkpointer thread does it (store/db.py)
        self.db = open_db(self.db_path, autocheckpoint=False)
        self.deployment = deployments.current(self.db) or deployments.start(
            self.db, authority="TEST-AUTH-1", officer="PC Loopback", location="Test Street", threshold=0.6,
            clock=self.clock, actor="test")
        self.decisions: list[Decision] = []
        self.last_record_s = 0.0
        """Seconds the newest `raise_alert` spent in `record_alert` (the appliance's own transaction)."""
        config = loopback_config(keys, alerts_port, preview_port, **timings)
        self.link = ApplianceLink(config, outbox.opener(self.db_path, autocheckpoint=False),
                                  when_decision=self._record,
                                  when_handheld_event=self._record_handheld, keypair=keys.appliance)
        self.viewer_config = dataclasses.replace(config, alerts_port=self.link.alerts_port,
                                                 preview_port=self.link.preview_port)
        self.checkpointer = Checkpointer(self.db_path)

    def _record(self, decision: Decision) -> None:
        """The link's `when_decision`: one connection per call (it runs on the link's thread)."""
        db = open_db(self.db_path, check_integrity=False, autocheckpoint=False)
        try:
            record_decision(db, decision.alert_id, decision.outcome, clock=self.clock,
                            actor="operator:loopback-viewer", note=decision.note, decision_id=decision.decision_id)
        finally:
            db.close()
        self.decisions.append(decision)

    def _record_handheld(self, event: HandheldEvent) -> None:
        """The link's `when_handheld_event`: audit row (and alert row and stats for answers)."""
        db = open_db(self.db_path, check_integrity=False, autocheckpoint=False)
        try:
            record_handheld_event(db, event, clock=self.clock, actor="viewer:loopback-viewer")
        finally:
            db.close()

    def raise_alert(self, n: int, *, camera: str = "cam0", category: str = "wanted", score: float = 0.82,
                    subject_id: str | None = None, name: str | None = None,
                    reason: str = "Test warrant – synthetic subject") -> NewAlert:
        """Record alert `n` (face-free images) and wake the link; the alert's `t_wall` is its creation."""
        subject_id = subject_id or f"TEST-{n % 50:03d}"
        probe = gradient_jpeg(f"TEST PROBE\n{camera} #{n}", 0.02 + 0.07 * (n % 5))
        reference = gradient_jpeg(f"TEST REFERENCE\n{subject_id}", 0.55)
        context = pixelated_scene_jpeg(f"TEST SCENE\n{camera} #{n}")  # all images made before t_wall is taken
        alert = NewAlert(deployment_id=self.deployment.id, t_wall=time.time(), t_mono=time.monotonic(),
                         camera=camera, track_id=n, subject_id=subject_id, subject_name=name or f"Test Subject {n}",
                         score=score, category=category, reason=reason,
                         probe_jpeg=probe, reference_jpeg=reference,
                         context_jpeg=context)
        record_alert(self.db, alert, actor=f"pipeline:{camera}")
        self.last_record_s = time.time() - alert.t_wall
        self.link.notify()
        return alert

    def set_health(self, **changes: object) -> Health:
        """Publish a health state (defaults describe a healthy test appliance)."""
        fields: dict[str, object] = {
            "t_wall": time.time(), "cameras_fps": {"cam0": 14.8}, "accelerator": "cpu (XNNPACK, int8)",
            "temperature_c": 52.0, "disk_free_mb": 48_000.0, "watchlist_size": 120,
            "watchlist_expires": time.time() + 10 * 3600,
            "deployment": f"{self.deployment.id}: {self.deployment.location}", **changes}
        health = Health(**fields)  # type: ignore[arg-type]
        self.link.set_health(health)
        return health

    def close(self) -> None:
        """Stop the link and close the store; safe to call twice."""
        self.link.close()
        self.checkpointer.close()
        self.db.close()

    def __enter__(self) -> LoopbackAppliance:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class RaisedAlert:
    """An alert raised in another process: its id and creation time (Unix seconds, `time.time()`)."""

    id: str
    t_wall: float


REPLY_TIMEOUT_S = 30.0
"""How long `ApplianceProcess` waits for its child to start or answer before giving up."""


class ApplianceProcess:
    """A `LoopbackAppliance` in a process of its own (multiprocessing, spawn), driven over a pipe.

    As on the van, where the appliance and the laptop's viewer are separate computers, the appliance's threads
    (record_alert, the link worker, the checkpointer) then do not share a GIL with the viewer's. Times crossing
    the pipe are wall times (`time.time()`, one clock for every process of the machine), as the page's are.
    Same interface as `LoopbackAppliance` for the bench: `viewer_config`, `raise_alert`, `last_record_s`,
    `set_health`, `close`.
    """

    def __init__(self, directory: Path, keys: LoopbackKeys) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_appliance, args=(child, directory, keys),
                                 name="lfr-bench-appliance", daemon=True)
        self._proc.start()
        child.close()
        self.pid: int = self._proc.pid or 0
        self.last_record_s = 0.0
        """Seconds the newest `raise_alert` spent in `record_alert`, measured in the appliance's process."""
        try:
            self.viewer_config: LinkConfig = self._call("config")
        except BaseException:
            self.close()
            raise

    def raise_alert(self, n: int) -> RaisedAlert:
        """Record alert `n` in the appliance's process and wake its link (`LoopbackAppliance.raise_alert`)."""
        alert_id, t_wall, self.last_record_s = self._call("raise", n)
        return RaisedAlert(alert_id, t_wall)

    def set_health(self) -> None:
        """Publish the healthy test appliance's health state."""
        self._call("health")

    def _call(self, verb: str, *args: object) -> Any:
        try:
            self._conn.send((verb, *args))
            answered = self._conn.poll(REPLY_TIMEOUT_S)
            ok, value = self._conn.recv() if answered else (False, f"no answer within {REPLY_TIMEOUT_S:.0f} s")
        except (EOFError, OSError):
            self._proc.join(timeout=5)
            ok, value = False, f"it exited (code {self._proc.exitcode}); its error is above"
        if not ok:
            raise LfrError(f"the bench's appliance process (pid {self.pid}) failed on '{verb}': {value}")
        return value

    def close(self) -> None:
        """Ask the child to close its appliance and exit; kill it (by pid) if it does not; safe to call twice."""
        if self._proc.is_alive():
            try:
                self._conn.send(("close",))
            except OSError:
                pass
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                log.warning("bench appliance process %s did not stop; killing it", self.pid)
                self._proc.kill()
                self._proc.join()
        self._conn.close()

    def __enter__(self) -> ApplianceProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _serve_appliance(conn: Connection, directory: Path, keys: LoopbackKeys) -> None:
    """The child of `ApplianceProcess`: run a `LoopbackAppliance` and answer the parent until told to close."""
    with conn, LoopbackAppliance(directory, keys) as appliance:
        while True:
            try:
                verb, *args = conn.recv()
            except EOFError:  # the parent went away
                return
            if verb == "close":
                return
            try:
                if verb == "config":
                    value: object = appliance.viewer_config
                elif verb == "raise":
                    alert = appliance.raise_alert(*args)
                    value = (alert.id, alert.t_wall, appliance.last_record_s)
                elif verb == "health":
                    appliance.set_health()
                    value = None
                else:
                    raise LfrError(f"unknown request {verb!r}")
            except LfrError as e:
                conn.send((False, str(e)))
                continue
            conn.send((True, value))
