"""Tell systemd the appliance is ready and still alive (the sd_notify protocol, written out by hand).

Under a `Type=notify` unit systemd sets $NOTIFY_SOCKET (a path, or an abstract name starting with '@') and,
with `WatchdogSec=`, $WATCHDOG_USEC. The pipeline calls `ping()` every loop: a stuck camera or accelerator
stops the pings and systemd kills and restarts the process. Outside systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

from firmware.hardware.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends READY=1, WATCHDOG=1, STATUS=... and STOPPING=1 datagrams to systemd's notify socket.

    `ping()` is cheap to call often: it sends at most once per quarter of the watchdog interval (or once a
    second when no interval was given). `environ` and `clock` are injectable for tests.
    """

    def __init__(self, environ: Mapping[str, str] | None = None,
                 clock: Clock | None = None) -> None:
        env = os.environ if environ is None else environ
        self._clock = clock or SystemClock()
        self._address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env)
        self._min_gap = self.watchdog_seconds / 4 if self.watchdog_seconds else 1.0
        self._last_ping: float | None = None
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def is_enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self._address is not None

    def ready(self, status: str | None = None) -> None:
        """Start-up is complete (models loaded, camera open): systemd marks the unit active."""
        self._send("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def ping(self) -> None:
        """The loop is alive; call every iteration, sent no more often than needed."""
        now = self._clock.monotonic()
        if self._last_ping is not None and now - self._last_ping < self._min_gap:
            return
        self._last_ping = now
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """One line shown by `systemctl status` (e.g. "scanning, 14.8 fps, 120 on watchlist")."""
        self._send(f"STATUS={_one_line(text)}")

    def stopping(self) -> None:
        """Shutdown has begun: systemd waits for the exit instead of treating silence as a hang."""
        self._send("STOPPING=1")

    def close(self) -> None:
        """Release the socket; safe to call twice."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SystemdNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), self._address)
            self._failed = False
        except OSError as exc:
            if not self._failed:  # once per outage, not every loop
                log.error("cannot notify systemd at %r (%s); the watchdog will restart this process",
                          self._address, exc)
            self._failed = True


def _one_line(text: str) -> str:
    """A newline would start a new assignment in the datagram; STATUS must stay one line."""
    return " ".join(text.splitlines())


def _address(value: str) -> str | bytes | None:
    """$NOTIFY_SOCKET as a socket address: '@name' is the abstract name '\\0name'."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    log.warning("ignoring NOTIFY_SOCKET=%r: neither a path nor an abstract name", value)
    return None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """WatchdogSec in seconds when it applies to this process (WATCHDOG_PID, if set, must be ours)."""
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a whole number of microseconds", usec)
        return None
    return value / 1_000_000 if value > 0 else None
