"""Every message on the van–laptop link: one frozen dataclass per type, each with a schema version.

On the wire a message is a multipart ZeroMQ message: frame 0 is a UTF-8 JSON header holding `type`, `v`
(the type's schema version) and every non-binary field; the following frames are the binary fields (JPEGs)
in declaration order. Decoding trusts nothing: sizes, UTF-8, JSON, type, version, frame count, every field's
presence, type and range are checked, and any failure raises `MessageError` whose `kind` names it. Nothing
is ever unpickled.

Versions: a type encodes at its `VERSION`. A type that grew optional fields (each marked `since=N`, with a
default) also decodes its versions back to `MIN_VERSION`: a field newer than the message's version must be
absent and takes its default, so a viewer reads an older appliance and the fields simply stay unset.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from firmware import records
from firmware.errors import MessageError

MAX_HEADER_BYTES = 16 * 1024
"""Largest JSON header frame accepted, in bytes; real headers are well under 2 KiB."""
MAX_JPEG_BYTES = 4 * 1024 * 1024
"""Largest binary (JPEG) frame accepted, in bytes."""
JPEG_MAGIC = b"\xff\xd8\xff"
OUTCOMES = ("confirmed_stopped", "confirmed_not_stopped", "false_alert")
"""What the operator can decide about an alert."""
ROLES = ("appliance", "viewer")
HANDHELD_KINDS = ("paired", "revoked", "dispatched", "engaged", "not_located", "arrested", "advised",
                  "no_action")
"""What a `HandheldEvent` reports: the operator paired or revoked a handheld or sent it an alert, or an
officer's handheld answered (engaged, not located, or the outcome: arrested, advised, no action)."""


def _f(*, max_len: int = 200, **limits: Any) -> Any:
    """A message field with its limits (`firmware.records.spec`), checked when the message is built or
    decoded; text and tables are at most `max_len` (200) long unless the field says otherwise."""
    return records.spec(max_len=max_len, **limits)


def _jpeg(*, since: int = 1) -> Any:
    """A binary field carried in its own frame: a JPEG image, or empty when the image was not kept. One added
    in a later version (`since`) has no frame in older messages and is empty when read from them."""
    if since > 1:
        return field(default=b"", metadata={"frame": True, "since": since})
    return field(metadata={"frame": True})


