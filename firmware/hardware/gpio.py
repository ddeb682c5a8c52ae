"""Status LED(s), buzzer, stop button and sign relay on GPIO pins, through gpiozero.

gpiozero reaches pins only through a pin factory, named in `[gpio] pin_factory`; "mock" gives its virtual
board (tests and the demo drive it with `pin.drive_low()`), "none" or a van without GPIO hardware gives
`NullIndicators`, logged once. gpiozero is imported here, lazily, and nowhere else.
"""

from __future__ import annotations

import importlib
import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

from firmware.config import GpioConfig
from firmware.errors import ConfigError, GpioError
from firmware.hardware.clock import Clock, SystemClock
from firmware.hardware.indicators import (
    ALERT_FLASH,
    STEPS,
    ApplianceState,
    Indicators,
    NullIndicators,
    Pattern,
    level_at,
    pattern_for,
    sign_lit,
)

log = logging.getLogger(__name__)

Callback = Callable[[], None]

ALERT_BEEP: tuple[tuple[bool, float], ...] = ((True, 0.1), (False, 0.1)) * 2
"""The buzzer on an alert: two 0.1 s beeps."""

# Pin libraries by config name, tried in this order by "auto" (gpiozero's own preference: lgpio drives the
# Pi 5's RP1; the native factory only knows the BCM2835/2711 registers and must not be used on a Pi 5).
FACTORIES: dict[str, tuple[str, str]] = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
    "mock": ("gpiozero.pins.mock", "MockFactory"),
}
AUTO_ORDER = ("lgpio", "rpigpio", "pigpio", "native")


def make_pin_factory(name: str) -> Any:
    """The gpiozero pin factory called `name` ("auto" tries the real libraries in order)."""
    from gpiozero import GPIOZeroError

    names = AUTO_ORDER if name == "auto" else (name,)
    if any(n not in FACTORIES for n in names):
        raise ConfigError(f"gpio.pin_factory: unknown pin library {name!r}; known: {', '.join(FACTORIES)}")
    failures = []
    for candidate in names:
        module_name, class_name = FACTORIES[candidate]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return getattr(importlib.import_module(module_name), class_name)()
        except (ImportError, OSError, RuntimeError, GPIOZeroError) as exc:
            failures.append(f"{candidate}: {exc}")
    raise GpioError("no GPIO pin library works here (" + "; ".join(failures) + ")")


