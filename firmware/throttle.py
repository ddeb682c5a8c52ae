"""Rate limits for things an unauthenticated peer can make us do: warn in the journal, try a secret again.

An attacker on the van LAN can send a thousand bad requests a second; each must not become a journal line
(1,000 wrong pairing tokens gave 1,000 warnings, 300 unauthenticated link handshakes 294) nor another free
guess. Both helpers keep a bounded amount of state, run on an injected monotonic clock, and never block.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


class ThrottledLog:
    """At most one warning per `key` every `interval_s`; the ones held back are counted and named in the
    next warning for that key ("... (17 more like this in the last 60 s)")."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0, max_keys: int = 256,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.max_keys = max_keys
        self.monotonic = monotonic
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """Log `msg % args` as a warning unless `key` was warned about within `interval_s` (then a debug line);
        True when the warning was written."""
        now = self.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.interval_s:
            self._last[key] = (last[0], last[1] + 1)
            self.logger.debug(msg, *args)
            return False
        held = last[1] if last is not None else 0
        self._last[key] = (now, 0)
        self._last.move_to_end(key)
        while len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        suffix = f" ({held} more like this in the last {self.interval_s:g} s)" if held else ""
        self.logger.warning(msg + suffix, *args)
        return True


@dataclass
class _Attempts:
    failures: int
    first: float
    locked_until: float


class Lockout:
    """Per client: after `max_failures` wrong secrets within `window_s`, refuse that client for `lockout_s`.
    At most `max_clients` are remembered (the oldest forgotten first), so a flood of addresses cannot fill
    memory; the lockout is per client so one attacker cannot lock out every officer's phone."""

    def __init__(self, max_failures: int = 5, window_s: float = 60.0, lockout_s: float = 300.0,
                 max_clients: int = 4096, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_clients = max_clients
        self.monotonic = monotonic
        self._clients: OrderedDict[str, _Attempts] = OrderedDict()

    def retry_after(self, client: str) -> float:
        """Seconds `client` must still wait (0 when it may try)."""
        entry = self._clients.get(client)
        return 0.0 if entry is None else max(0.0, entry.locked_until - self.monotonic())

    def failed(self, client: str) -> bool:
        """Count one wrong secret from `client`; True when this failure locked it out."""
        now = self.monotonic()
        entry = self._clients.get(client)
        if entry is None or now - entry.first > self.window_s:
            entry = _Attempts(0, now, 0.0)
        entry.failures += 1
        locked = entry.failures >= self.max_failures
        if locked:
            entry.locked_until, entry.failures, entry.first = now + self.lockout_s, 0, now
        self._clients[client] = entry
        self._clients.move_to_end(client)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return locked

    def succeeded(self, client: str) -> None:
        """A right secret clears the client's count."""
        self._clients.pop(client, None)
