"""Status lights, stop button, buzzer and sign relay on gpiozero's MockFactory: real gpiozero, a fake clock.

Every duration (patterns, alert flash and beeps, the long press) is read from the indicators' clock, so these
tests move a `FakeClock` and call `render()` themselves: no real sleeps, exact timings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gpio_fixtures import STEP, play, runs
from gpiozero.pins.mock import MockFactory

from firmware.config import GpioConfig, parse_config
from firmware.errors import ConfigError, GpioError
from firmware.hardware.clock import FakeClock
from firmware.hardware.gpio import GpioIndicators, make_pin_factory, open_indicators
from firmware.hardware.indicators import (
    MEANING,
    STEPS,
    ApplianceState,
    NullIndicators,
    Pattern,
    level_at,
    pattern_for,
    sign_lit,
)

READY = ApplianceState(starting=False, deployment_open=True, watchlist_loaded=True, link_up=True,
                       scanning=True)
LED, ALERT_LED, BUZZER, BUTTON, RELAY = 17, 23, 5, 27, 22


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    f = MockFactory()
    yield f
    f.close()


def make(factory: MockFactory, **overrides: object) -> tuple[GpioIndicators, list[str], FakeClock]:
    events: list[str] = []
    clock = FakeClock()
    config = GpioConfig(**{"sign_relay_pin": RELAY, "buzzer_pin": BUZZER, "hold_seconds": 0.5, **overrides})
    ind = GpioIndicators(config, pin_factory=factory, clock=clock, tick=None,
                         when_stop=lambda: events.append("stop"), when_resume=lambda: events.append("resume"))
    return ind, events, clock


def press(ind: GpioIndicators, clock: FakeClock, pin: object, seconds: float = 0.02) -> None:
    """Hold the button down for `seconds` of fake time (rendering meanwhile), then let go."""
    pin.drive_low()  # type: ignore[attr-defined]
    play(ind, clock, seconds)
    pin.drive_high()  # type: ignore[attr-defined]


def test_priority_of_patterns() -> None:
    assert pattern_for(ApplianceState()) is Pattern.STARTING
    assert pattern_for(READY) is Pattern.SCANNING
    assert pattern_for(ApplianceState(starting=False)) is Pattern.IDLE
    assert pattern_for(ApplianceState(starting=False, deployment_open=True)) is Pattern.IDLE
    assert pattern_for(ApplianceState(**{**READY.__dict__, "link_up": False})) is Pattern.LINK_DOWN
    assert pattern_for(ApplianceState(**{**READY.__dict__, "scanning": False})) is Pattern.FAULT
    stopped = ApplianceState(**{**READY.__dict__, "stopped": True, "scanning": False})
    assert pattern_for(stopped) is Pattern.STOPPED
    assert pattern_for(ApplianceState(**{**READY.__dict__, "fault": True, "starting": True})) is Pattern.FAULT


def test_the_answer_to_a_watchlist_stick_beats_all_but_faults_and_start_up() -> None:
    """Whoever inserted the stick watches the light for its answer; a failing camera still comes first."""
    refused = {**READY.__dict__, "import_refused": True}
    assert pattern_for(ApplianceState(**refused)) is Pattern.IMPORT_REFUSED
    for fact in ({"stopped": True, "scanning": False}, {"link_up": False}, {"deployment_open": False},
                 {"scanning": False}):
        assert pattern_for(ApplianceState(**{**refused, **fact})) is Pattern.IMPORT_REFUSED, fact
    assert pattern_for(ApplianceState(**{**refused, "fault": True})) is Pattern.FAULT
    assert pattern_for(ApplianceState(**{**refused, "starting": True})) is Pattern.STARTING
    accepted = {**READY.__dict__, "import_accepted": True}
    assert pattern_for(ApplianceState(**accepted)) is Pattern.IMPORT_ACCEPTED
    assert pattern_for(ApplianceState(**{**accepted, "stopped": True})) is Pattern.IMPORT_ACCEPTED
    assert pattern_for(ApplianceState(**{**accepted, "fault": True})) is Pattern.FAULT
    assert sign_lit(ApplianceState(**refused))  # the public sign follows scanning, not the light


def test_sign_is_lit_only_while_scanning() -> None:
    assert sign_lit(READY)
    assert not sign_lit(ApplianceState(**{**READY.__dict__, "scanning": False}))
    assert not sign_lit(ApplianceState(**{**READY.__dict__, "stopped": True}))


def test_patterns_are_distinct_and_documented() -> None:
    signatures = {tuple(level_at(STEPS[p], t / 100) for t in range(0, 400, 5)) for p in Pattern}
    assert len(signatures) == len(Pattern)
    assert set(MEANING) == set(Pattern)
    doc = (Path(__file__).resolve().parent.parent / "docs" / "operator.md").read_text()
    for pattern, meaning in MEANING.items():
        assert meaning in doc, f"docs/operator.md does not describe the {pattern.value} pattern"


def test_status_led_blinks_the_starting_pattern(factory: MockFactory) -> None:
    ind, _, clock = make(factory)
    (led,) = play(ind, clock, 3.5, factory.pin(LED))
    ind.close()
    held = runs(led)
    assert len(held) >= 5 and all(s == pytest.approx(0.5, abs=STEP) for _, s in held), held


def test_led_follows_state_and_link_down_double_blips(factory: MockFactory) -> None:
    ind, _, clock = make(factory)
    led = factory.pin(LED)
    ind.show(READY)
    play(ind, clock, 1.0)
    assert led.state is True and ind.pattern is Pattern.SCANNING
    ind.show(ApplianceState(**{**READY.__dict__, "link_up": False}))
    (levels,) = play(ind, clock, 4.5, led)
    ind.close()
    held = runs(levels)
    ons = [s for on, s in held if on]
    offs = sorted(s for on, s in held if not on)
    assert len(ons) >= 3 and all(s == pytest.approx(0.15, abs=STEP) for s in ons), held
    assert offs[0] == pytest.approx(0.2, abs=STEP) and offs[-1] == pytest.approx(1.5, abs=STEP), held


def test_sign_relay_follows_scanning_and_goes_dark_on_close(factory: MockFactory) -> None:
    ind, _, _ = make(factory)
    relay = factory.pin(RELAY)
    assert relay.state is False
    ind.show(READY)
    assert relay.state is True
    ind.show(ApplianceState(**{**READY.__dict__, "scanning": False}))
    assert relay.state is False
    ind.show(READY)
    ind.close()
    ind.close()
    assert relay.state is False
    assert factory.pin(LED).state is False


def test_relay_active_low_board(factory: MockFactory) -> None:
    ind, _, _ = make(factory, relay_active_high=False)
    relay = factory.pin(RELAY)
    assert relay.state is True  # high = relay released on an active-low board
    ind.show(READY)
    assert relay.state is False
    ind.close()


def test_alert_flashes_status_led_and_beeps(factory: MockFactory) -> None:
    ind, _, clock = make(factory)
    ind.show(READY)
    play(ind, clock, 0.5)
    ind.alert()
    led, buzzer = play(ind, clock, 1.5, factory.pin(LED), factory.pin(BUZZER))
    assert led[0] is True and led[-1] is True  # steady on, and back to steady on after the flash
    offs = [s for on, s in runs(led) if not on]
    assert offs == pytest.approx([0.1] * 4, abs=STEP)  # the steady light drops out 4 times in the 0.8 s flash
    beeps = runs([False, *buzzer])  # the first beep starts with the recording
    assert [on for on, _ in beeps] == [True, False, True] and buzzer[-1] is False  # two beeps ...
    assert [s for _, s in beeps] == pytest.approx([0.1] * 3, abs=STEP)  # ... of 0.1 s, 0.1 s apart
    ind.close()


def test_separate_alert_led_leaves_status_pattern_alone(factory: MockFactory) -> None:
    ind, _, clock = make(factory, alert_led_pin=ALERT_LED)
    ind.show(READY)
    play(ind, clock, 0.5)
    ind.alert()
    led, alert_led = play(ind, clock, 1.5, factory.pin(LED), factory.pin(ALERT_LED))
    ind.close()
    assert all(led)  # the status light stays steady on
    assert sum(1 for on, _ in runs(alert_led) if on) >= 3 and alert_led[-1] is False


def test_stop_button_press_stops_and_second_press_resumes(factory: MockFactory) -> None:
    ind, events, clock = make(factory)
    button = factory.pin(BUTTON)
    press(ind, clock, button)
    assert events == ["stop"] and ind.is_stopped
    press(ind, clock, button)
    assert events == ["stop", "resume"] and not ind.is_stopped
    ind.close()


def test_long_press_while_running_only_stops(factory: MockFactory) -> None:
    """A press held past hold_seconds must not stop and then immediately resume."""
    ind, events, clock = make(factory)
    press(ind, clock, factory.pin(BUTTON), seconds=0.6)
    assert events == ["stop"] and ind.is_stopped
    ind.close()


def test_resume_needs_hold_ignores_short_press(factory: MockFactory) -> None:
    ind, events, clock = make(factory, resume_needs_hold=True)
    button = factory.pin(BUTTON)
    press(ind, clock, button)
    press(ind, clock, button, seconds=0.45)  # shorter than hold_seconds (0.5): not a long press
    assert events == ["stop"] and ind.is_stopped
    press(ind, clock, button, seconds=0.6)
    assert events == ["stop", "resume"] and not ind.is_stopped
    ind.close()


def test_stop_callback_is_called_as_the_button_goes_down(factory: MockFactory) -> None:
    """The stop reaches the appliance at once, from gpiozero's event, not at the next render."""
    stopped = threading.Event()
    ind = GpioIndicators(GpioConfig(), pin_factory=factory, when_stop=stopped.set, clock=FakeClock(), tick=None)
    factory.pin(BUTTON).drive_low()
    assert stopped.is_set()
    factory.pin(BUTTON).drive_high()
    ind.close()


