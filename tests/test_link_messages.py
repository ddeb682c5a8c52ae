"""Link messages: every type survives a round trip, and malformed frames are refused with the right kind."""

from __future__ import annotations

import dataclasses
import json
import uuid

import pytest
from link_fixtures import make_alert, tiny_jpeg

from firmware.errors import LinkError, MessageError
from firmware.link.messages import (
    MAX_HEADER_BYTES,
    MAX_JPEG_BYTES,
    MESSAGE_TYPES,
    Ack,
    Alert,
    Decision,
    DecisionAck,
    HandheldEvent,
    HandheldEventAck,
    Health,
    Heartbeat,
    Preview,
    decode,
    pack,
    unpack,
)

ID = str(uuid.uuid4())


def samples() -> list:
    return [
        make_alert(7).with_prev(6),
        make_alert(1),
        Ack(alert_id=ID, seq=3),
        Decision(decision_id=str(uuid.uuid4()), alert_id=ID, outcome="false_alert", note="wrong person, ü",
                 t_wall=1.7e9),
        DecisionAck(decision_id=str(uuid.uuid4()), alert_id=ID, accepted=False, reason="unknown alert"),
        Heartbeat(role="viewer", t_wall=1.7e9),
        Health(t_wall=1.7e9, cameras_fps={"cam0": 14.5, "cam1": 0}, accelerator="edgetpu", temperature_c=61.0,
               disk_free_mb=1024.5, watchlist_size=120, watchlist_expires=None, deployment="D-2026-11"),
        Health(t_wall=1.7e9, cameras_fps={}, accelerator="cpu", temperature_c=None, disk_free_mb=None,
               watchlist_size=0, watchlist_expires=None, deployment=None, import_time=1.7e9,
               import_outcome="refused", import_code="untrusted_signer",
               import_reason="signature by an untrusted key"),
        Preview(camera="cam0", t_wall=1.7e9, width=640, height=360, jpeg=tiny_jpeg(5)),
        HandheldEvent(event_id=str(uuid.uuid4()), kind="arrested", device_id=str(uuid.uuid4()),
                      callsign="PC 123 ü", alert_id=ID, t_wall=1.7e9),
        HandheldEvent(event_id=str(uuid.uuid4()), kind="paired", device_id=str(uuid.uuid4()),
                      callsign="PC 9", alert_id=None, t_wall=1.7e9),
        HandheldEventAck(event_id=str(uuid.uuid4()), accepted=False, reason="alert not confirmed"),
    ]


@pytest.mark.parametrize("message", samples(), ids=lambda m: m.TYPE)
def test_round_trip(message) -> None:
    frames = message.encode()
    assert all(isinstance(f, bytes) for f in frames)
    assert decode(frames) == message
    assert decode(unpack(pack(frames))) == message


def test_every_type_has_a_sample_and_a_version() -> None:
    assert {m.TYPE for m in samples()} == set(MESSAGE_TYPES)
    assert all(cls.VERSION >= 1 for cls in MESSAGE_TYPES.values())


def test_alert_carries_jpegs_as_frames_not_json() -> None:
    alert = dataclasses.replace(make_alert(3), context_jpeg=tiny_jpeg(9))
    header, probe, reference, context = alert.encode()
    fields = json.loads(header)
    assert fields["type"] == "alert" and fields["v"] == 3
    assert "probe_jpeg" not in fields and "reference_jpeg" not in fields and "context_jpeg" not in fields
    assert probe == alert.probe_jpeg and reference == alert.reference_jpeg and context == alert.context_jpeg
    assert set(fields) - {"type", "v"} == {"alert_id", "seq", "t_wall", "camera", "track_id", "subject_id",
                                             "subject_name", "category", "reason", "score", "prev_seq",
                                             "persisted"}
    assert decode([header, probe, reference, context]) == alert


def test_a_version_1_alert_without_its_context_frame_still_decodes() -> None:
    """Alert version 2 adds the context frame (issue 14); a viewer reads an appliance that was not updated."""
    alert = make_alert(4)
    header, probe, reference, _ = alert.encode()
    old = json.dumps({**{k: v for k, v in json.loads(header).items() if k != "persisted"}, "v": 1}).encode()
    got = decode([old, probe, reference])
    assert isinstance(got, Alert) and got.context_jpeg == b"" and got.probe_jpeg == alert.probe_jpeg
    with pytest.raises(MessageError, match="needs 4 frames"):
        decode([header, probe, reference])


def _header(message) -> dict:
    return json.loads(message.encode()[0])


def _frames(header: dict, *binary: bytes) -> list[bytes]:
    return [json.dumps(header).encode(), *binary]


