"""Helpers for the viewer tests: a loopback appliance, a viewer console on a store file, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from firmware.bench.loopback import LoopbackAppliance, LoopbackKeys
from firmware.viewer.console import Console
from firmware.viewer.store import ViewerStore


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def console_for(appliance: LoopbackAppliance, keys: LoopbackKeys, store_path: Path,
                **kwargs: object) -> Console:
    """A console (not started) on a viewer store at `store_path`, linked to `appliance`."""
    return Console(ViewerStore(store_path), appliance.viewer_config, keypair=keys.laptop,
                   appliance_public=keys.appliance.public, **kwargs)  # type: ignore[arg-type]


def appliance_row(appliance: LoopbackAppliance, alert_id: str) -> tuple[str, str | None, str | None]:
    """(state, decision, note) of the alert in the appliance's own database."""
    row = appliance.db.execute("SELECT state, decision, decision_note FROM alerts WHERE id = ?",
                               [alert_id]).fetchone()
    return tuple(row)  # type: ignore[return-value]
