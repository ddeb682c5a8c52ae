"""The one checker behind the configuration and both message families: every kind of refusal, by path."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

from firmware import records
from firmware.records import RecordError, build, spec


@dataclass(frozen=True)
class Inner:
    port: int = spec(8080, "a port", min=1024, max=65535)
    mode: str = spec("auto", "a choice", choices=("auto", "cpu"))


@dataclass(frozen=True)
class Outer:
    name: str = spec(doc="required text", max_len=8)
    ratio: float = spec(0.5, "0..1", min=0.0, max=1.0)
    inner: Inner = field(default_factory=Inner)
    items: tuple[Inner, ...] = spec((), "a list of tables")
    fps: dict[str, float] = spec({}, "a table of numbers", min=0, max_len=2)
    ref: str | None = spec(None, "a UUID or nothing", is_uuid=True)
    tags: list[str] = spec([], "a list")


def test_a_good_record_is_built_and_converted() -> None:
    got = build(Outer, {"name": "van", "ratio": 1, "inner": {"port": 9000}, "items": [{"mode": "cpu"}],
                        "fps": {"cam0": 15}, "ref": "0b8e6c1e-5d55-4c55-9d3c-5a3cf1e6a002"})
    assert got.ratio == 1.0 and isinstance(got.ratio, float)  # an int where a float is declared
    assert got.inner == Inner(port=9000) and got.items == (Inner(mode="cpu"),) and isinstance(got.items, tuple)
    assert got.fps == {"cam0": 15.0} and got.tags == [] and Outer(name="x").tags is not Outer(name="y").tags


@pytest.mark.parametrize(("data", "kind", "words"), [
    ({"name": "van", "bogus": 1}, "unknown", "unknown key bogus in top level"),
    ({"name": "van", "inner": {"prot": 1}}, "unknown", "unknown key inner.prot in [inner]"),
    ({}, "missing", "name: missing"),
    ({"name": 3}, "type", "name: expected str, got int 3"),
    ({"name": "van", "ratio": True}, "type", "ratio: expected float, got bool"),
    ({"name": "van", "ratio": "high"}, "type", "ratio: expected float, got str 'high'"),
    ({"name": "van", "ratio": 1.5}, "range", "ratio: 1.5 is above the maximum 1.0"),
    ({"name": "van", "ratio": -0.1}, "range", "ratio: -0.1 is below the minimum 0.0"),
    ({"name": "van", "ratio": math.nan}, "range", "ratio: nan is not a finite number"),
    ({"name": "van", "ratio": math.inf}, "range", "ratio: inf is not a finite number"),
    ({"name": "van", "inner": {"port": 80}}, "range", "inner.port: 80 is below the minimum 1024"),
    ({"name": "van", "inner": {"mode": "gpu"}}, "choice", "inner.mode: 'gpu' is not one of 'auto', 'cpu'"),
    ({"name": "van", "inner": 3}, "type", "inner: expected a table, got int"),
    ({"name": "van", "items": [{"port": 1}]}, "range", "items[0].port: 1 is below the minimum"),
    ({"name": "van", "items": {"port": 1}}, "type", "items: expected a list, got dict"),
    ({"name": "vanvanvan"}, "length", "name: 9 characters, limit 8"),
    ({"name": "van", "fps": {"a": 1, "b": 2, "c": 3}}, "length", "fps: 3 entries, limit 2"),
    ({"name": "van", "fps": {"a": -1}}, "range", "fps[a]: -1.0 is below the minimum 0"),
    ({"name": "van", "fps": {"a": math.inf}}, "range", "fps[a]: inf is not a finite number"),
    ({"name": "van", "ref": "0B8E6C1E-5D55-4C55-9D3C-5A3CF1E6A002"}, "uuid", "is not a canonical UUID"),
    ({"name": "van", "tags": ["a", 1]}, "type", "tags[1]: expected str"),
])
def test_refusals_name_the_path_and_the_kind(data: dict, kind: str, words: str) -> None:
    with pytest.raises(RecordError) as err:
        build(Outer, data)
    assert err.value.kind == kind and err.value.kind in records.KINDS
    assert words in str(err.value)


def test_fields_absent_in_an_older_version_take_their_defaults_and_may_not_be_sent() -> None:
    absent = frozenset({"ref"})
    assert build(Outer, {"name": "van"}, absent=absent).ref is None
    with pytest.raises(RecordError) as err:
        build(Outer, {"name": "van", "ref": None}, absent=absent)
    assert err.value.kind == "unknown"


def test_describe_walks_nested_records_and_lists_of_them() -> None:
    rows = {path: (doc, default) for path, doc, default in records.describe(Outer)}
    assert rows["inner.port"] == ("a port", 8080) and rows["items[].mode"] == ("a choice", "auto")
    assert rows["ratio"] == ("0..1", 0.5) and rows["tags"] == ("a list", [])