ALERT = make_alert(2)
JPEGS = (ALERT.probe_jpeg, ALERT.reference_jpeg, ALERT.context_jpeg)
BAD = {
    "empty": ([], "frame_count"),
    "not utf-8": ([b"\xff\xfe{}"], "bad_utf8"),
    "not json": ([b"{type: alert"], "bad_json"),
    "json list": ([b"[1, 2]"], "bad_json"),
    "NaN": ([json.dumps({**_header(ALERT), "score": float("nan")}).encode(), *JPEGS], "bad_json"),
    "deep nesting": ([b"[" * 5000 + b"]" * 5000], "bad_json"),
    "oversize header": ([b" " * (MAX_HEADER_BYTES + 1)], "oversize"),
    "unknown type": (_frames({"type": "exec", "v": 1}), "unknown_type"),
    "type not text": (_frames({"type": ["alert"], "v": 1}), "unknown_type"),
    "version 4": (_frames({**_header(ALERT), "v": 4}, *JPEGS), "unknown_version"),
    "version missing": (_frames({k: v for k, v in _header(ALERT).items() if k != "v"}, *JPEGS),
                        "unknown_version"),
    "version true": (_frames({**_header(Ack(alert_id=ID, seq=1)), "v": True}), "unknown_version"),
    "one jpeg short": (_frames(_header(ALERT), JPEGS[0]), "frame_count"),
    "extra frame": (_frames(_header(Ack(alert_id=ID, seq=1)), b"x"), "frame_count"),
    "missing field": (_frames({k: v for k, v in _header(ALERT).items() if k != "score"}, *JPEGS),
                      "missing_field"),
    "unknown field": (_frames({**_header(ALERT), "shell": "rm"}, *JPEGS), "unknown_field"),
    "seq as text": (_frames({**_header(ALERT), "seq": "2"}, *JPEGS), "bad_field"),
    "seq as bool": (_frames({**_header(ALERT), "seq": True}, *JPEGS), "bad_field"),
    "seq zero": (_frames({**_header(ALERT), "seq": 0}, *JPEGS), "bad_field"),
    "score above 1": (_frames({**_header(ALERT), "score": 1.5}, *JPEGS), "bad_field"),
    "id not uuid": (_frames({**_header(ALERT), "alert_id": "1; DROP TABLE"}, *JPEGS), "bad_field"),
    "name too long": (_frames({**_header(ALERT), "subject_name": "x" * 201}, *JPEGS), "bad_field"),
    "unknown outcome": (_frames({**_header(samples()[3]), "outcome": "arrest"}), "bad_field"),
    "health fps text": (_frames({**_header(samples()[6]), "cameras_fps": {"cam0": "fast"}}), "bad_field"),
    "not a jpeg": (_frames(_header(ALERT), b"GIF89a....", *JPEGS[1:]), "bad_jpeg"),
    "oversize jpeg": (_frames(_header(ALERT), b"\xff\xd8\xff" + bytes(MAX_JPEG_BYTES), *JPEGS[1:]), "oversize"),
}


@pytest.mark.parametrize("name", BAD)
def test_malformed_frames_are_refused_with_their_kind(name: str) -> None:
    frames, kind = BAD[name]
    with pytest.raises(MessageError) as caught:
        decode(frames)
    assert caught.value.kind == kind
    assert isinstance(caught.value, LinkError)


def test_invalid_messages_cannot_be_built() -> None:
    with pytest.raises(MessageError, match="score"):
        Alert(**{**ALERT.__dict__, "score": -0.1})
    with pytest.raises(MessageError, match="role"):
        Heartbeat(role="attacker", t_wall=0)


@pytest.mark.parametrize("blob", [b"", b"\x00", b"\x05" + b"\x00" * 8, b"\x01\x00\x00\x00\x09abc",
                                  pack([b"a"]) + b"junk"])
def test_packed_preview_must_describe_itself_exactly(blob: bytes) -> None:
    with pytest.raises(MessageError):
        unpack(blob)


def test_a_version_3_health_still_decodes_with_no_operating_point() -> None:
    """An appliance from before issue 12 sends health version 3: the viewer takes it, op fields unset."""
    op_fields = [f for f in HEALTH.__dataclass_fields__ if f.startswith("op_")]
    header = {k: v for k, v in json.loads(HEALTH.encode()[0]).items()
              if k not in op_fields and k != "alerts_not_recorded"}
    old = decode([json.dumps({**header, "v": 3}).encode()])
    assert isinstance(old, Health) and old.import_outcome == "accepted"
    assert all(getattr(old, f) is None for f in op_fields) and len(op_fields) == 7


@pytest.mark.parametrize(("change", "kind"), [
    ({"kind": "shot"}, "bad_field"), ({"alert_id": "not-a-uuid"}, "bad_field"),
    ({"callsign": "x" * 41}, "bad_field"), ({"v": 2}, "unknown_version")])
def test_handheld_event_refuses_bad_fields(change: dict, kind: str) -> None:
    """Added in protocol 1.1: a handheld event is checked like every other message."""
    event = HandheldEvent(event_id=str(uuid.uuid4()), kind="engaged", device_id=str(uuid.uuid4()),
                          callsign="PC 1", alert_id=ID, t_wall=1.7e9)
    header = {**json.loads(event.encode()[0]), **change}
    with pytest.raises(MessageError) as err:
        decode([json.dumps(header).encode()])
    assert err.value.kind == kind


