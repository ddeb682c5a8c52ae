"""Fuzz: 10,000+ random or mangled multipart messages into each side's decode-and-handle path.

Neither side may crash or change state, and each kind of rejection is logged once as a warning (the rest at
debug level), so a hostile or broken peer cannot flood the journal.
"""

from __future__ import annotations

import json
import logging
import random
import uuid

import pytest
from link_fixtures import make_alert, tiny_jpeg

from firmware.errors import MessageError
from firmware.link.messages import Ack, Decision, DecisionAck, Health, Heartbeat, Preview, decode, pack
from firmware.link.protocol import ApplianceProtocol, ViewerProtocol

N = 10_000
PEER = b"\x00peer"


def _valid_messages() -> list[list[bytes]]:
    alert = make_alert(5)
    return [m.encode() for m in (
        alert.with_prev(4), Ack(alert_id=alert.alert_id, seq=5),
        Decision(decision_id=str(uuid.uuid4()), alert_id=alert.alert_id, outcome="false_alert", note="n",
                 t_wall=1.0),
        DecisionAck(decision_id=str(uuid.uuid4()), alert_id=alert.alert_id, accepted=True, reason=""),
        Heartbeat(role="viewer", t_wall=1.0), Heartbeat(role="appliance", t_wall=1.0),
        Health(t_wall=1.0, cameras_fps={"cam0": 10.0}, accelerator="cpu", temperature_c=None,
               disk_free_mb=None,
               watchlist_size=0, watchlist_expires=None, deployment=None),
        Preview(camera="cam0", t_wall=1.0, width=2, height=2, jpeg=tiny_jpeg(1)))]


def _mangle(rng: random.Random, frames: list[bytes]) -> list[bytes]:
    frames = list(frames)
    choice = rng.randrange(9)
    if choice == 0:  # random bytes, random frame count
        return [rng.randbytes(rng.randrange(0, 64)) for _ in range(rng.randrange(0, 5))]
    if choice == 1:  # flip bytes in the header
        head = bytearray(frames[0])
        for _ in range(rng.randrange(1, 4)):
            head[rng.randrange(len(head))] = rng.randrange(256)
        frames[0] = bytes(head)
    elif choice == 2:  # truncate the header
        frames[0] = frames[0][:rng.randrange(len(frames[0]))]
    elif choice == 3:  # drop or add a frame
        if len(frames) > 1 and rng.random() < 0.5:
            del frames[rng.randrange(1, len(frames))]
        else:
            frames.insert(rng.randrange(1, len(frames) + 1), rng.randbytes(rng.randrange(0, 32)))
    elif choice in (4, 5):  # a field with a wrong type, out of range, or removed, or an extra one
        header = json.loads(frames[0])
        key = rng.choice(sorted(header))
        header[key] = rng.choice([None, "", "x" * 300, -1, 1e308, True, [], {}, {"a": 1}, 2**70, "1"])
        if rng.random() < 0.3:
            del header[key]
        if rng.random() < 0.2:
            header[rng.choice(["extra", "__class__", "pickle"])] = 1
        frames[0] = json.dumps(header).encode()
    elif choice == 6:  # unknown type or version
        header = json.loads(frames[0])
        header[rng.choice(["type", "v"])] = rng.choice(["alert2", 0, 2, 99, None, "1", 1.0001])
        frames[0] = json.dumps(header).encode()
    elif choice == 7:  # binary frame that is not a JPEG
        if len(frames) > 1:
            frames[-1] = b"\x89PNG" + frames[-1][4:]
        else:
            frames[0] = b"\xff" + frames[0]
    else:  # JSON that is not an object, or not UTF-8
        frames[0] = rng.choice([b"null", b"42", b'"alert"', b"[]", b"\xc3\x28", b'{"type": "ack"}}}'])
    return frames


def malformed(seed: int, count: int) -> list[list[bytes]]:
    """`count` multipart messages every one of which `decode` must refuse."""
    rng, valid, out = random.Random(seed), _valid_messages(), []
    while len(out) < count:
        frames = _mangle(rng, rng.choice(valid))
        try:
            decode(frames)
        except MessageError:
            out.append(frames)
    return out


def _warnings_by_kind(records: list[logging.LogRecord]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in records:
        if r.name == "firmware.link.protocol" and r.levelno == logging.WARNING:
            kind = r.args[2]  # type: ignore[index]
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_appliance_survives_garbage_unchanged_and_logs_each_kind_once(
        caplog: pytest.LogCaptureFixture) -> None:
    appliance = ApplianceProtocol()
    appliance.handle(PEER, Heartbeat(role="viewer", t_wall=1.0).encode(), 0.0)
    appliance.sender.mark_sent(str(uuid.uuid4()), 0.0)
    before = appliance.snapshot()
    caplog.set_level(logging.WARNING, logger="firmware.link.protocol")
    for frames in malformed(1, N):
        events = appliance.handle(PEER, frames, 1.0)
        assert not (events.acked or events.decisions or events.replies or events.new_peer)
    assert appliance.snapshot() == before
    assert sum(appliance.rejects.counts.values()) == N
    assert len(appliance.rejects.counts) >= 8
    assert _warnings_by_kind(caplog.records) == {kind: 1 for kind in appliance.rejects.counts}


def test_viewer_survives_garbage_unchanged_and_logs_each_kind_once(caplog: pytest.LogCaptureFixture) -> None:
    viewer = ViewerProtocol(last_seq=3)
    viewer.handle(Heartbeat(role="appliance", t_wall=1.0).encode(), 0.0)
    viewer.handle(make_alert(9).with_prev(8).encode(), 0.0)  # held: 4..8 still missing
    viewer.decide(Decision(decision_id=str(uuid.uuid4()), alert_id=str(uuid.uuid4()), outcome="false_alert",
                           note="", t_wall=1.0))
    before = viewer.snapshot()
    caplog.set_level(logging.WARNING, logger="firmware.link.protocol")
    for frames in malformed(2, N):
        events = viewer.handle(frames, 1.0)
        assert not (events.delivered or events.replies or events.decision_acks or events.health)
    rng = random.Random(3)
    blobs = [pack(frames) for frames in malformed(4, 2000)]
    blobs += [rng.randbytes(rng.randrange(40)) for _ in range(500)]
    for blob in blobs:
        assert viewer.handle_preview(blob) is None
    assert viewer.snapshot() == before
    assert sum(viewer.rejects.counts.values()) == N
    assert sum(viewer.preview_rejects.counts.values()) == len(blobs)
    expected = {}
    for kind in list(viewer.rejects.counts) + list(viewer.preview_rejects.counts):
        expected[kind] = expected.get(kind, 0) + 1
    assert _warnings_by_kind(caplog.records) == expected