def test_failing_callback_is_logged_and_button_keeps_working(factory: MockFactory,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> None:
        raise RuntimeError("capture did not answer")

    clock = FakeClock()
    ind = GpioIndicators(GpioConfig(), pin_factory=factory, when_stop=broken, clock=clock, tick=None)
    with caplog.at_level(logging.ERROR):
        press(ind, clock, factory.pin(BUTTON))
    assert "when_stop callback failed" in caplog.text and ind.is_stopped
    press(ind, clock, factory.pin(BUTTON))
    assert not ind.is_stopped
    ind.close()


def test_set_stopped_keeps_button_in_step_with_the_viewer(factory: MockFactory) -> None:
    ind, events, clock = make(factory)
    ind.set_stopped(True)  # stopped from the viewer
    press(ind, clock, factory.pin(BUTTON))
    assert events == ["resume"]
    ind.close()


def on_a_pi() -> bool:
    model = Path("/proc/device-tree/model")
    return model.exists() and "Raspberry Pi" in model.read_text(errors="replace")


@pytest.mark.skipif(on_a_pi(), reason="this machine has GPIO pins: the no-hardware path cannot be shown here")
def test_no_gpio_hardware_gives_null_indicators_and_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        ind = open_indicators(GpioConfig(pin_factory="native", sign_relay_pin=RELAY))
    assert isinstance(ind, NullIndicators)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no GPIO hardware" in warnings[0].getMessage()
    assert any("sign relay" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    ind.show(READY)
    ind.alert()
    assert ind.pattern is Pattern.SCANNING and ind.sign_on and ind.alerts == 1
    ind.close()
    ind.close()
    assert not ind.sign_on


def test_none_and_mock_factories() -> None:
    assert isinstance(open_indicators(GpioConfig(pin_factory="none")), NullIndicators)
    ind = open_indicators(GpioConfig(pin_factory="mock"))
    assert isinstance(ind, GpioIndicators)
    ind.close()
    with pytest.raises(ConfigError, match="unknown pin library 'wiringpi'"):
        make_pin_factory("wiringpi")
    if not on_a_pi():
        with pytest.raises(GpioError, match="native"):
            make_pin_factory("native")


def test_config_refuses_shared_and_out_of_range_pins() -> None:
    with pytest.raises(ConfigError, match="gpio.buzzer_pin: pin 17 is already used by gpio.status_led_pin"):
        parse_config({"gpio": {"buzzer_pin": 17}})
    with pytest.raises(ConfigError, match="gpio.sign_relay_pin: 40 is above the maximum 27"):
        parse_config({"gpio": {"sign_relay_pin": 40}})
    with pytest.raises(ConfigError, match="gpio.pin_factory"):
        parse_config({"gpio": {"pin_factory": "wiringpi"}})
    assert parse_config({"gpio": {"sign_relay_pin": 22}}).gpio.sign_relay_pin == 22