class GpioIndicators:
    """`Indicators` on gpiozero devices; `render()` sets the LEDs, buzzer and the button's long press from the
    clock, called by a worker thread every `tick` seconds.

    Every duration (patterns, alert flash and beeps, the long press) is read from `clock`, so tests drive a
    `FakeClock` and call `render()` themselves (`tick=None`: no worker thread) instead of sleeping. `when_stop`
    and `when_resume` run in gpiozero's event thread (or the render thread, for a long press): keep them short
    (set an Event) and audit the stop or resume there.
    """

    def __init__(self, config: GpioConfig, *, pin_factory: Any, when_stop: Callback | None = None,
                 when_resume: Callback | None = None, clock: Clock | None = None,
                 tick: float | None = 0.02) -> None:
        from gpiozero import LED, Button, Buzzer, OutputDevice

        self.config = config
        self.when_stop = when_stop
        self.when_resume = when_resume
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._state = ApplianceState()
        self._pattern = pattern_for(self._state)
        self._pattern_since = self.clock.monotonic()
        self._flash_since: float | None = None
        self._beep_since: float | None = None
        self._press_since: float | None = None  # monotonic seconds the button went down (None: released)
        self._hold_done = False
        self._last: dict[int, bool] = {}
        self._stopped = False
        self._press_toggled = False
        self._devices: list[Any] = []
        self.closed = False
        try:
            self.status_led = self._add(LED(config.status_led_pin, pin_factory=pin_factory))
            self.alert_led = (self._add(LED(config.alert_led_pin, pin_factory=pin_factory))
                              if config.alert_led_pin is not None else None)
            self.buzzer = (self._add(Buzzer(config.buzzer_pin, pin_factory=pin_factory))
                           if config.buzzer_pin is not None else None)
            self.sign_relay = None
            if config.sign_relay_pin is not None:
                self.sign_relay = self._add(OutputDevice(config.sign_relay_pin, initial_value=False,
                                                         active_high=config.relay_active_high,
                                                         pin_factory=pin_factory))
            self.button = None
            if config.stop_button_pin is not None:
                self.button = self._add(Button(config.stop_button_pin, pull_up=True,
                                               bounce_time=config.bounce_seconds or None,
                                               pin_factory=pin_factory))
                self.button.when_pressed = self._pressed
                self.button.when_released = self._released
        except BaseException:
            self._close_devices()
            raise
        self._halt = threading.Event()
        self._worker: threading.Thread | None = None
        if tick is not None:
            self._worker = threading.Thread(target=self._run, args=(tick,), name="lfr-status-led", daemon=True)
            self._worker.start()

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    # --- Indicators ---

    def show(self, state: ApplianceState) -> None:
        pattern = pattern_for(state)
        with self._lock:
            if self.closed:
                return
            self._state = state
            if pattern is not self._pattern:
                log.info("status light: %s", pattern.value)
                self._pattern, self._pattern_since = pattern, self.clock.monotonic()
            if self.sign_relay is not None:
                self.sign_relay.value = sign_lit(state)

    def alert(self) -> None:
        with self._lock:
            if self.closed:
                return
            self._flash_since = self._beep_since = self.clock.monotonic()

    @property
    def is_stopped(self) -> bool:
        return self._stopped

    def set_stopped(self, stopped: bool) -> None:
        self._stopped = stopped

    @property
    def pattern(self) -> Pattern:
        return self._pattern

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._halt.set()
        if self._worker is not None:
            self._worker.join(timeout=2.0)
        with self._lock:
            self._close_devices()

    def __enter__(self) -> GpioIndicators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ---

    def _close_devices(self) -> None:
        for device in reversed(self._devices):
            if hasattr(device, "off"):
                device.off()  # the sign goes dark and the LEDs off before the pin is released
            device.close()
        self._devices.clear()

    def _run(self, tick: float) -> None:
        while not self._halt.wait(tick):
            self.render()

    def render(self) -> None:
        """Set the LEDs and buzzer for the clock's time now, and fire a long press held long enough."""
        now = self.clock.monotonic()
        with self._lock:
            if self.closed:
                return
            pattern, since = self._pattern, self._pattern_since
            flash = _once(ALERT_FLASH, self._flash_since, now)
            beep = _once(ALERT_BEEP, self._beep_since, now)
            status = level_at(STEPS[pattern], now - since)
            if self.alert_led is not None:
                self._set(self.alert_led, bool(flash))
                self._set(self.status_led, status)
            else:
                self._set(self.status_led, status if flash is None else flash)
            if self.buzzer is not None:
                self._set(self.buzzer, bool(beep))
            held = (self._press_since is not None and not self._hold_done
                    and now - self._press_since >= self.config.hold_seconds)
            if held:
                self._hold_done = True
        if held:
            self._held()

    def _set(self, device: Any, on: bool) -> None:
        if self._last.get(id(device)) != on:
            device.value = on
            self._last[id(device)] = on

    def _pressed(self) -> None:
        with self._lock:
            self._press_since, self._hold_done = self.clock.monotonic(), False
        self._press_toggled = False
        if not self._stopped:
            self._press_toggled = True
            self._stopped = True
            log.warning("stop button pressed: stopping capture")
            self._call(self.when_stop, "when_stop")
        elif not self.config.resume_needs_hold:
            self._press_toggled = True
            self._resume("stop button pressed again")
        else:
            log.info("stop button pressed while stopped: hold it for %.1f s to resume",
                     self.config.hold_seconds)

    def _released(self) -> None:
        with self._lock:
            self._press_since = None

    def _held(self) -> None:
        if self._stopped and not self._press_toggled:
            self._resume("stop button held")

    def _resume(self, why: str) -> None:
        self._stopped = False
        log.warning("%s: resuming capture", why)
        self._call(self.when_resume, "when_resume")

    @staticmethod
    def _call(callback: Callback | None, name: str) -> None:
        if callback is None:
            return
        try:
            callback()
        except Exception:  # runs in gpiozero's thread: nobody above us would see it
            log.exception("stop button %s callback failed", name)


def _once(steps: tuple[tuple[bool, float], ...], since: float | None, now: float) -> bool | None:
    """The level `now` of a pattern played once from `since`; None when not started or over."""
    if since is None or now - since >= sum(seconds for _, seconds in steps):
        return None
    return level_at(steps, now - since)


def open_indicators(config: GpioConfig, *, when_stop: Callback | None = None,
                    when_resume: Callback | None = None, clock: Clock | None = None) -> Indicators:
    """The appliance's indicators: GPIO when it works, else `NullIndicators` with the reason logged once."""
    if config.pin_factory == "none":
        log.info("GPIO disabled (gpio.pin_factory = none): no status lights, stop button or sign relay")
        return NullIndicators("disabled in config")
    from gpiozero import GPIOZeroError

    try:
        factory = make_pin_factory(config.pin_factory)
        return GpioIndicators(config, pin_factory=factory, when_stop=when_stop, when_resume=when_resume,
                              clock=clock)
    except GpioError as exc:
        reason = str(exc)
    except (GPIOZeroError, OSError, RuntimeError) as exc:  # a busy or forbidden pin: run without GPIO
        reason = f"{type(exc).__name__}: {exc}"
    log.warning("no GPIO hardware: running without status lights, stop button or sign relay (%s)", reason)
    if config.sign_relay_pin is not None:
        log.error("the 'live facial recognition in operation' sign relay (pin %d) cannot be switched: "
                  "light the sign by hand while scanning", config.sign_relay_pin)
    return NullIndicators(reason)