class Message:
    """Base of every link message: validates its fields on construction (so bad messages are never built)."""

    TYPE: ClassVar[str]
    VERSION: ClassVar[int]
    MIN_VERSION: ClassVar[int]
    """Oldest version still decoded; a type without it decodes only `VERSION`."""

    def __post_init__(self) -> None:
        hints = records.hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            checked = _check_field(f, value, hints[f.name])
            if checked is not value:  # an int where a float is declared, a list for a tuple
                object.__setattr__(self, f.name, checked)

    def encode(self) -> list[bytes]:
        """The multipart frames: JSON header, then one frame per binary field."""
        header: dict[str, Any] = {"type": self.TYPE, "v": self.VERSION}
        frames: list[bytes] = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("frame"):
                frames.append(bytes(value))
            else:
                header[f.name] = value
        raw = json.dumps(header, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        if len(raw) > MAX_HEADER_BYTES:
            raise MessageError("oversize",
                               f"{self.TYPE} header is {len(raw)} bytes, limit {MAX_HEADER_BYTES}")
        return [raw, *frames]


@dataclass(frozen=True)
class Alert(Message):
    """A watchlist match for the operator to decide; `seq` is the appliance's capture order (from 1).

    `prev_seq` is set by the sender at send time: the seq of the next lower alert still unacknowledged in the
    outbox (None when there is none), so the viewer knows whether it may show this alert yet.
    """

    TYPE: ClassVar[str] = "alert"
    VERSION: ClassVar[int] = 3
    MIN_VERSION: ClassVar[int] = 1
    alert_id: str = _f(is_uuid=True)
    seq: int = _f(min=1)
    t_wall: float = _f(min=0)
    camera: str = _f(max_len=64)
    track_id: int = _f(min=0)
    subject_id: str = _f(max_len=64)
    subject_name: str = _f(max_len=200)
    category: str = _f(max_len=64)
    reason: str = _f(max_len=500)
    score: float = _f(min=0.0, max=1.0)
    probe_jpeg: bytes = _jpeg()
    reference_jpeg: bytes = _jpeg()
    prev_seq: int | None = _f(min=1, default=None)
    context_jpeg: bytes = _jpeg(since=2)
    """The whole frame at preview size, the subject outlined and every other face pixelated on the van."""
    persisted: bool | None = _f(default=None, since=3)
    """False when the van could not write the alert (disk full): it lives only in the appliance's memory, is
    sent all the same, and is gone from the van after a restart (version 3, issue 13); True or None (an
    older appliance) when it is stored on the van."""

    def with_prev(self, prev_seq: int | None) -> Alert:
        """This alert as sent now: carrying the seq of the next lower alert still unacknowledged."""
        return dataclasses.replace(self, prev_seq=prev_seq)


@dataclass(frozen=True)
class Ack(Message):
    """The viewer holds alert `alert_id`: the appliance may drop it from the outbox."""

    TYPE: ClassVar[str] = "ack"
    VERSION: ClassVar[int] = 1
    alert_id: str = _f(is_uuid=True)
    seq: int = _f(min=1)


@dataclass(frozen=True)
class Decision(Message):
    """The operator's decision on an alert; resent by the viewer until a DecisionAck comes back."""

    TYPE: ClassVar[str] = "decision"
    VERSION: ClassVar[int] = 1
    decision_id: str = _f(is_uuid=True)
    alert_id: str = _f(is_uuid=True)
    outcome: str = _f(choices=OUTCOMES)
    note: str = _f(max_len=1000)
    t_wall: float = _f(min=0)


@dataclass(frozen=True)
class DecisionAck(Message):
    """The appliance recorded (accepted) or refused a decision; `reason` says why when refused."""

    TYPE: ClassVar[str] = "decision_ack"
    VERSION: ClassVar[int] = 1
    decision_id: str = _f(is_uuid=True)
    alert_id: str = _f(is_uuid=True)
    accepted: bool = _f()
    reason: str = _f(max_len=500)


@dataclass(frozen=True)
class Heartbeat(Message):
    """Sent both ways every heartbeat interval; silence for the link timeout means the link is down."""

    TYPE: ClassVar[str] = "heartbeat"
    VERSION: ClassVar[int] = 1
    role: str = _f(choices=ROLES)
    t_wall: float = _f(min=0)


IMPORT_OUTCOMES = ("accepted", "refused")
"""How the newest watchlist import ended, in `Health.import_outcome`."""


@dataclass(frozen=True)
class Health(Message):
    """The appliance's state for the viewer's status bar, sent every few seconds.

    Version 2 (link protocol 1.2) adds the newest watchlist import's result, all null when there was none
    (and when an appliance of version 1 sent it): wall time, accepted or refused, the refusal code and its
    short reason, entries accepted and rejected, and the bundle's deployment reference. Never a name.
    Version 3 (link protocol 1.3) adds `disk_low`: the van's disk is below its limit and new alerts keep no
    probe crop on the van (null from an older appliance, which said so in `accelerator`).
    Version 4 adds the loaded list's operating point (`firmware.match.operating_point`): list size, photos
    per entry, threshold in force (score and cosine), expected false alerts per 10,000 tracks, expected TPIR,
    and the warning when the list is too large for the false-alert budget.
    Version 5 adds `alerts_not_recorded`: the van cannot write alerts (disk full); they are sent from memory.
    """

    TYPE: ClassVar[str] = "health"
    VERSION: ClassVar[int] = 5
    MIN_VERSION: ClassVar[int] = 1
    t_wall: float = _f(min=0)
    cameras_fps: dict[str, float] = _f(min=0, max_len=16)
    accelerator: str = _f(max_len=64)
    temperature_c: float | None = _f(min=-60, max=200)
    disk_free_mb: float | None = _f(min=0)
    watchlist_size: int = _f(min=0)
    watchlist_expires: float | None = _f(min=0)
    deployment: str | None = _f(max_len=200)
    import_time: float | None = _f(min=0, default=None, since=2)
    import_outcome: str | None = _f(choices=IMPORT_OUTCOMES, default=None, since=2)
    import_code: str | None = _f(max_len=64, default=None, since=2)
    import_reason: str | None = _f(max_len=200, default=None, since=2)
    import_accepted: int | None = _f(min=0, default=None, since=2)
    import_rejected: int | None = _f(min=0, default=None, since=2)
    import_deployment_ref: str | None = _f(max_len=200, default=None, since=2)
    disk_low: bool | None = _f(default=None, since=3)
    op_list_size: int | None = _f(min=0, default=None, since=4)
    op_templates_per_entry: float | None = _f(min=0, max=100, default=None, since=4)
    op_threshold_score: float | None = _f(min=0, max=1, default=None, since=4)
    op_threshold_cosine: float | None = _f(min=-1, max=1, default=None, since=4)
    op_false_alerts_per_10k: float | None = _f(min=0, max=10_000, default=None, since=4)
    op_expected_tpir: float | None = _f(min=0, max=1, default=None, since=4)
    op_warning: str | None = _f(max_len=500, default=None, since=4)
    alerts_not_recorded: bool | None = _f(default=None, since=5)
    """True while alerts cannot be written on the van (disk full): they reach the operator from memory."""


@dataclass(frozen=True)
class Preview(Message):
    """One pixelated live preview frame (unmatched faces blurred on the device); newest wins, may drop."""

    TYPE: ClassVar[str] = "preview"
    VERSION: ClassVar[int] = 1
    camera: str = _f(max_len=64)
    t_wall: float = _f(min=0)
    width: int = _f(min=1, max=8192)
    height: int = _f(min=1, max=8192)
    jpeg: bytes = _jpeg()


@dataclass(frozen=True)
class HandheldEvent(Message):
    """Something about the officers' handhelds for the appliance's audit log (and, for answers, the alert
    row and stats); resent by the viewer until a HandheldEventAck. `alert_id` is None for pairing events.

    Added in link protocol 1.1 (issue 8): an appliance without it refuses the type (`unknown_type`) and the
    viewer keeps resending, so the events reach the audit log once the appliance is updated.
    """

    TYPE: ClassVar[str] = "handheld_event"
    VERSION: ClassVar[int] = 1
    event_id: str = _f(is_uuid=True)
    kind: str = _f(choices=HANDHELD_KINDS)
    device_id: str = _f(is_uuid=True)
    callsign: str = _f(max_len=40)
    alert_id: str | None = _f(is_uuid=True)
    t_wall: float = _f(min=0)


@dataclass(frozen=True)
class HandheldEventAck(Message):
    """The appliance recorded (accepted) or refused a HandheldEvent; `reason` says why when refused."""

    TYPE: ClassVar[str] = "handheld_event_ack"
    VERSION: ClassVar[int] = 1
    event_id: str = _f(is_uuid=True)
    accepted: bool = _f()
    reason: str = _f(max_len=500)


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls for cls in (Alert, Ack, Decision, DecisionAck, Heartbeat, Health, Preview, HandheldEvent,
                              HandheldEventAck)}

