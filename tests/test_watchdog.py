"""sd_notify against a real AF_UNIX datagram socket standing in for systemd's notify socket."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.hardware.clock import FakeClock
from firmware.hardware.watchdog import SystemdNotifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(1.0)
    yield sock, path
    sock.close()


def received(sock: socket.socket) -> list[str]:
    sock.setblocking(False)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        return messages
    finally:
        sock.settimeout(1.0)


def test_ready_status_ping_and_stopping_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    with SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"}) as notifier:
        assert notifier.is_enabled and notifier.watchdog_seconds == 20.0
        notifier.ready("scanning\ncamera front")
        notifier.ping()
        notifier.status("link down")
        notifier.stopping()
    assert received(sock) == ["READY=1\nSTATUS=scanning camera front", "WATCHDOG=1", "STATUS=link down",
                              "STOPPING=1"]


def test_pings_are_throttled_to_a_quarter_of_the_watchdog(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    clock = FakeClock()
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "8000000"}, clock=clock)
    for _ in range(100):  # a 30 fps loop for about 6 s of simulated time
        notifier.ping()
        clock.advance(0.06)
    notifier.close()
    notifier.close()
    assert received(sock) == ["WATCHDOG=1"] * 3  # at 0 s, 2 s and 4 s


def test_abstract_socket_name(tmp_path: Path) -> None:
    name = f"lfr-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(1.0)
    try:
        with SystemdNotifier({"NOTIFY_SOCKET": "@" + name}) as notifier:
            notifier.ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_without_systemd_everything_is_a_no_op() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.is_enabled and notifier.watchdog_seconds is None
    notifier.ready()
    notifier.ping()
    notifier.stopping()
    notifier.close()


def test_watchdog_meant_for_another_process_is_ignored(listener: tuple[socket.socket, str]) -> None:
    _, path = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "5000000",
                                "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_seconds is None


def test_vanished_socket_is_logged_once_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}, clock=clock)
    with caplog.at_level(logging.ERROR):
        for _ in range(5):
            notifier.ping()
            clock.advance(2.0)
    assert len([r for r in caplog.records if "cannot notify systemd" in r.getMessage()]) == 1
    notifier.close()
