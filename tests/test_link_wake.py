"""ApplianceLink.notify wakes the link's worker at once (regression: it waited out the worker's poll)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from viewer_fixtures import console_for, wait_for

from firmware.bench.loopback import LoopbackAppliance, make_keys
from firmware.link import sockets

pytestmark = pytest.mark.slow  # runs for more than a few seconds: `make test`, not `make test-fast`


def test_notify_sends_a_new_alert_without_waiting_for_the_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the fix notify() only set an Event the worker read after its poll timed out (50 ms, and here
    2 s), or after the next heartbeat (here 1 s) woke it: alerts waited up to that long to leave."""
    monkeypatch.setattr(sockets, "POLL_MS", 2000)
    keys = make_keys(tmp_path / "keys")
    with LoopbackAppliance(tmp_path, keys, heartbeat_interval=1.0, link_timeout=3.0) as appliance:
        console = console_for(appliance, keys, tmp_path / "v.sqlite3")
        with console:
            assert wait_for(lambda: console.status()["link_up"], timeout=10)
            delays = []
            for n in range(1, 6):
                time.sleep(0.37 * n % 1.0)  # land anywhere between two heartbeats
                alert = appliance.raise_alert(n)
                assert wait_for(lambda n=n: console.store.last_seq() == n, timeout=5)
                delays.append(time.time() - alert.t_wall)
        console.store.close()
    assert max(delays) < 0.3, delays
