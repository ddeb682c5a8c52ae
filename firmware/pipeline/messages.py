"""Messages from a camera process to the hub: frozen dataclasses with a type and a schema version.

On the camera→hub channel (ZeroMQ PUSH/PULL over a Unix socket) a message is a multipart message: frame 0 is
a UTF-8 JSON header with `type`, `v` and every non-binary field; each `bytes` field follows as its own frame,
in declaration order. Decoding checks the type, version, field set and frame count; nothing is unpickled.
The in-process development mode passes the same objects over a queue.

Privacy: none of these carries anything about a face that matched nothing. An alert candidate carries one
probe crop of a face that matched a watchlist subject; a preview carries only the pixelated downscaled frame;
stats carry counts and timings.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from firmware import records
from firmware.errors import ChannelError

MAX_HEADER_BYTES = 64 * 1024
MAX_FRAME_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class AlertCandidate:
    """A track whose fused faces matched a watchlist subject: the hub records it as an alert.

    `score` is the calibrated 0..1 score of the fused probe, `shots` the faces fused; times are Unix wall
    seconds and monotonic seconds (same host, so the hub compares them for its cooldown); `probe_jpeg` is the
    face cut from the full-resolution frame with a margin; `context_jpeg` the whole frame at preview size with
    the subject outlined and every other face pixelated (version 2).
    """

    TYPE: ClassVar[str] = "alert_candidate"
    VERSION: ClassVar[int] = 2
    camera: str
    track_id: int
    subject_id: str
    score: float
    shots: int
    t_wall: float
    t_mono: float
    frame_index: int
    watchlist_version: str
    probe_jpeg: bytes = field(repr=False)
    context_jpeg: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class StatsDelta:
    """Counts since the camera's previous StatsDelta (names of `store.stats.PIPELINE_COUNTERS`) and stage
    timings over the same period: stage → [calls, total milliseconds, longest milliseconds]."""

    TYPE: ClassVar[str] = "stats_delta"
    VERSION: ClassVar[int] = 1
    camera: str
    t_wall: float
    counters: dict[str, int]
    timings: dict[str, list[float]]
    scanning: bool


@dataclass(frozen=True)
class PreviewFrame:
    """A downscaled frame in which every face not matched to a watchlist subject is pixelated (JPEG)."""

    TYPE: ClassVar[str] = "preview_frame"
    VERSION: ClassVar[int] = 1
    camera: str
    t_wall: float
    width: int
    height: int
    jpeg: bytes = field(repr=False)


CameraMessage = AlertCandidate | StatsDelta | PreviewFrame
MESSAGE_TYPES: dict[str, type[Any]] = {cls.TYPE: cls for cls in (AlertCandidate, StatsDelta, PreviewFrame)}


def _is_bytes(f: dataclasses.Field[Any], hints: dict[str, Any]) -> bool:
    return hints[f.name] is bytes


def encode(msg: CameraMessage) -> list[bytes]:
    """The multipart frames of `msg`: JSON header, then one frame per bytes field."""
    hints = records.hints(type(msg))
    header: dict[str, Any] = {"type": msg.TYPE, "v": msg.VERSION}
    frames: list[bytes] = []
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        if _is_bytes(f, hints):
            frames.append(bytes(value))
        else:
            header[f.name] = value
    raw = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
    return [raw, *frames]


def decode(frames: list[bytes]) -> CameraMessage:
    """The message in `frames`; ChannelError naming what is wrong (size, JSON, type, version, fields)."""
    if not frames or len(frames[0]) > MAX_HEADER_BYTES:
        raise ChannelError("empty message or header larger than the limit")
    try:
        header = json.loads(frames[0].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ChannelError(f"message header is not UTF-8 JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise ChannelError("message header is not a JSON object")
    cls = MESSAGE_TYPES.get(header.pop("type", None))
    if cls is None:
        raise ChannelError(f"unknown message type; known: {', '.join(MESSAGE_TYPES)}")
    version = header.pop("v", None)
    if version != cls.VERSION:
        raise ChannelError(f"{cls.TYPE} schema version {version!r}, expected {cls.VERSION}")
    hints = records.hints(cls)
    fields = dataclasses.fields(cls)
    binary = [f.name for f in fields if _is_bytes(f, hints)]
    plain = {f.name for f in fields} - set(binary)
    if set(header) != plain:
        raise ChannelError(f"{cls.TYPE} fields {sorted(header)} do not match {sorted(plain)}")
    if len(frames) != 1 + len(binary) or any(len(b) > MAX_FRAME_BYTES for b in frames[1:]):
        raise ChannelError(f"{cls.TYPE} needs {len(binary)} binary frame(s) under {MAX_FRAME_BYTES} bytes, "
                           f"got {len(frames) - 1}")
    for name in plain:
        try:
            header[name] = records.check(f"{cls.TYPE}.{name}", header[name], hints[name])
        except records.RecordError as exc:
            raise ChannelError(str(exc)) from None
    header.update({name: bytes(b) for name, b in zip(binary, frames[1:], strict=True)})
    msg: CameraMessage = cls(**header)
    return msg