def _check_field(f: dataclasses.Field, value: Any, hint: Any) -> Any:
    """The field's value checked (`records.check`, converted where the hint asks), or MessageError."""
    meta = f.metadata
    if meta.get("frame"):
        if not isinstance(value, (bytes, bytearray)):
            raise MessageError("bad_field", f"{f.name} must be bytes, got {type(value).__name__}")
        if len(value) > MAX_JPEG_BYTES:
            raise MessageError("oversize", f"{f.name} is {len(value)} bytes, limit {MAX_JPEG_BYTES}")
        # Empty means "image not kept" (purged after the retention period, or not stored on a full disk).
        if value and not bytes(value[:3]) == JPEG_MAGIC:
            raise MessageError("bad_jpeg", f"{f.name} is not a JPEG image")
        return value
    try:
        return records.check(f.name, value, hint, meta)
    except records.RecordError as exc:
        raise MessageError("bad_field", str(exc)) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def decode(frames: Sequence[bytes]) -> Message:
    """Parse multipart frames into their message; raises MessageError (with a `kind`) on anything amiss."""
    if not frames:
        raise MessageError("frame_count", "empty message")
    head = bytes(frames[0])
    if len(head) > MAX_HEADER_BYTES:
        raise MessageError("oversize", f"header is {len(head)} bytes, limit {MAX_HEADER_BYTES}")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError("bad_utf8", f"header is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        header = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MessageError("bad_json", f"header is not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(header, dict):
        raise MessageError("bad_json", f"header is a JSON {type(header).__name__}, not an object")
    kind = header.pop("type", None)
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise MessageError("unknown_type", f"message type {str(kind)[:40]!r} is unknown")
    version = header.pop("v", None)
    oldest = getattr(cls, "MIN_VERSION", cls.VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or not oldest <= version <= cls.VERSION:
        known = str(cls.VERSION) if oldest == cls.VERSION else f"{oldest}..{cls.VERSION}"
        raise MessageError("unknown_version", f"{kind} version {str(version)[:20]!r} is not {known}")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    binary = [f for f in fields if f.metadata.get("frame") and f.metadata.get("since", 1) <= version]
    if len(frames) != 1 + len(binary):
        raise MessageError("frame_count", f"{kind} needs {1 + len(binary)} frames, got {len(frames)}")
    kwargs: dict[str, Any] = {}
    for f, frame in zip(binary, frames[1:], strict=True):
        kwargs[f.name] = bytes(frame)
    for f in fields:
        if f.metadata.get("frame"):
            continue
        if f.metadata.get("since", 1) > version:
            continue  # absent in this version: the default; a value sent anyway is an unknown field below
        if f.name not in header:
            raise MessageError("missing_field", f"{kind} lacks field {f.name}")
        kwargs[f.name] = header.pop(f.name)
    if header:
        raise MessageError("unknown_field", f"{kind} has unknown field {sorted(header)[0][:40]!r}")
    return cls(**kwargs)


_COUNT = struct.Struct(">B")
_LENGTH = struct.Struct(">I")
_MAX_PACKED_FRAMES = 4


def pack(frames: Sequence[bytes]) -> bytes:
    """Frames as one length-prefixed blob, for the conflated preview stream (CONFLATE drops multipart)."""
    parts = [_COUNT.pack(len(frames))]
    for frame in frames:
        parts.append(_LENGTH.pack(len(frame)))
        parts.append(bytes(frame))
    return b"".join(parts)


def unpack(blob: bytes) -> list[bytes]:
    """Inverse of `pack`, strict: the counts and lengths must describe the blob exactly."""
    if len(blob) < 1:
        raise MessageError("frame_count", "empty packed message")
    (count,) = _COUNT.unpack_from(blob, 0)
    if not 1 <= count <= _MAX_PACKED_FRAMES:
        raise MessageError("frame_count", f"packed message claims {count} frames")
    offset, frames = 1, []
    for _ in range(count):
        if offset + 4 > len(blob):
            raise MessageError("frame_count", "packed message is truncated")
        (length,) = _LENGTH.unpack_from(blob, offset)
        offset += 4
        if length > MAX_JPEG_BYTES or offset + length > len(blob):
            raise MessageError("oversize", f"packed frame of {length} bytes does not fit")
        frames.append(blob[offset:offset + length])
        offset += length
    if offset != len(blob):
        raise MessageError("frame_count", f"{len(blob) - offset} stray bytes after the packed frames")
    return frames
