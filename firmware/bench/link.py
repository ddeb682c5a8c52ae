"""`lfr bench link`: capture-to-screen latency of alerts over the real link on loopback.

From an alert's creation (`t_wall` given to `record_alert` on the appliance side) to the viewer's page
having rendered it: the page reports the wall time of the animation frame after its DOM update over the
WebSocket (same machine, same clock), once the alert is in the queue and its probe and reference images are
decoded (each alert is decided as soon as shown, so the next one opens in full). Without a browser the time
is taken when a WebSocket client receives the alert event, and the result says so (`measured_at`). Alerts
are raised one at a time, each after the previous one was shown: the latency of an alert, not of a queue.

Load (`load` > 0): the same run is made twice, first quiet, then with `load` busy processes (each a Python loop
that never sleeps, `BusyLoad`) sharing the machine's cores, as the camera pipelines share them with the hub on
the van. Each alert's latency is split where it is spent: `record` (the appliance's `record_alert`
transaction), `link` (from the commit to the viewer having received it: the link worker's wake-up, the send,
CURVE, the viewer's worker) and `screen` (from there to the screen: the viewer's store, the WebSocket, the page).

The appliance end (its store, `record_alert`, `ApplianceLink`) runs in a process of its own (`ApplianceProcess`),
as on the van, where it and the laptop's viewer are separate computers: its threads do not wait for the GIL of
the viewer's and the bench's. `in_process` runs it in the bench's process instead (the layout before, for
comparison). All times are wall times (`time.time()`, the page's `performance.timeOrigin + now()`): one clock
for every process of the machine.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from firmware.bench import browser
from firmware.bench.loopback import ApplianceProcess, LoopbackAppliance, make_keys
from firmware.errors import LfrError
from firmware.viewer.console import Console
from firmware.viewer.server import ViewerServer
from firmware.viewer.store import ViewerStore

log = logging.getLogger(__name__)

SHOW_TIMEOUT_S = 10.0
BUSY_LOOP = "while True:\n    pass\n"
CAMERA_NICE = 10
"""The niceness of the camera pipelines on the van (`Nice=` in systemd/lfr-camera@.service): the busy
processes of `--load` stand for them and run at it unless told otherwise."""


class BusyLoad:
    """`n` child processes that each keep one core busy (a Python loop) until closed: a documented CPU load.

    They run at niceness `nice` (default: the camera pipelines' `CAMERA_NICE`), as camera processes would.
    """

    def __init__(self, n: int, nice: int = CAMERA_NICE) -> None:
        if n < 0:
            raise LfrError(f"--load {n}: the number of busy processes cannot be negative")
        if not 0 <= nice <= 19:
            raise LfrError(f"--load-nice {nice}: a niceness from 0 to 19 (lower priority than the bench)")
        self.nice = nice
        self.procs = [subprocess.Popen([sys.executable, "-c", f"import os\nos.nice({nice})\n{BUSY_LOOP}"],
                                       stdin=subprocess.DEVNULL) for _ in range(n)]

    def close(self) -> None:
        """Stop the busy processes (each by its own pid); safe to call twice."""
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()
        self.procs = []

    def __enter__(self) -> BusyLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Shown:
    """Wall times at which alerts were shown, filled from another thread."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self._cond = threading.Condition()

    def add(self, alert_id: str, t_wall: float) -> None:
        with self._cond:
            self.times.setdefault(alert_id, t_wall)
            self._cond.notify_all()

    def wait_for(self, alert_id: str, timeout: float) -> float:
        with self._cond:
            if not self._cond.wait_for(lambda: alert_id in self.times, timeout):
                raise LfrError(f"alert {alert_id} was not shown within {timeout:.0f} s")
            return self.times[alert_id]


def run(alerts: int = 200, *, use_browser: bool | None = None, load: int = 0, load_nice: int = CAMERA_NICE,
        in_process: bool = False, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Raise `alerts` alerts and time each from creation to the screen; figures in milliseconds.

    `use_browser` None means: the browser when available, else the WebSocket receive time. With `load` > 0 the
    top-level figures are those of the run under `load` busy processes at niceness `load_nice`, and `quiet`
    holds the run without. `in_process` runs the appliance end in this process rather than in its own.
    """
    if alerts < 1:
        raise LfrError(f"--alerts {alerts}: need at least one alert")
    if load < 0:
        raise LfrError(f"--load {load}: the number of busy processes cannot be negative")
    if use_browser is None:
        use_browser = browser.is_available()
    if load == 0:
        return {**_run_once(alerts, use_browser, in_process, progress), "load": 0}
    quiet = _run_once(alerts, use_browser, in_process, progress)
    with BusyLoad(load, load_nice):
        loaded = _run_once(alerts, use_browser, in_process, progress)
    return {**loaded, "load": load, "load_nice": load_nice, "quiet": quiet}


PARTS = ("record", "link", "viewer", "page")
"""Where each alert's latency goes: the appliance's `record_alert`; the link from the commit to the viewer's
worker; the viewer (its store, the event on the WebSocket); the page (images fetched and decoded, drawn)."""


def _run_once(alerts: int, use_browser: bool, in_process: bool,
              progress: Callable[[int], None] | None) -> dict[str, Any]:
    """One run of `alerts` alerts on a fresh loopback appliance (its own process unless `in_process`) and viewer."""
    shown = _Shown()
    latencies: list[float] = []
    parts: list[tuple[float, ...]] = []
    with tempfile.TemporaryDirectory(prefix="lfr-bench-link-") as tmp:
        root = Path(tmp)
        keys = make_keys(root / "keys")
        appliance: LoopbackAppliance | ApplianceProcess
        appliance = LoopbackAppliance(root, keys) if in_process else ApplianceProcess(root, keys)
        with appliance, ViewerStore(root / "viewer.sqlite3") as store:
            appliance.set_health()
            console = Console(store, appliance.viewer_config, keypair=keys.laptop,
                              appliance_public=keys.appliance.public, sound=False)
            if use_browser:
                console.when_rendered = shown.add
            screen = _screen(use_browser, shown)
            with console, ViewerServer(console) as server, screen.open(server.url):
                for n in range(1, alerts + 1):
                    alert = appliance.raise_alert(n)
                    t_shown = shown.wait_for(alert.id, SHOW_TIMEOUT_S)
                    recorded = alert.t_wall + appliance.last_record_s
                    kept = store.alert(alert.id)
                    received = float(kept["received"]) if kept is not None else recorded
                    on_ws = screen.events.times.get(alert.id, received) if use_browser else t_shown
                    latencies.append((t_shown - alert.t_wall) * 1000)
                    parts.append(tuple(1000 * d for d in (recorded - alert.t_wall, received - recorded,
                                                          on_ws - received, t_shown - on_ws)))
                    # as the operator would: the next alert then opens in full, images and all
                    console.decide(alert.id, "false_alert", "bench")
                    if progress is not None:
                        progress(n)
    ms, split = np.array(latencies), np.array(parts)
    rec = split[:, 0]
    return {"alerts": len(latencies), "measured_at": "browser render" if use_browser else "websocket receive",
            "appliance": "bench process" if in_process else "own process",
            "p50_ms": _r(np.percentile(ms, 50)), "p99_ms": _r(np.percentile(ms, 99)), "mean_ms": _r(ms.mean()),
            "max_ms": _r(ms.max()), "min_ms": _r(ms.min()),
            # of which the appliance's record_alert transaction (part of every latency above)
            "record_alert_p50_ms": _r(np.percentile(rec, 50)), "record_alert_p99_ms": _r(np.percentile(rec, 99)),
            "parts": {name: {"p50_ms": _r(np.percentile(split[:, i], 50)),
                             "p99_ms": _r(np.percentile(split[:, i], 99)), "max_ms": _r(split[:, i].max())}
                      for i, name in enumerate(PARTS)},
            # the slowest alerts split into their parts: where the tail comes from
            "slowest": [{"total_ms": _r(ms[i]), **{f"{name}_ms": _r(split[i, j]) for j, name in enumerate(PARTS)}}
                        for i in np.argsort(-ms)[:5]]}


def _r(value: float) -> float:
    return round(float(value), 2)


class _screen:
    """The consumer of the viewer's events: a Chromium page, or a plain WebSocket client (no browser).

    A WebSocket client always listens and notes in `events` when each alert event left the viewer; with the
    page beside it, that splits the screen time into the viewer's part and the page's.
    """

    def __init__(self, use_browser: bool, shown: _Shown) -> None:
        self.use_browser = use_browser
        self.events = _Shown() if use_browser else shown
        self.url = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def open(self, url: str) -> Iterator[None]:
        """Connect to the viewer at `url` and wait until it shows the link up; disconnect on exit."""
        self.url = url
        opened = threading.Event()
        self._thread = threading.Thread(target=self._listen, args=(opened,), name="bench-ws", daemon=True)
        self._thread.start()
        try:
            _require(opened.wait(SHOW_TIMEOUT_S), "the viewer's WebSocket did not open")
            if not self.use_browser:
                yield
                return
            with browser.chromium_page() as page:
                page.goto(url)
                page.wait_for_selector("#link.up", timeout=SHOW_TIMEOUT_S * 1000)
                yield
        finally:
            self._stop.set()
            self._thread.join(timeout=5)

    def _listen(self, opened: threading.Event) -> None:
        from websockets.sync.client import connect

        with connect(self.url.replace("http://", "ws://") + "ws") as ws:
            while not self._stop.is_set():
                try:
                    event = json.loads(ws.recv(timeout=0.2))
                except TimeoutError:
                    continue
                if event.get("type") == "hello":
                    opened.set()
                elif event.get("type") == "alert":
                    self.events.add(event["alert"]["id"], time.time())


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise LfrError(message)
