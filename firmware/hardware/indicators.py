"""What the van shows without a screen: the appliance's state, the LED pattern it maps to, and the interface.

The appliance reports facts (`ApplianceState`); this module alone decides which pattern the status LED shows
and that the "live facial recognition in operation" sign is lit only while frames are being scanned, so that
rule lives in one place. `GpioIndicators` (firmware/hardware/gpio.py) drives real or mock pins;
`NullIndicators` stands in when the van has no GPIO and records what it would have shown.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplianceState:
    """Facts the appliance reports; the indicators derive the LED pattern and the sign relay from them."""

    starting: bool = True          # models loading, cameras opening
    fault: bool = False            # a camera, the accelerator or the database failed and is being retried
    stopped: bool = False          # capture stopped by the stop button (or the viewer)
    deployment_open: bool = False  # an authorised deployment is running
    watchlist_loaded: bool = False  # a valid watchlist is active
    link_up: bool = False          # the operator laptop answers heartbeats
    scanning: bool = False         # frames are being matched right now
    import_refused: bool = False   # a watchlist import was refused within gpio.import_refused_s
    import_accepted: bool = False  # a watchlist import was accepted within gpio.import_accepted_s
    import_flagged: bool = False   # accepted, but too large for the false-alert budget (within import_refused_s)


class Pattern(enum.Enum):
    """Status LED patterns, in priority order; `STEPS` gives each one's timing."""

    FAULT = "fault"
    STARTING = "starting"
    IMPORT_REFUSED = "import_refused"
    IMPORT_FLAGGED = "import_flagged"
    IMPORT_ACCEPTED = "import_accepted"
    STOPPED = "stopped"
    IDLE = "idle"
    LINK_DOWN = "link_down"
    SCANNING = "scanning"


# One period of each pattern as (LED on?, seconds) steps, repeated. Counted blips are easy to read from a
# distance: 1 blip = nothing to scan with, 2 = laptop unreachable, 3 = stopped by the button. The answers to a
# watchlist stick are unlike those: a long flash then two blips = refused; long on, short off = accepted.
STEPS: dict[Pattern, tuple[tuple[bool, float], ...]] = {
    Pattern.FAULT: ((True, 0.1), (False, 0.1)),
    Pattern.STARTING: ((True, 0.5), (False, 0.5)),
    Pattern.IMPORT_REFUSED: ((True, 0.8), (False, 0.2), (True, 0.15), (False, 0.2), (True, 0.15), (False, 0.5)),
    Pattern.IMPORT_FLAGGED: ((True, 1.5), (False, 0.2), (True, 0.15), (False, 0.2), (True, 0.15), (False, 0.2),
                             (True, 0.15), (False, 0.45)),
    Pattern.IMPORT_ACCEPTED: ((True, 1.5), (False, 0.5)),
    Pattern.STOPPED: ((True, 0.15), (False, 0.2), (True, 0.15), (False, 0.2), (True, 0.15), (False, 1.15)),
    Pattern.IDLE: ((True, 0.15), (False, 1.85)),
    Pattern.LINK_DOWN: ((True, 0.15), (False, 0.2), (True, 0.15), (False, 1.5)),
    Pattern.SCANNING: ((True, 1.0),),
}

# The flash shown over any pattern when an alert is raised: 4 flashes in 0.8 s.
ALERT_FLASH: tuple[tuple[bool, float], ...] = ((True, 0.1), (False, 0.1)) * 4