HEALTH = Health(t_wall=1.7e9, cameras_fps={"cam0": 14.5}, accelerator="cpu", temperature_c=None,
                disk_free_mb=None, watchlist_size=182, watchlist_expires=1.8e9, deployment="OP-1 at High St",
                import_time=1.7e9, import_outcome="accepted", import_accepted=182, import_rejected=18,
                import_deployment_ref="OP-1", disk_low=False)
IMPORT_FIELDS = [f for f in HEALTH.__dataclass_fields__ if f.startswith("import_")]


def test_health_carries_the_import_result_and_the_disk_state() -> None:
    header = json.loads(HEALTH.encode()[0])
    assert header["v"] == 5 and header["import_outcome"] == "accepted" and header["import_rejected"] == 18
    assert header["disk_low"] is False and header["accelerator"] == "cpu"
    assert decode(HEALTH.encode()) == HEALTH
    low = dataclasses.replace(HEALTH, disk_low=True)
    assert decode(low.encode()) == low


def test_a_version_2_health_still_decodes_with_no_disk_state() -> None:
    """An appliance from before protocol 1.3 sends health version 2 without `disk_low`: it stays unset."""
    header = {k: v for k, v in json.loads(HEALTH.encode()[0]).items()
              if k not in ("disk_low", "alerts_not_recorded") and not k.startswith("op_")}
    old = decode([json.dumps({**header, "v": 2}).encode()])
    assert isinstance(old, Health) and old.disk_low is None and old.import_accepted == 182


def test_a_version_1_health_still_decodes_with_no_import_result() -> None:
    """An appliance from before protocol 1.2 sends health version 1 without the import fields: the viewer
    takes it, and the import fields stay unset."""
    header = {k: v for k, v in json.loads(HEALTH.encode()[0]).items()
              if k not in IMPORT_FIELDS and k not in ("disk_low", "alerts_not_recorded") and not k.startswith("op_")}
    old = decode([json.dumps({**header, "v": 1}).encode()])
    assert isinstance(old, Health) and old.watchlist_size == 182
    assert all(getattr(old, f) is None for f in IMPORT_FIELDS) and len(IMPORT_FIELDS) == 7


@pytest.mark.parametrize(("change", "kind"), [
    ({"v": 1}, "unknown_field"),  # a version 1 message has no import fields
    ({"v": 2}, "unknown_field"),  # nor a version 2 one `disk_low`
    ({"disk_low": "yes"}, "bad_field"), ({"disk_low": 1}, "bad_field"),
    ({"v": 3}, "unknown_field"),  # nor a version 3 one the operating point (nor `alerts_not_recorded`)
    ({"v": 4}, "unknown_field"),  # nor a version 4 one `alerts_not_recorded`
    ({"v": 6}, "unknown_version"), ({"v": 0}, "unknown_version"), ({"v": 1.0}, "unknown_version"),
    ({"import_outcome": "maybe"}, "bad_field"), ({"import_accepted": -1}, "bad_field"),
    ({"import_reason": "x" * 201}, "bad_field")])
def test_health_versions_and_import_fields_are_checked(change: dict, kind: str) -> None:
    header = {**json.loads(HEALTH.encode()[0]), **change}
    with pytest.raises(MessageError) as err:
        decode([json.dumps(header).encode()])
    assert err.value.kind == kind


def test_version_2_needs_its_fields_and_older_versions_only_for_types_that_allow_them() -> None:
    header = json.loads(HEALTH.encode()[0])
    del header["import_code"]
    with pytest.raises(MessageError) as err:
        decode([json.dumps(header).encode()])
    assert err.value.kind == "missing_field"
    for cls in MESSAGE_TYPES.values():
        oldest = getattr(cls, "MIN_VERSION", cls.VERSION)
        assert 1 <= oldest <= cls.VERSION
        for f in cls.__dataclass_fields__.values():  # a field an older version lacks must have a default
            since = f.metadata.get("since", 1)
            assert since <= cls.VERSION
            if since > oldest:
                empty = None if not f.metadata.get("frame") else b""  # a newer image frame defaults to empty
                assert f.default == empty, f"{cls.TYPE}.{f.name} is newer than version {oldest} but required"


def test_a_version_4_health_still_decodes_with_no_alert_recording_state() -> None:
    """An appliance from before issue 13 sends health version 4: `alerts_not_recorded` stays unset."""
    header = {k: v for k, v in json.loads(HEALTH.encode()[0]).items() if k != "alerts_not_recorded"}
    old = decode([json.dumps({**header, "v": 4}).encode()])
    assert isinstance(old, Health) and old.alerts_not_recorded is None and old.import_outcome == "accepted"


def test_a_version_2_alert_is_taken_as_stored_on_the_van() -> None:
    """Alert version 3 adds `persisted` (issue 13); an appliance that was not updated sends version 2."""
    alert = make_alert(5)
    header, *frames = alert.encode()
    old = json.dumps({**{k: v for k, v in json.loads(header).items() if k != "persisted"}, "v": 2}).encode()
    got = decode([old, *frames])
    assert isinstance(got, Alert) and got.persisted is None and got.persisted is not False
