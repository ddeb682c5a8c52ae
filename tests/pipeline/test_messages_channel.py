"""Camera→hub messages: typed, versioned, never pickled; the ZeroMQ ipc channel delivers and never loses an
alert candidate while the hub is away; the in-process queue drops only droppable messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zmq

from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import ChannelError
from firmware.pipeline.camera import CameraPipeline
from firmware.pipeline.channel import QueueChannel, ZmqHubReceiver, ZmqHubSender
from firmware.pipeline.messages import AlertCandidate, PreviewFrame, StatsDelta, decode, encode

T0 = 1_767_225_600.0
ALERT = AlertCandidate("cam0", 7, "S1", 0.81, 2, T0, 1000.5, 42, "abc:1:1", b"\xff\xd8\xff probe", b"\xff\xd8\xff ctx")
STATS = StatsDelta("cam0", T0, {"frames": 10, "embeddings": 3}, {"detect": [10.0, 55.0, 9.0]}, True)
PREVIEW = PreviewFrame("cam0", 1_767_225_600.0, 640, 360, b"\xff\xd8\xff preview")


@pytest.mark.parametrize("msg", [ALERT, STATS, PREVIEW])
def test_round_trip_json_header_plus_binary_frames(msg: object) -> None:
    frames = encode(msg)  # type: ignore[arg-type]
    header = json.loads(frames[0])
    assert header["type"] == msg.TYPE and header["v"] == msg.VERSION  # type: ignore[attr-defined]
    assert all(not isinstance(v, (bytes, bytearray)) for v in header.values())
    assert decode(frames) == msg


def _frames(**change: object) -> list[bytes]:
    frames = encode(ALERT)
    header = json.loads(frames[0])
    header.update(change)
    return [json.dumps(header).encode(), *frames[1:]]


@pytest.mark.parametrize("frames, words", [
    (_frames(type="pickle"), "unknown message type"),
    (_frames(v=1), "schema version"),
    (_frames(extra=1), "do not match"),
    (_frames(score="high"), "expected float"),
    (_frames(track_id=True), "expected int"),
    (_frames(score=float("nan")), "not a finite number"),  # Python's json reads NaN; records refuse it
    (encode(ALERT)[:1], "binary frame"),
    ([b"\x80\x04not json"], "not UTF-8 JSON"),
    ([], "empty"),
])
def test_malformed_messages_refused_with_the_reason(frames: list[bytes], words: str) -> None:
    with pytest.raises(ChannelError, match=words):
        decode(frames)


def test_queue_drops_previews_when_full_but_never_alerts() -> None:
    q = QueueChannel(maxsize=1)
    assert q.send(PREVIEW)
    assert not q.send(PREVIEW) and q.dropped == 1
    assert q.receive(0.1) == PREVIEW
    assert q.send(ALERT) and q.receive(0.1) == ALERT
    assert q.receive(0.01) is None


def test_zmq_ipc_delivers_and_refuses_garbage(tmp_path: Path) -> None:
    ctx = zmq.Context()
    sock = tmp_path / "run" / "hub.sock"
    receiver = ZmqHubReceiver(sock, ctx)
    sender = ZmqHubSender(sock, ctx)
    try:
        for msg in (ALERT, STATS, PREVIEW):
            assert sender.send(msg)
        got = [receiver.receive(2.0) for _ in range(3)]
        assert got == [ALERT, STATS, PREVIEW]
        raw = ctx.socket(zmq.PUSH)
        raw.setsockopt(zmq.LINGER, 0)
        raw.connect(f"ipc://{sock}")
        raw.send_multipart([b"\x80\x04\x95pickled"])
        assert receiver.receive(2.0) is None and receiver.rejected == 1
        raw.close()
    finally:
        sender.close()
        sender.close()
        receiver.close()
        receiver.close()
        ctx.term()
    assert not sock.exists()


def test_alert_waits_for_a_hub_that_starts_late(tmp_path: Path) -> None:
    """An alert candidate sent while the hub is down reaches it once it listens; previews may be dropped."""
    ctx = zmq.Context()
    sock = tmp_path / "hub.sock"
    sender = ZmqHubSender(sock, ctx)
    try:
        for _ in range(200):
            sender.send(PREVIEW)
        assert sender.dropped > 0, "previews beyond the high-water mark are dropped, not queued"
        assert sender.send(ALERT)
        receiver = ZmqHubReceiver(sock, ctx)
        try:
            seen = []
            while (msg := receiver.receive(2.0)) is not None:
                seen.append(msg)
                if isinstance(msg, AlertCandidate):
                    break
                sender.send(STATS)  # any later send retries the waiting alert
            assert ALERT in seen
        finally:
            receiver.close()
    finally:
        sender.close()
        ctx.term()


def test_stats_of_a_dropped_delta_go_out_with_the_next_one(cfg: AppConfig, recognizer: Recognizer) -> None:
    """Regression (issue 16): `flush_stats` zeroed its counters before sending and ignored a failed send, so a
    delta dropped by a full channel lost its counts for good (10 frames counted, queue full, the next delta
    carried 1) and the report under-counted faces seen."""
    channel = QueueChannel(maxsize=1)
    pipeline = CameraPipeline("cam0", recognizer, cfg, channel)
    assert channel.send(PREVIEW)  # the hub is busy: the one slot is taken
    pipeline.count("frames", 10)
    pipeline.count("faces_seen", 4)
    pipeline.timings.add("detect", 5.0)
    dropped = pipeline.flush_stats(dropped_frames=2)
    assert channel.dropped == 1 and dropped.counters["frames"] == 10
    assert channel.receive(0.0) is PREVIEW  # the hub catches up
    pipeline.count("frames", 1)
    pipeline.timings.add("detect", 7.0)
    sent = pipeline.flush_stats()
    assert channel.receive(0.0) is sent
    assert (sent.counters["frames"], sent.counters["faces_seen"], sent.counters["dropped_frames"]) == (11, 4, 2)
    assert sent.timings["detect"] == [2.0, 12.0, 7.0]
    assert pipeline.total_timings.snapshot()["detect"] == [2.0, 12.0, 7.0]  # measured once, not twice
    assert pipeline.flush_stats().counters["frames"] == 0  # and nothing is counted twice
