"""A uvicorn server on a background thread: started, waited for, told its port, closed once."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from firmware.errors import ViewerError

START_TIMEOUT_S = 10.0


class ThreadedServer:
    """Runs `server` on a daemon thread named `name`; raises ViewerError(`failure`) when it does not start
    within 10 s (e.g. the port is taken). `host`/`port` are the bound address (port 0 picks a free one)."""

    def __init__(self, server: uvicorn.Server, name: str, failure: str) -> None:
        self._server = server
        self._thread = threading.Thread(target=server.run, name=name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ViewerError(failure)
            time.sleep(0.02)
        sockets = [s for srv in server.servers for s in srv.sockets]
        self.host, self.port = sockets[0].getsockname()[:2]
        self._closed = False

    def close(self) -> None:
        """Stop serving (open connections are dropped); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
