"""Status lights on a fake clock: let time pass render by render and read back what each pin did."""

from __future__ import annotations

from firmware.hardware.clock import FakeClock
from firmware.hardware.gpio import GpioIndicators

STEP = 0.01
"""Seconds of fake time between two renders (the van renders every 0.02 s)."""


def play(ind: GpioIndicators, clock: FakeClock, seconds: float, *pins: object) -> list[list[bool]]:
    """Let `seconds` pass in steps of STEP, rendering each; the level of each pin after every step."""
    levels: list[list[bool]] = [[] for _ in pins]
    for _ in range(round(seconds / STEP)):
        clock.advance(STEP)
        ind.render()
        for seen, pin in zip(levels, pins, strict=True):
            seen.append(bool(pin.state))  # type: ignore[attr-defined]
    return levels


def runs(levels: list[bool]) -> list[tuple[bool, float]]:
    """(level, seconds held) of each complete interval: the first and last, cut by the recording, left out."""
    held: list[tuple[bool, float]] = []
    for level in levels:
        if held and held[-1][0] == level:
            held[-1] = (level, held[-1][1] + STEP)
        else:
            held.append((level, STEP))
    return [(on, round(s, 3)) for on, s in held[1:-1]]
