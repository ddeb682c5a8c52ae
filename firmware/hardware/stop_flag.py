"""The stop button's effect across processes: a flag file whose presence stops capture in every camera.

The hub owns the button; camera processes (one per camera under systemd, or threads in `lfr run`) only
check the file. A file survives neither a reboot (it lives in /run) nor doubt: present means stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from firmware.errors import StorageError
from firmware.hardware.clock import Clock, SystemClock

log = logging.getLogger(__name__)


class StopFlag:
    """`is_set()` is cheap: the file is looked at no more than every `check_s` seconds (default 0.2 s)."""

    def __init__(self, path: Path | str, *, check_s: float = 0.2, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.check_s = check_s
        self.clock = clock or SystemClock()
        self._cached = False
        self._checked = float("-inf")

    def is_set(self) -> bool:
        """True while capture is stopped by the button (or the viewer)."""
        now = self.clock.monotonic()
        if now - self._checked >= self.check_s:
            self._checked = now
            self._cached = self.path.exists()
        return self._cached

    def set(self, stopped: bool) -> None:
        """Create (stopped) or remove (running) the flag file; StorageError when it cannot be written."""
        try:
            if stopped:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot {'create' if stopped else 'remove'} the stop flag {self.path}: "
                               f"{exc}") from exc
        self._cached = stopped
        self._checked = self.clock.monotonic()
