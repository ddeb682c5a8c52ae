"""`lfr health` and `lfr lights test`: the host's health now, and a walk through every light pattern for
whoever wires or checks a van."""

from __future__ import annotations

import argparse
import threading
import time

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.errors import GpioError
from firmware.hardware.gpio import open_indicators
from firmware.hardware.health import read_health
from firmware.hardware.indicators import MEANING, ApplianceState, NullIndicators, Pattern

# One state that shows each pattern, in the order the test walks through them.
DEMO_STATES: dict[Pattern, ApplianceState] = {
    Pattern.STARTING: ApplianceState(),
    Pattern.IDLE: ApplianceState(starting=False),
    Pattern.SCANNING: ApplianceState(starting=False, deployment_open=True, watchlist_loaded=True,
                                     link_up=True, scanning=True),
    Pattern.LINK_DOWN: ApplianceState(starting=False, deployment_open=True, watchlist_loaded=True,
                                      scanning=True),
    Pattern.STOPPED: ApplianceState(starting=False, deployment_open=True, watchlist_loaded=True, link_up=True,
                                    stopped=True),
    Pattern.IMPORT_ACCEPTED: ApplianceState(starting=False, deployment_open=True, watchlist_loaded=True,
                                            link_up=True, scanning=True, import_accepted=True),
    Pattern.IMPORT_FLAGGED: ApplianceState(starting=False, deployment_open=True, watchlist_loaded=True,
                                           link_up=True, scanning=True, import_flagged=True),
    Pattern.IMPORT_REFUSED: ApplianceState(starting=False, import_refused=True),
    Pattern.FAULT: ApplianceState(starting=False, fault=True),
}


def register(sub: argparse._SubParsersAction) -> None:
    health = sub.add_parser("health", help="CPU temperature, throttling, disk and memory of this machine")
    add_config_argument(health)
    add_json_argument(health)
    health.set_defaults(func=_health)
    lights = sub.add_parser("lights", help="check the status lights, buzzer, sign relay and stop button")
    lsub = lights.add_subparsers(dest="lights_command", metavar="ACTION", required=True)
    test = lsub.add_parser("test", help="show every light pattern in turn (stop the appliance first)")
    add_config_argument(test)
    test.add_argument("--seconds", type=float, default=4.0, help="how long each pattern is shown (default 4)")
    test.add_argument("--button-wait", type=float, default=10.0, metavar="SECONDS",
                      help="how long to wait for a stop-button press at the end; 0 skips it (default 10)")
    test.set_defaults(func=_lights_test)


def _health(args: argparse.Namespace) -> int:
    config = app_config(args, state=False)
    health = read_health(config.paths.state_dir)
    emit(args, health.as_dict(), health.summary())
    return 0


def _lights_test(args: argparse.Namespace) -> int:
    config = app_config(args, state=False)
    pressed = threading.Event()
    lights = open_indicators(config.gpio, when_stop=pressed.set, when_resume=pressed.set)
    if isinstance(lights, NullIndicators):
        raise GpioError(f"no lights to test: {lights.reason}")
    try:
        for pattern, state in DEMO_STATES.items():
            print(f"{pattern.value:15} {MEANING[pattern]}"
                  f"{'  (sign relay on)' if pattern is Pattern.SCANNING else ''}", flush=True)
            lights.show(state)
            time.sleep(args.seconds)
        print(f"{'alert':15} 4 flashes (and 2 beeps with a buzzer)", flush=True)
        lights.alert()
        time.sleep(min(args.seconds, 1.5))
        if config.gpio.stop_button_pin is not None and args.button_wait > 0:
            print(f"press the stop button (pin {config.gpio.stop_button_pin}) within {args.button_wait:g} s",
                  flush=True)
            if not pressed.wait(args.button_wait):
                print("stop button: no press seen; check its wiring (pin to button to ground)")
                return 1
            print("stop button: pressed")
    finally:
        lights.close()
    return 0
