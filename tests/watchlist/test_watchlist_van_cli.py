"""`lfr watchlist import|status|wipe|expire` and `lfr bench enrol` end to end through `main`, on a real
sqlite file, the repository's models and their fitted score calibration."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
from bundle_helpers import TEST_CALIBRATION, members_of, write_members
from gpio_fixtures import STEP, play, runs
from gpiozero.pins.mock import MockFactory

from firmware.cli.main import main
from firmware.config import load_config
from firmware.hardware.clock import FakeClock
from firmware.hardware.gpio import GpioIndicators
from firmware.hardware.indicators import Pattern
from firmware.pipeline.hub import Hub
from firmware.pipeline.services import HubServices
from firmware.store.db import open_config_db
from firmware.watchlist.manifest import format_instant


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def make_van(tmp_path: Path, keys: object, images_dir: Path, entries_csv: Path,
             extra_config: str = "") -> dict[str, str]:
    """A config naming a tmp state dir and the trusted keys (plus `extra_config` TOML); a bundle built for
    deployment OP-CLI valid from an hour ago to eight hours ahead."""
    config = tmp_path / "appliance.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
                      f'[watchlist]\ntrusted_keys_dir = "{keys.trusted_dir}"\n'  # type: ignore[attr-defined]
                      + extra_config)
    now = time.time()
    stick = tmp_path / "stick"
    assert main(["watchlist", "build", "--images", str(images_dir), "--entries", str(entries_csv),
                 "--deployment", "OP-CLI", "--valid-from", format_instant(now - 3600),
                 "--valid-until", format_instant(now + 8 * 3600), "--key", str(keys.private_path),  # type: ignore[attr-defined]
                 "--out", str(stick / "day.lfrw"), "--config", str(config)]) == 0
    return {"config": str(config), "stick": str(stick)}


@pytest.fixture()
def van(tmp_path: Path, keys: object, images_dir: Path, entries_csv: Path) -> dict[str, str]:
    """The van of `make_van` with the default configuration."""
    return make_van(tmp_path, keys, images_dir, entries_csv)


def test_import_status_expire_wipe(van: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ("--config", van["config"])
    code, _, err = run(capsys, "watchlist", "import", van["stick"], *cfg)
    assert code == 2 and "no open deployment" in err
    assert run(capsys, "deployment", "start", "--authority", "op-cli ", "--officer", "PC A", "--location",
               "Market Sq", *cfg)[0] == 0

    code, out, _ = run(capsys, "watchlist", "import", van["stick"], *cfg, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["imported"] is True and len(doc["entries"]) == 4
    accepted = sum(e["accepted"] for e in doc["entries"])
    assert accepted >= 3 and doc["watchlist"]["accepted"] == accepted
    assert all(e["reason"] for e in doc["entries"] if not e["accepted"])

    code, out, _ = run(capsys, "watchlist", "status", *cfg)
    assert code == 0 and "loaded" in out and f"entries: {accepted} accepted, {4 - accepted} rejected" in out
    assert doc["watchlist"]["bundle_sha256"] in out and doc["watchlist"]["signer_fingerprint"] in out
    assert "duplicate subjects: 0" in out
    for e in doc["entries"]:  # each rejected entry with its reason (issue 14: only the counts were shown)
        if not e["accepted"]:
            assert f"  {e['id']:<20} {e['reason']}" in out

    code, out, _ = run(capsys, "watchlist", "expire", *cfg, "--json")
    assert code == 0 and json.loads(out)["expired"] is False

    code, out, _ = run(capsys, "watchlist", "wipe", *cfg, "--json")
    assert code == 0 and json.loads(out)["entries_wiped"] == accepted
    code, out, _ = run(capsys, "watchlist", "status", *cfg, "--json")
    status = json.loads(out)
    assert status["loaded"] is False and status["active_version"] is None
    assert status["watchlist"]["wipe_reason"] == "wiped by operator"

    code, out, _ = run(capsys, "audit", "verify", *cfg)
    assert code == 0


@pytest.mark.slow
def test_import_text_report_and_refusals(van: dict[str, str], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ("--config", van["config"])
    assert run(capsys, "deployment", "start", "--authority", "OP-CLI", "--officer", "PC A", "--location",
               "Market Sq", *cfg)[0] == 0
    code, out, _ = run(capsys, "watchlist", "import", str(Path(van["stick"]) / "day.lfrw"), *cfg)
    assert code == 0 and "W-000" in out and "accepted" in out and "signer fingerprint:" in out
    shutil.copy(Path(van["stick"]) / "day.lfrw", Path(van["stick"]) / "second.lfrw")
    code, out, err = run(capsys, "watchlist", "import", van["stick"], *cfg, "--json")
    assert code == 2 and json.loads(out) == {"imported": False, "code": "several_bundles",
                                             "error": err.removeprefix("lfr: error: ").strip()}
    code, out, _ = run(capsys, "watchlist", "status", *cfg, "--json")
    assert json.loads(out)["loaded"] is True


def test_expire_without_a_deployment_is_quiet(van: dict[str, str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "watchlist", "expire", "--config", van["config"])
    assert code == 0 and "no active watchlist" in out


def test_bench_enrol(images_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    people = tmp_path / "people"
    for img in images_dir.iterdir():
        (people / img.stem).mkdir(parents=True)
        shutil.copy(img, people / img.stem / img.name)
    code, out, _ = run(capsys, "bench", "enrol", "--images", str(people), "--count", "3", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["images"] == 3 and doc["images_per_second"] > 0
    assert doc["accepted"] + sum(doc["rejections"].values()) == 3
    code, _, err = run(capsys, "bench", "enrol", "--images", str(people), "--count", "50")
    assert code == 2 and "fewer than the 50 asked for" in err


@pytest.mark.slow
def test_the_result_of_a_stick_import_reaches_the_led_and_the_viewer(
        van: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """End to end: `lfr watchlist import` (the USB unit's command) refuses an unsigned bundle in its own
    process; the running appliance's next health tick shows the refused pattern on the status LED (mock pins)
    and puts the code into Health; then a good stick is accepted and acknowledged with its counts."""
    cfg = ("--config", van["config"])
    assert run(capsys, "deployment", "start", "--authority", "OP-CLI", "--officer", "PC A", "--location",
               "Market Sq", *cfg)[0] == 0
    app = load_config(van["config"])
    app = replace(app, appliance=replace(app.appliance, link=False))  # Health is read from the services
    db = open_config_db(app)
    clock = FakeClock(time.time())
    factory = MockFactory()
    svc = HubServices(app, Hub(db, TEST_CALIBRATION, app.pipeline, clock=clock), clock=clock,
                      indicators=GpioIndicators(app.gpio, pin_factory=factory, clock=clock, tick=None))
    try:
        svc.tick()
        assert svc.lights.indicators.pattern is Pattern.IDLE  # type: ignore[attr-defined]

        members = members_of(Path(van["stick"]) / "day.lfrw")
        unsigned = tmp_path / "bad-stick"
        unsigned.mkdir()
        write_members(unsigned / "day.lfrw", {k: v for k, v in members.items() if k != "manifest.sig"})
        code, out, _ = run(capsys, "watchlist", "import", str(unsigned), *cfg, "--json")
        assert code == 2 and json.loads(out)["code"] == "signature_missing"
        clock.advance(app.link.health_interval)
        svc.tick()
        assert svc.lights.indicators.pattern is Pattern.IMPORT_REFUSED  # type: ignore[attr-defined]
        health = svc.health()  # what the next health message to the viewer carries
        assert (health.import_outcome, health.import_code, health.import_reason) == (
            "refused", "signature_missing", "signature missing")
        (levels,) = play(svc.lights.indicators, clock, 4.5,  # type: ignore[arg-type]
                         factory.pin(app.gpio.status_led_pin))
        ons = [s for on, s in runs(levels) if on]  # two periods: a long flash (0.8 s) and blips (0.15 s)
        assert max(ons) == pytest.approx(0.8, abs=STEP) and min(ons) == pytest.approx(0.15, abs=STEP), ons

        code, out, _ = run(capsys, "watchlist", "import", van["stick"], *cfg, "--json")
        assert code == 0
        accepted = json.loads(out)["watchlist"]["accepted"]
        clock.advance(app.link.health_interval)
        svc.tick()
        assert svc.lights.indicators.pattern is Pattern.IMPORT_ACCEPTED  # type: ignore[attr-defined]
        h = svc.health()
        assert (h.import_outcome, h.import_accepted, h.import_rejected, h.import_deployment_ref) == (
            "accepted", accepted, 4 - accepted, "OP-CLI")
        assert h.watchlist_size == accepted
    finally:
        svc.close()
        db.close()
        factory.close()


def test_status_lists_each_rejected_entry_with_its_reason() -> None:
    """Issue 14: `lfr watchlist status` showed how many entries were rejected but not which or why, though the
    operator guide says it lists them."""
    from firmware.cli.watchlist_van import _record_json, _record_text
    from firmware.store.watchlists import WatchlistRecord

    report = {"entries": 3, "accepted": 1, "duplicates": [],
              "rejected": [{"id": "W-002", "reason": "no_face", "detail": "no face found by the detector"},
                           {"id": "W-007", "reason": "too_small", "detail": ""}]}
    rec = WatchlistRecord(1, 1, "ab" * 32, "cd" * 32, "OP-1", 0.0, 3600.0, 10.0, 1, 2, report, None, None)
    text = "\n".join(_record_text(rec))
    assert "rejected entries (id, reason):\n  W-002                no_face (no face found by the detector)\n" \
           "  W-007                too_small\n" in text
    assert _record_json(rec)["rejected_entries"] == report["rejected"]
