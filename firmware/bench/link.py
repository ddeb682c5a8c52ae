"""`lfr bench link`: capture-to-screen latency of alerts over the real link on loopback.

From an alert's creation (`t_wall` given to `record_alert` on the appliance side) to the viewer's page
having rendered it: the page reports the wall time of the animation frame after its DOM update over the
WebSocket (same machine, same clock), once the alert is in the queue and its probe and reference images are
decoded (each alert is decided as soon as shown, so the next one opens in full). Without a browser the time
is taken when a WebSocket client receives the alert event, and the result says so (`measured_at`). Alerts
are raised one at a time, each after the previous one was shown: the latency of an alert, not of a queue.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from firmware.bench import browser
from firmware.bench.loopback import LoopbackAppliance, make_keys
from firmware.errors import LfrError
from firmware.viewer.console import Console
from firmware.viewer.server import ViewerServer
from firmware.viewer.store import ViewerStore

log = logging.getLogger(__name__)

SHOW_TIMEOUT_S = 10.0


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


def run(alerts: int = 200, *, use_browser: bool | None = None,
        progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Raise `alerts` alerts and time each from creation to the screen; figures in milliseconds.

    `use_browser` None means: the browser when available, else the WebSocket receive time.
    """
    if alerts < 1:
        raise LfrError(f"--alerts {alerts}: need at least one alert")
    if use_browser is None:
        use_browser = browser.is_available()
    shown = _Shown()
    latencies: list[float] = []
    recording: list[float] = []
    with tempfile.TemporaryDirectory(prefix="lfr-bench-link-") as tmp:
        root = Path(tmp)
        keys = make_keys(root / "keys")
        with LoopbackAppliance(root, keys) as appliance, ViewerStore(root / "viewer.sqlite3") as store:
            appliance.set_health()
            console = Console(store, appliance.viewer_config, keypair=keys.laptop,
                              appliance_public=keys.appliance.public, sound=False)
            if use_browser:
                console.when_rendered = shown.add
            with console, ViewerServer(console) as server:
                with _screen(server.url, use_browser, shown) as ready:
                    ready()
                    for n in range(1, alerts + 1):
                        alert = appliance.raise_alert(n)
                        latencies.append((shown.wait_for(alert.id, SHOW_TIMEOUT_S) - alert.t_wall) * 1000)
                        recording.append(appliance.last_record_s * 1000)
                        # as the operator would: the next alert then opens in full, images and all
                        console.decide(alert.id, "false_alert", "bench")
                        if progress is not None:
                            progress(n)
    ms, rec = np.array(latencies), np.array(recording)
    return {"alerts": len(latencies), "measured_at": "browser render" if use_browser else "websocket receive",
            "p50_ms": _r(np.percentile(ms, 50)), "p99_ms": _r(np.percentile(ms, 99)), "mean_ms": _r(ms.mean()),
            "max_ms": _r(ms.max()), "min_ms": _r(ms.min()),
            # of which the appliance's record_alert transaction (part of every latency above)
            "record_alert_p50_ms": _r(np.percentile(rec, 50)), "record_alert_p99_ms": _r(np.percentile(rec, 99))}


def _r(value: float) -> float:
    return round(float(value), 2)


class _screen:
    """The consumer of the viewer's events: a Chromium page, or a plain WebSocket client (no browser)."""

    def __init__(self, url: str, use_browser: bool, shown: _Shown) -> None:
        self.url, self.use_browser, self.shown = url, use_browser, shown
        self._page_cm: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Callable[[], None]:
        if self.use_browser:
            self._page_cm = browser.chromium_page()
            page = self._page_cm.__enter__()
            page.goto(self.url)
            return lambda: page.wait_for_selector("#link.up", timeout=SHOW_TIMEOUT_S * 1000)
        opened = threading.Event()
        self._thread = threading.Thread(target=self._listen, args=(opened,), name="bench-ws", daemon=True)
        self._thread.start()
        return lambda: _require(opened.wait(SHOW_TIMEOUT_S), "the viewer's WebSocket did not open")

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
                    self.shown.add(event["alert"]["id"], time.time())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._page_cm is not None:
            self._page_cm.__exit__(None, None, None)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise LfrError(message)
