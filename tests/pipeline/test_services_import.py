"""The result of a watchlist import (written to the audit log by the import's own process) reaches the status
LED and the viewer's Health through the hub's services: real sqlite file, gpiozero's MockFactory pins."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlite_utils
from gpio_fixtures import STEP, play, runs
from gpiozero.pins.mock import MockFactory

from firmware.config import AppConfig, ApplianceConfig, GpioConfig
from firmware.hardware.clock import FakeClock
from firmware.hardware.gpio import GpioIndicators
from firmware.hardware.indicators import Pattern
from firmware.match.score import ScoreCalibration
from firmware.pipeline.hub import Hub
from firmware.pipeline.messages import StatsDelta
from firmware.pipeline.services import HubServices
from firmware.store import audit

from .pipeline_helpers import LinkStub

LED = 17


@pytest.fixture()
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


@pytest.fixture()
def app(cfg: AppConfig, tmp_path: Path) -> AppConfig:
    gpio = GpioConfig(pin_factory="mock", stop_button_pin=None, import_refused_s=60.0, import_accepted_s=5.0)
    return replace(cfg, appliance=ApplianceConfig(link=False, stop_flag=str(tmp_path / "capture-stopped")),
                   gpio=gpio)


def start(app: AppConfig, db: sqlite_utils.Database, calibration: ScoreCalibration, clock: FakeClock,
          factory: MockFactory) -> tuple[HubServices, LinkStub]:
    link = LinkStub()
    indicators = GpioIndicators(app.gpio, pin_factory=factory, clock=clock, tick=None)
    svc = HubServices(app, Hub(db, calibration, app.pipeline, clock=clock), clock=clock, link=link,
                      indicators=indicators)
    return svc, link


def tick_after(svc: HubServices, clock: FakeClock, seconds: float) -> None:
    """Let `seconds` pass with every camera reporting (so no silence fault), then one hub loop turn."""
    clock.advance(seconds)
    for name in svc.reporter.cameras:
        svc.observe(StatsDelta(camera=name, t_wall=clock.time(), counters={"frames": 10}, timings={},
                               scanning=False))
    svc.tick()


def refuse(db: sqlite_utils.Database, t_wall: float, code: str = "untrusted_signer") -> None:
    """The row `install_bundle` writes for a refusal (its message may name a file: it must not be shown)."""
    audit.append(db, time=t_wall, actor="cli:lfr", action="watchlist_import_refused",
                 details={"deployment_id": 1, "bundle_sha256": None, "source": "/run/lfr-import-sda1",
                          "code": code, "error": "images/0007.jpg of Jane Example: signed by key 3f2a"})


def test_a_refusal_shows_on_the_led_for_its_window_and_stays_in_health(
        app: AppConfig, db: sqlite_utils.Database, calibration: ScoreCalibration, factory: MockFactory) -> None:
    clock = FakeClock()
    svc, link = start(app, db, calibration, clock, factory)
    try:
        tick_after(svc, clock, 0.0)
        assert svc.lights.indicators.pattern is Pattern.IDLE  # type: ignore[attr-defined]
        assert link.health is not None and link.health.import_outcome is None

        refuse(db, clock.time())
        tick_after(svc, clock, app.link.health_interval)
        assert svc.lights.indicators.pattern is Pattern.IMPORT_REFUSED  # type: ignore[attr-defined]
        health = link.health
        assert (health.import_outcome, health.import_code, health.import_reason, health.import_time) == (
            "refused", "untrusted_signer", "signature by an untrusted key", clock.time() - 2.0)
        assert "Jane" not in repr(health) and "0007" not in repr(health)  # the message stays in the audit log

        led = factory.pin(LED)
        (levels,) = play(svc.lights.indicators, clock, 3 * 2.0, led)  # type: ignore[arg-type]
        ons = sorted(s for on, s in runs(levels) if on)  # three periods of the pattern:
        flashes, blips = [s for s in ons if s > 0.5], [s for s in ons if s < 0.5]
        assert len(flashes) >= 2 and flashes == pytest.approx([0.8] * len(flashes), abs=STEP), ons  # a long
        assert len(blips) == 2 * len(flashes) + 2 and max(blips) == pytest.approx(0.15, abs=STEP), ons  # flash,
        assert min(blips) == pytest.approx(0.15, abs=STEP), ons  # then two blips

        tick_after(svc, clock, 53.0)  # 61 s after the refusal: the window (60 s) is over
        assert svc.lights.indicators.pattern is Pattern.IDLE  # type: ignore[attr-defined]
        assert link.health.import_code == "untrusted_signer"  # the viewer keeps showing the last result
        (levels,) = play(svc.lights.indicators, clock, 2.5 * 2.0, led)  # type: ignore[arg-type]
        assert max(s for on, s in runs(levels) if on) < 0.3  # the LED blips idle, no long flash
    finally:
        svc.close()


def test_an_accepted_import_acknowledges_briefly_and_health_gives_counts(
        app: AppConfig, db: sqlite_utils.Database, calibration: ScoreCalibration, factory: MockFactory) -> None:
    clock = FakeClock()
    svc, link = start(app, db, calibration, clock, factory)
    try:
        refuse(db, clock.time() - 30)
        audit.append(db, time=clock.time(), actor="cli:lfr", action="watchlist_import",
                     details={"deployment_id": 1, "deployment_ref": "OP-1", "entries": 200, "accepted": 182,
                              "rejected": [{"id": f"W-{i}", "reason": "no face", "detail": ""}
                                           for i in range(18)], "duplicates": []})
        tick_after(svc, clock, 0.0)
        assert svc.lights.indicators.pattern is Pattern.IMPORT_ACCEPTED  # type: ignore[attr-defined]
        h = link.health
        assert h is not None and (h.import_outcome, h.import_accepted, h.import_rejected,
                                  h.import_deployment_ref, h.import_code) == ("accepted", 182, 18, "OP-1", None)
        clock.set(clock.time() - 3600)  # an NTP step back neither stretches nor cuts the window
        tick_after(svc, clock, 4.0)
        assert svc.lights.indicators.pattern is Pattern.IMPORT_ACCEPTED  # type: ignore[attr-defined]
        tick_after(svc, clock, 2.0)
        assert svc.lights.indicators.pattern is Pattern.IDLE  # type: ignore[attr-defined]
    finally:
        svc.close()


def test_a_restarted_appliance_shows_a_recent_refusal_for_the_rest_of_its_window(
        app: AppConfig, db: sqlite_utils.Database, calibration: ScoreCalibration, factory: MockFactory) -> None:
    clock = FakeClock()
    refuse(db, clock.time() - 50, code="signature_missing")
    svc, link = start(app, db, calibration, clock, factory)
    try:
        tick_after(svc, clock, 0.0)
        assert svc.lights.indicators.pattern is Pattern.IMPORT_REFUSED  # type: ignore[attr-defined]
        assert link.health is not None and link.health.import_reason == "signature missing"
        tick_after(svc, clock, 11.0)
        assert svc.lights.indicators.pattern is Pattern.IDLE  # type: ignore[attr-defined]
    finally:
        svc.close()
    refuse(db, clock.time() - 600, code="no_deployment")  # long past: in Health, not on the LED
    svc, link = start(app, db, calibration, clock, factory)
    try:
        tick_after(svc, clock, 0.0)
        assert svc.lights.indicators.pattern is Pattern.IDLE  # type: ignore[attr-defined]
        assert link.health is not None and link.health.import_reason == "no deployment started"
    finally:
        svc.close()
