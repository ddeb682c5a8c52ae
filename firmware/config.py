"""The appliance's TOML configuration: typed sections that refuse unknown keys, wrong types and nonsense.

Every field carries a one-line doc and, where it is a number, its allowed range; `lfr run --validate-config`
and systemd's ExecStartPre use `load_config` so a bad file stops the unit before it touches a camera.
Sections are frozen dataclasses; a field's metadata holds `doc`, and optionally `min`, `max` and `choices`.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from firmware.errors import ConfigError

T = TypeVar("T")

DEFAULT_CONFIG_PATH = Path("/etc/lfr/appliance.toml")
REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def opt(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
        choices: tuple[Any, ...] | None = None) -> Any:
    """A config field with its documentation and limits, checked by `load_config`."""
    meta = {"doc": doc, "min": min, "max": max, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class PathsConfig:
    state_dir: str = opt("/var/lib/lfr", "where the database and alert images live (systemd StateDirectory)")
    config_dir: str = opt("/etc/lfr", "trusted signing keys, CURVE keys and this file")


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = opt(str(REPO_MODELS_DIR), "folder holding the int8 models and manifest.toml")
    accelerator: str = opt("auto", "auto: Edge TPU when its delegate loads, else CPU; or force one",
                           choices=("auto", "edgetpu", "cpu"))
    edgetpu_device: str = opt("usb", "Edge TPU bus passed to libedgetpu", choices=("usb", "pci"))
    precision: str = opt("auto", "CPU path: int8, float, or auto (the faster at equal accuracy, measured)",
                         choices=("auto", "int8", "float"))
    threads: int = opt(2, "CPU inference threads per camera process", min=1, max=8)


@dataclass(frozen=True)
class DetectConfig:
    min_score: float = opt(0.6, "BlazeFace score below which a detection is dropped (0..1)", min=0.05, max=0.99)
    nms_iou: float = opt(0.3, "IoU above which overlapping detections are merged (0..1)", min=0.05, max=0.95)
    min_face_px: int = opt(24, "smallest face side, in frame pixels, passed on to tracking", min=8, max=1024)


@dataclass(frozen=True)
class QualityConfig:
    min_face_px: int = opt(48, "smallest inter-ocular-scaled face side, in pixels, worth embedding", min=16,
                           max=1024)
    min_sharpness: float = opt(40.0, "variance of the Laplacian on the aligned face below which it is blurred",
                               min=0.0, max=10000.0)
    max_yaw: float = opt(0.45, "largest yaw proxy from keypoints (0 frontal, 1 profile)", min=0.0, max=1.0)


@dataclass(frozen=True)
class MatchConfig:
    threshold: float = opt(0.6, "alert when the calibrated 0..1 score reaches this (policy default 0.6)",
                           min=0.5, max=0.99)
    top_k: int = opt(3, "watchlist candidates kept per probe", min=1, max=50)


# --- hardware (issue 6): GPIO status lights, stop button, sign relay ---
GPIO_PIN_FACTORIES = ("auto", "lgpio", "rpigpio", "pigpio", "native", "mock", "none")
_PIN_FIELDS = ("status_led_pin", "alert_led_pin", "buzzer_pin", "stop_button_pin", "sign_relay_pin")


@dataclass(frozen=True)
class GpioConfig:
    pin_factory: str = opt("auto", "gpiozero pin library: auto tries lgpio (the one that drives a Pi 5), "
                           "rpigpio, pigpio, then native; mock for a virtual board; none for no GPIO at all",
                           choices=GPIO_PIN_FACTORIES)
    status_led_pin: int = opt(17, "BCM number of the status LED (patterns in docs/operator.md)",
                              min=0, max=27)
    alert_led_pin: int | None = opt(None, "BCM number of a separate alert LED; unset: alerts flash the "
                                    "status LED", min=0, max=27)
    buzzer_pin: int | None = opt(None, "BCM number of an active buzzer that beeps on every alert; "
                                 "unset: none", min=0, max=27)
    stop_button_pin: int | None = opt(27, "BCM number of the stop button (to ground, internal pull-up)",
                                      min=0, max=27)
    sign_relay_pin: int | None = opt(None, "BCM number of the relay lighting the 'live facial recognition in "
                                     "operation' sign; on only while frames are scanned", min=0, max=27)
    relay_active_high: bool = opt(True, "true when the relay board switches on with a high pin")
    hold_seconds: float = opt(2.0, "seconds the stop button must be held for a long press", min=0.5, max=10.0)
    resume_needs_hold: bool = opt(False, "true: only a long press resumes after a stop; false: any press "
                                  "does")
    bounce_seconds: float = opt(0.05, "stop button debounce time, seconds", min=0.0, max=0.5)

    def __post_init__(self) -> None:
        used: dict[int, str] = {}
        for name in _PIN_FIELDS:
            pin = getattr(self, name)
            if pin is None:
                continue
            if pin in used:
                raise ConfigError(f"gpio.{name}: pin {pin} is already used by gpio.{used[pin]}")
            used[pin] = name
# --- end hardware ---


@dataclass(frozen=True)
class AppConfig:
    paths: PathsConfig = field(default_factory=PathsConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    gpio: GpioConfig = field(default_factory=GpioConfig)


def _check_value(path: str, value: Any, hint: Any, meta: dict[str, Any] | None) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a table, got {type(value).__name__}")
        return _build(hint, value, path)  # type: ignore[arg-type]
    if origin in (list, tuple):
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        items = [_check_value(f"{path}[{i}]", v, item_hint, None) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _check_value(path, value, args[0], meta)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if hint is not Any and (not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {type(value).__name__} {value!r}")
    if meta:
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, meta['choices']))}")
        if meta.get("min") is not None and value < meta["min"]:
            raise ConfigError(f"{path}: {value!r} is below the minimum {meta['min']}")
        if meta.get("max") is not None and value > meta["max"]:
            raise ConfigError(f"{path}: {value!r} is above the maximum {meta['max']}")
    return value


def _build(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"[{prefix}]" if prefix else "top level"
        raise ConfigError(f"unknown key {prefix + '.' if prefix else ''}{unknown[0]} in {where}; "
                          f"known keys: {', '.join(sorted(fields))}")
    kwargs = {name: _check_value(f"{prefix + '.' if prefix else ''}{name}", value, hints[name],
                                 dict(fields[name].metadata) or None)
              for name, value in data.items()}
    return cls(**kwargs)


def parse_config(data: dict[str, Any]) -> AppConfig:
    """Validate an already-parsed TOML document; raises ConfigError naming the offending key's path."""
    return _build(AppConfig, data)


def load_config(path: Path | str | None) -> AppConfig:
    """Read and validate the TOML file at `path`; `None` gives the built-in defaults."""
    if path is None:
        return AppConfig()
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def describe(cls: type = AppConfig, prefix: str = "") -> list[tuple[str, str, Any]]:
    """Every config key as (dotted path, doc, default), for the docs test and `docs/configuration.md`."""
    rows: list[tuple[str, str, Any]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(describe(hints[f.name], path + "."))
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            rows.append((path, f.metadata.get("doc", ""), default))
    return rows