# What each pattern means, for docs/operator.md (a test keeps the two in step).
MEANING: dict[Pattern, str] = {
    Pattern.FAULT: "fast flicker (5 per second): a fault; camera, accelerator or storage failing and retried",
    Pattern.STARTING: "slow even blink (once a second): starting up",
    Pattern.IMPORT_REFUSED: "a long flash then two blips, every 2 s: the watchlist stick was refused; the "
                            "previous list (if any) stays active",
    Pattern.IMPORT_FLAGGED: "long on then three blips, every 3 s: the watchlist was loaded but is too large for "
                            "the false-alert budget at the minimum hit rate (see the viewer or `lfr watchlist status`)",
    Pattern.IMPORT_ACCEPTED: "long on, short off (every 2 s): the watchlist stick was accepted",
    Pattern.STOPPED: "three blips every 2 s: capture stopped with the stop button; nothing is scanned",
    Pattern.IDLE: "one blip every 2 s: no deployment started or no watchlist loaded; nothing is scanned",
    Pattern.LINK_DOWN: "two blips every 2 s: scanning, but the operator laptop is not connected",
    Pattern.SCANNING: "steady on: scanning, laptop connected",
}


def pattern_for(state: ApplianceState) -> Pattern:
    """The one pattern to show for `state`: the most urgent fact wins.

    Ready to scan (deployment and watchlist present, not stopped) but not scanning means frames are not
    arriving, which is shown as a fault even if nobody has flagged one yet. The answer to a watchlist stick
    is shown for a short while over everything but a flagged fault and start-up: whoever inserted the stick
    is looking at the light for it, while a failing camera needs acting on first (the viewer shows both).
    """
    if state.fault:
        return Pattern.FAULT
    if state.starting:
        return Pattern.STARTING
    if state.import_refused:
        return Pattern.IMPORT_REFUSED
    if state.import_flagged:
        return Pattern.IMPORT_FLAGGED
    if state.import_accepted:
        return Pattern.IMPORT_ACCEPTED
    if state.stopped:
        return Pattern.STOPPED
    if not (state.deployment_open and state.watchlist_loaded):
        return Pattern.IDLE
    if not state.scanning:
        return Pattern.FAULT
    if not state.link_up:
        return Pattern.LINK_DOWN
    return Pattern.SCANNING


def sign_lit(state: ApplianceState) -> bool:
    """The public sign is on only while frames are really being scanned."""
    return state.scanning and not state.stopped


def level_at(steps: tuple[tuple[bool, float], ...], t: float) -> bool:
    """LED level `t` seconds into a repeating pattern of (on?, seconds) steps."""
    period = sum(seconds for _, seconds in steps)
    t %= period
    for on, seconds in steps:
        if t < seconds:
            return on
        t -= seconds
    return steps[-1][0]


class Indicators(Protocol):
    """Status lights, buzzer, stop button and sign relay, as the appliance sees them."""

    def show(self, state: ApplianceState) -> None:
        """Show `state`: pick the LED pattern and switch the sign relay; cheap, call on every change."""

    def alert(self) -> None:
        """Flash (and beep, when a buzzer is fitted) once for a new alert."""

    @property
    def is_stopped(self) -> bool:
        """True between a stop-button press and the matching resume."""

    def set_stopped(self, stopped: bool) -> None:
        """Align the button's toggle with a stop or resume that came from elsewhere (e.g. the viewer)."""

    def close(self) -> None:
        """Switch everything off and release the pins; safe to call twice."""


class NullIndicators:
    """Indicators for a van without GPIO: shows nothing, remembers what it would have shown (demo, tests)."""

    def __init__(self, reason: str = "no GPIO configured") -> None:
        self.reason = reason
        self.state = ApplianceState()
        self.pattern = pattern_for(self.state)
        self.sign_on = False
        self.alerts = 0
        self._stopped = False
        self._lock = threading.Lock()
        self.closed = False

    def show(self, state: ApplianceState) -> None:
        with self._lock:
            self.state, self.pattern, self.sign_on = state, pattern_for(state), sign_lit(state)

    def alert(self) -> None:
        with self._lock:
            self.alerts += 1

    @property
    def is_stopped(self) -> bool:
        return self._stopped

    def set_stopped(self, stopped: bool) -> None:
        self._stopped = stopped

    def close(self) -> None:
        self.closed = True
        self.sign_on = False

    def __enter__(self) -> NullIndicators:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

