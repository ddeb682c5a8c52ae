"""The camera→hub channel: ZeroMQ PUSH/PULL on a Unix socket between processes, a queue within one process.

Cameras never block on the hub: a preview or stats message that cannot be sent at once is dropped and
counted (the next one supersedes it). An alert candidate is never dropped while the process lives: when the
hub cannot take it yet, it waits in a small in-memory backlog and is retried on the next send and at close.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Protocol

import zmq

from firmware.errors import ChannelError, LfrError
from firmware.pipeline.messages import AlertCandidate, CameraMessage, decode, encode

log = logging.getLogger(__name__)

SEND_HWM = 64
ALERT_BACKLOG = 256
CLOSE_LINGER_MS = 2000


class HubSender(Protocol):
    """Camera side: `send` returns False when a droppable message was dropped; `close()` safe twice."""

    def send(self, msg: CameraMessage) -> bool: ...

    def close(self) -> None: ...


class HubReceiver(Protocol):
    """Hub side: the next message, or None after `timeout` seconds; `close()` safe twice."""

    def receive(self, timeout: float) -> CameraMessage | None: ...

    def close(self) -> None: ...


class QueueChannel:
    """Both ends in one process (development `lfr run`, tests, benchmarks): the same message objects."""

    def __init__(self, maxsize: int = 256) -> None:
        self._queue: queue.Queue[CameraMessage] = queue.Queue(maxsize)
        self.dropped = 0
        self._lock = threading.Lock()

    def send(self, msg: CameraMessage) -> bool:
        try:
            if isinstance(msg, AlertCandidate):
                self._queue.put(msg, timeout=5.0)
            else:
                self._queue.put_nowait(msg)
        except queue.Full:
            if isinstance(msg, AlertCandidate):
                raise ChannelError("the hub took no message for 5 s; alert candidate not delivered") from None
            with self._lock:
                self.dropped += 1
            return False
        return True

    def receive(self, timeout: float) -> CameraMessage | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Nothing to release; present for the protocols."""


def ipc_endpoint(path: str | Path) -> str:
    return f"ipc://{Path(path)}"


class ZmqHubSender:
    """A camera process's PUSH socket connected to the hub's Unix socket `path`."""

    def __init__(self, path: str | Path, context: zmq.Context[zmq.Socket[bytes]] | None = None) -> None:
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUSH)
        self._sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._sock.setsockopt(zmq.LINGER, CLOSE_LINGER_MS)
        self._sock.connect(ipc_endpoint(path))
        self._backlog: collections.deque[AlertCandidate] = collections.deque()
        self.dropped = 0
        self._closed = False

    def _try(self, msg: CameraMessage) -> bool:
        try:
            self._sock.send_multipart(encode(msg), flags=zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def _drain(self) -> None:
        while self._backlog and self._try(self._backlog[0]):
            self._backlog.popleft()

    def send(self, msg: CameraMessage) -> bool:
        if self._closed:
            raise ChannelError("send on a closed hub channel")
        self._drain()
        if isinstance(msg, AlertCandidate):
            if self._backlog or not self._try(msg):
                if len(self._backlog) >= ALERT_BACKLOG:
                    raise ChannelError(f"the hub is not taking messages; {ALERT_BACKLOG} alerts wait")
                self._backlog.append(msg)
                log.warning("hub busy or down: alert candidate of track %d waits (%d waiting)", msg.track_id,
                            len(self._backlog))
            return True
        if not self._try(msg):
            self.dropped += 1
            return False
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drain()
        if self._backlog:
            log.error("%d alert candidate(s) could not reach the hub before shutdown", len(self._backlog))
        self._sock.close()


class ZmqHubReceiver:
    """The hub's PULL socket bound to the Unix socket `path` (a stale socket file is replaced)."""

    def __init__(self, path: str | Path, context: zmq.Context[zmq.Socket[bytes]] | None = None) -> None:
        self.path = Path(path)
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PULL)
        self._sock.setsockopt(zmq.LINGER, 0)
        self.rejected = 0
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.path.is_socket():
                self.path.unlink()
            self._sock.bind(ipc_endpoint(self.path))
            os.chmod(self.path, 0o600)
        except (OSError, zmq.ZMQError) as exc:
            self._sock.close()
            raise LfrError(f"hub cannot listen on {self.path}: {exc}") from exc

    def receive(self, timeout: float) -> CameraMessage | None:
        if not self._sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        frames = self._sock.recv_multipart(copy=True)
        try:
            return decode(frames)
        except ChannelError as exc:
            self.rejected += 1
            log.warning("hub: refused a malformed message from a camera: %s", exc)
            return None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
