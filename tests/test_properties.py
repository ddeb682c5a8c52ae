"""Property-based tests (issue 13) of the two other parsers that meet untrusted bytes: link messages (a
paired but hostile or broken peer) and the configuration file (a typo or an edited file). Each either
gives a value or raises its own error (`MessageError`, `ConfigError`): never anything else."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.config import AppConfig, describe, load_config, parse_config
from firmware.errors import ConfigError, MessageError
from firmware.link.messages import decode, unpack
from firmware.link.protocol import ApplianceProtocol, ViewerProtocol

pytestmark = pytest.mark.properties

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                         st.text(max_size=40))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                                 st.dictionaries(st.text(max_size=12), inner,
                                                                                 max_size=4)), max_leaves=12)
TYPES = ["alert", "ack", "decision", "decision_ack", "heartbeat", "health", "preview", "handheld_event",
         "handheld_event_ack", "nonsense"]


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    """A JSON header frame that looks like a message: a known type and version, fields of any kind."""
    import json
    doc = draw(st.dictionaries(st.text(max_size=15), json_values, max_size=8))
    doc["type"] = draw(st.sampled_from(TYPES))
    doc["v"] = draw(st.one_of(st.integers(0, 3), json_scalars))
    return json.dumps(doc, allow_nan=True).encode()


@given(st.lists(st.one_of(st.binary(max_size=200), headers()), max_size=5))
def test_link_decoding_only_raises_message_errors(frames: list[bytes]) -> None:
    try:
        decode(frames)
    except MessageError:
        pass


@given(st.binary(max_size=300))
def test_unpacking_only_raises_message_errors(blob: bytes) -> None:
    try:
        unpack(blob)
    except MessageError:
        pass


@given(st.lists(st.one_of(st.binary(max_size=200), headers()), max_size=5), st.floats(0, 1e6))
def test_both_protocols_take_any_frames_without_raising(frames: list[bytes], now: float) -> None:
    ApplianceProtocol().handle(b"\x00peer", frames, now, key=b"k")
    ViewerProtocol().handle(frames, now)


SECTIONS = sorted({path.split(".")[0] for path, _, _ in describe() if "." in path and "[]" not in path})
KEYS = {s: sorted(path.split(".", 1)[1] for path, _, _ in describe() if path.startswith(s + ".")
                  and "[]" not in path) for s in SECTIONS}
toml_scalars = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True),
                         st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3))


@st.composite
def config_docs(draw: st.DrawFn) -> dict:
    """A parsed TOML document of real section and key names (and a stray one now and then), any values."""
    doc: dict = {}
    for section in draw(st.lists(st.sampled_from(SECTIONS), max_size=4, unique=True)):
        keys = st.sampled_from(KEYS[section]) | st.text(max_size=8)
        doc[section] = draw(st.dictionaries(keys, toml_scalars, max_size=4))
    return doc


@given(config_docs())
def test_any_config_document_is_a_config_or_a_config_error(doc: dict) -> None:
    try:
        cfg = parse_config(doc)
    except ConfigError:
        return
    assert isinstance(cfg, AppConfig)


@given(st.binary(max_size=400))
def test_any_config_file_is_a_config_or_a_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                       raw: bytes) -> None:
    path: Path = tmp_path_factory.getbasetemp() / "fuzz.toml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError:
        pass


@given(st.sampled_from([k for k, _, d in describe() if isinstance(d, float) and "[]" not in k]),
       st.sampled_from(["nan", "inf", "-inf"]))
def test_no_float_key_takes_a_non_finite_number(key: str, value: str) -> None:
    section, name = key.rsplit(".", 1)
    with pytest.raises(ConfigError):
        parse_config(tomllib.loads(f"[{section}]\n{name} = {value}\n"))
