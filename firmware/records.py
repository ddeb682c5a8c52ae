"""Typed records checked field by field: the one way the configuration and both message families (camera →
hub in `pipeline/messages.py`, van ↔ laptop in `link/messages.py`) declare and validate their fields.

A record is a frozen dataclass; `spec()` declares a field with its limits (`min`/`max` for numbers, `max_len`
for text and tables, `choices`, `is_uuid`), its one-line `doc` and the schema version that added it
(`since`, for messages). `build(cls, data)` makes a record from parsed TOML or JSON: unknown keys and missing
fields are refused, every value is checked against its type hint and limits, nested records, lists, tuples
and tables are walked, and every number must be finite (NaN and infinity fail every range). Each refusal is
a `RecordError` whose `kind` says what failed and whose message names the field's path; the configuration
turns it into a `ConfigError`, the link into a `MessageError(kind)`, the camera channel into a
`ChannelError`. Checked at the boundary only: code that builds a record itself is trusted.

Why not a library: msgspec (typed structs, constraints, unknown fields refused) was the candidate, but its
structs are not dataclasses (`dataclasses.replace`, used on configuration sections throughout, does not
apply), and the link's versioned optional fields (`since`) and error kinds would still need this layer.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from firmware.errors import LfrError

T = TypeVar("T")

KINDS = ("type", "range", "choice", "length", "uuid", "unknown", "missing")
"""What a `RecordError` can say failed."""


class RecordError(LfrError, ValueError):
    """A value that does not fit its field: `kind` (one of KINDS) and `path` (e.g. `gpio.buzzer_pin`)."""

    def __init__(self, kind: str, path: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path


def spec(default: Any = dataclasses.MISSING, doc: str = "", *, min: float | None = None,
         max: float | None = None, max_len: int | None = None, choices: tuple[Any, ...] | None = None,
         is_uuid: bool = False, since: int = 1) -> Any:
    """A record field: its default (a list or dict default is copied for each record), one-line `doc` and
    limits; `since` is the schema version that added it (later than 1 only for optional message fields)."""
    meta = {"doc": doc, "min": min, "max": max, "max_len": max_len, "choices": choices, "uuid": is_uuid,
            "since": since}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    """The resolved type hints of record class `cls` (cached: decoding resolves them once per class)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _check_scalar(path: str, value: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is not Any and (not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))):
        shown = f" {value!r}" if isinstance(value, (str, int, float)) else ""
        raise RecordError("type", path, f"{path}: expected {_type_name(hint)}, got {type(value).__name__}"
                                        f"{shown[:80]}")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError("range", path, f"{path}: {value!r} is not a finite number")
    if meta.get("choices") and value not in meta["choices"]:
        raise RecordError("choice", path, f"{path}: {str(value)[:40]!r} is not one of "
                                          f"{', '.join(map(repr, meta['choices']))}")
    if meta.get("min") is not None and value < meta["min"]:
        raise RecordError("range", path, f"{path}: {value!r} is below the minimum {meta['min']}")
    if meta.get("max") is not None and value > meta["max"]:
        raise RecordError("range", path, f"{path}: {value!r} is above the maximum {meta['max']}")
    if isinstance(value, (str, bytes)) and meta.get("max_len") is not None and len(value) > meta["max_len"]:
        raise RecordError("length", path, f"{path}: {len(value)} characters, limit {meta['max_len']}")
    if meta.get("uuid"):
        try:
            if str(uuid.UUID(value)) != value:
                raise ValueError(value)
        except ValueError:
            raise RecordError("uuid", path, f"{path}: {value[:40]!r} is not a canonical UUID") from None
    return value


def check(path: str, value: Any, hint: Any, meta: Mapping[str, Any] | None = None) -> Any:
    """`value` checked against type `hint` and the limits in `meta`, converted where the hint asks (an int
    for a float, a list for a tuple, a table for a record); RecordError naming `path` otherwise."""
    meta = meta or {}
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise RecordError("type", path, f"{path}: expected a table, got {type(value).__name__}")
        return build(hint, value, path)  # type: ignore[arg-type]
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return check(path, value, args[0], meta)
    if origin in (list, tuple):
        item_hint = (typing.get_args(hint) or (Any,))[0]
        if not isinstance(value, (list, tuple)):
            raise RecordError("type", path, f"{path}: expected a list, got {type(value).__name__}")
        if meta.get("max_len") is not None and len(value) > meta["max_len"]:
            raise RecordError("length", path, f"{path}: {len(value)} items, limit {meta['max_len']}")
        item_meta = {k: v for k, v in meta.items() if k != "max_len"}
        items = [check(f"{path}[{i}]", v, item_hint, item_meta) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        if not isinstance(value, dict):
            raise RecordError("type", path, f"{path}: expected a table, got {type(value).__name__}")
        if meta.get("max_len") is not None and len(value) > meta["max_len"]:
            raise RecordError("length", path, f"{path}: {len(value)} entries, limit {meta['max_len']}")
        entry_meta = {k: v for k, v in meta.items() if k != "max_len"}
        return {check(f"{path} key", k, key_hint, {"max_len": 64}):
                check(f"{path}[{k!s:.40}]", v, value_hint, entry_meta) for k, v in value.items()}
    return _check_scalar(path, value, hint, meta)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def build(cls: type[T], data: Mapping[str, Any], prefix: str = "", *,
          absent: frozenset[str] = frozenset()) -> T:
    """A `cls` record from `data`, every field checked; unknown keys and missing fields refused. Fields in
    `absent` (newer than a message's version) must not be in `data` and take their defaults."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - (set(fields) - absent))
    if unknown:
        where = f"[{prefix}]" if prefix else "top level"
        raise RecordError("unknown", _join(prefix, str(unknown[0])),
                          f"unknown key {_join(prefix, str(unknown[0])[:40])} in {where}; "
                          f"known keys: {', '.join(sorted(set(fields) - absent))}")
    for name, f in fields.items():
        no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if name not in data and name not in absent and no_default:
            raise RecordError("missing", _join(prefix, name), f"{_join(prefix, name)}: missing")
    kwargs = {name: check(_join(prefix, name), value, hints(cls)[name], fields[name].metadata)
              for name, value in data.items()}
    return cls(**kwargs)


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, Any]]:
    """Every field of record `cls` as (dotted path, doc, default; None when required), nested records walked
    (a tuple of records as `name[].field`); the configuration's docs test and `lfr config` read it."""
    rows: list[tuple[str, str, Any]] = []
    for f in dataclasses.fields(cls):
        path, hint = f"{prefix}{f.name}", hints(cls)[f.name]
        item = (typing.get_args(hint) or (None,))[0]
        if dataclasses.is_dataclass(hint):
            rows.extend(describe(hint, path + "."))  # type: ignore[arg-type]
        elif typing.get_origin(hint) is tuple and dataclasses.is_dataclass(item):
            rows.append((path, f.metadata.get("doc", ""), f.default))
            rows.extend(describe(item, path + "[]."))  # type: ignore[arg-type]
        else:
            default = (f.default if f.default is not dataclasses.MISSING else
                       None if f.default_factory is dataclasses.MISSING else f.default_factory())
            rows.append((path, f.metadata.get("doc", ""), default))
    return rows
