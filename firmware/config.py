"""The appliance's TOML configuration: typed sections that refuse unknown keys, wrong types and nonsense.

Every field carries a one-line doc and, where it is a number, its allowed range; `lfr run --validate-config`
and systemd's ExecStartPre use `load_config` so a bad file stops the unit before it touches a camera.
Sections are frozen dataclasses declared and checked with `firmware.records` (the same checker as both message
families): a field's metadata holds `doc`, and optionally `min`, `max` and `choices`; numbers must be finite.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware import records
from firmware.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/lfr/appliance.toml")
REPO_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def shipped_models_dir() -> Path:
    """Where the installed package keeps its models: the data-only package `lfr_models` (setup.py maps the
    repository's models/ to it), in site-packages for a wheel and the checkout's models/ for an editable install."""
    spec = importlib.util.find_spec("lfr_models")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return Path(locations[0]).resolve() if locations else REPO_MODELS_DIR


SHIPPED_MODELS_DIR = shipped_models_dir()


def opt(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
        choices: tuple[Any, ...] | None = None) -> Any:
    """A config field with its documentation and limits (`firmware.records.spec`), checked by `load_config`."""
    return records.spec(default, doc, min=min, max=max, choices=choices)


def check_file_name(path: str, value: str, folder: str) -> None:
    """A file name that must stay inside `folder`: one plain name, no separators, no `..`, not absolute."""
    if (not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value
            or Path(value).is_absolute()):
        raise ConfigError(f"{path}: {value!r} must be a plain file name inside {folder} (no folders, no '..', "
                          "not an absolute path)")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1): reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class PathsConfig:
    state_dir: str = opt("/var/lib/lfr", "where the database and alert images live (systemd StateDirectory)")
    config_dir: str = opt("/etc/lfr", "trusted signing keys, CURVE keys and this file")


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = opt(str(SHIPPED_MODELS_DIR), "folder holding the models, manifest.toml and calibration.toml "
                   "(default: the ones installed with the package)")
    accelerator: str = opt("auto", "auto: Edge TPU when its delegate loads, else CPU; or force one",
                           choices=("auto", "edgetpu", "cpu"))
    edgetpu_device: str = opt("usb", "Edge TPU bus passed to libedgetpu", choices=("usb", "pci"))
    precision: str = opt("auto", "CPU path: int8, float, or auto (embedder: the file the score calibration was "
                         "fitted on; detector and mesh: the faster, measured once per machine and kept in "
                         "state_dir/model-precision.json)", choices=("auto", "int8", "float"))
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
class EmbedConfig:
    landmarks: str = opt("mesh", "alignment keypoints: mesh (face-mesh model, better on LFW, about 6 ms more per "
                         "face on a CPU) or blazeface (the detector's own)", choices=("mesh", "blazeface"))


@dataclass(frozen=True)
class MatchConfig:
    threshold: float = opt(0.6, "alert when the calibrated 0..1 score reaches this (policy default 0.6)",
                           min=0.5, max=0.99)
    top_k: int = opt(3, "watchlist candidates kept per probe", min=1, max=50)
    policy: str = opt("budget", "budget: each import raises the threshold (never below `threshold`) until a track's "
                      "expected false alerts against the loaded list are within `false_alerts_per_10k_tracks`; "
                      "fixed: `threshold` always, the expectation only reported", choices=("budget", "fixed"))
    false_alerts_per_10k_tracks: float = opt(1.0, "false-alert budget: expected false alerts per 10,000 tracks "
                                             "(people passing) against the loaded list", min=0.001, max=1000.0)
    min_tpir: float = opt(0.85, "an import whose budget threshold expects to find fewer listed people than this "
                          "(0..1) is flagged loudly (CLI, audit, viewer, LED), naming the list size that would hold",
                          min=0.0, max=1.0)


# -- watchlist bundles (firmware/watchlist) ----------------------------------------------------------------
@dataclass(frozen=True)
class WatchlistConfig:
    trusted_keys_dir: str = opt("/etc/lfr/trusted-signers",
                                "folder of Ed25519 public keys (*.pub) whose watchlist bundles are accepted")
    extra_categories: list[str] = opt([], "watchlist categories accepted besides warrant, wanted, "
                                          "court-order conditions and missing/vulnerable")
    max_bundle_mib: int = opt(256, "largest bundle file read, in MiB", min=1, max=4096)
    max_image_mib: int = opt(20, "largest single image (or manifest) inside a bundle, in MiB", min=1, max=256)
    max_entries: int = opt(5000, "most entries one bundle may hold", min=1, max=100000)
    max_image_megapixels: float = opt(40.0, "most pixels an image header may declare, in millions; larger "
                                            "images are refused before decoding (decompression bombs)",
                                      min=0.1, max=80.0)
    max_validity_hours: float = opt(72.0, "longest valid-from..valid-until window of a bundle, in hours",
                                    min=1.0, max=744.0)
    require_deployment_ref_match: bool = opt(True, "refuse to import a bundle whose deployment reference "
                                                   "differs from the open deployment's authority reference")


@dataclass(frozen=True)
class StorageConfig:
    db_file: str = opt("lfr.sqlite3", "database file name inside paths.state_dir (alerts, audit, watchlist)")
    retention_days: int = opt(30, "days after capture when alert images and probe crops are purged; policy "
                              "allows shortening it, never lengthening it past 30", min=1, max=30)
    busy_timeout_ms: int = opt(5000, "milliseconds a write waits for another process's lock before failing",
                               min=100, max=60000)

    def __post_init__(self) -> None:
        check_file_name("storage.db_file", self.db_file, "paths.state_dir")


@dataclass(frozen=True)
class CameraConfig:
    """One camera, i.e. one vision process; `source` picks the adapter from `firmware.capture.registry`."""

    name: str = opt("cam0", "camera name used in alerts, stats and logs; unique per appliance")
    source: str = opt("picamera2", "frame source adapter", choices=("picamera2", "opencv", "replay"))
    uri: str = opt("", "opencv: RTSP URL or video file; empty means use `device`")
    device: int = opt(0, "opencv: USB device index; picamera2: camera number", min=0, max=16)
    path: str = opt("", "replay: a folder of images or a video file")
    fps: float = opt(15.0, "frames per second asked of the camera; replay: 0 means as fast as possible",
                     min=0.0, max=120.0)
    loop: bool = opt(False, "opencv file and replay: start again at the end instead of stopping")
    main_width: int = opt(1920, "picamera2 main stream width in pixels (crops come from it)", min=64,
                          max=4608)
    main_height: int = opt(1080, "picamera2 main stream height in pixels", min=64, max=3496)
    lores_width: int = opt(640, "picamera2 lores (YUV420) stream width in pixels, for detection", min=64,
                           max=1920)
    lores_height: int = opt(360, "picamera2 lores stream height in pixels", min=64, max=1080)
    read_timeout_s: float = opt(2.0, "a capture taking longer than this, in seconds, counts as a camera hang "
                                     "(picamera2's 'frontend has timed out') and restarts the camera",
                                min=0.1, max=60.0)
    reconnect_max_s: float = opt(30.0, "longest wait between reconnection attempts, in seconds (exponential "
                                       "backoff from 0.5 s)", min=0.1, max=600.0)

    def __post_init__(self) -> None:
        if self.source == "replay" and not self.path:
            raise ConfigError(f"camera {self.name!r}: source 'replay' needs `path` (image folder or video)")
        if self.source == "picamera2" and (self.lores_width > self.main_width
                                           or self.lores_height > self.main_height):
            raise ConfigError(f"camera {self.name!r}: the lores stream must not be larger than the main one")
        if self.source == "picamera2" and (self.lores_width % 2 or self.lores_height % 2):
            raise ConfigError(f"camera {self.name!r}: YUV420 lores width and height must be even")


# -- live pipeline (firmware/pipeline, firmware/decide) ----------------------------------------------------
@dataclass(frozen=True)
class PipelineConfig:
    """The per-camera loop, the decision rule (docs/pipeline.md) and the camera-to-hub channel."""

    tiles_cols: int = opt(1, "detection tiles across a full-resolution frame without lores (1 = whole frame)",
                          min=1, max=4)
    tiles_rows: int = opt(1, "detection tiles down a full-resolution frame without lores", min=1, max=4)
    tile_min_width: int = opt(1280, "frames at least this wide, in pixels, are tiled; smaller ones are not",
                              min=64, max=8192)
    max_shots: int = opt(3, "best faces kept and fused per track", min=1, max=10)
    min_shots: int = opt(2, "faces a track needs before an ordinary alert", min=1, max=10)
    single_shot_score: float = opt(0.9, "0..1 score at which one face alone may alert (far above the "
                                        "threshold)", min=0.5, max=1.0)
    shot_gap_frames: int = opt(2, "frames between the first faces embedded for a track", min=1, max=100)
    relook_frames: int = opt(3, "once a track holds min_shots faces, frames between looks at its face for a "
                                "better shot (1 = every frame; each look runs the face mesh)", min=1, max=30)
    cooldown_s: float = opt(60.0, "seconds before the same watchlist subject may alert again", min=0.0,
                            max=3600.0)
    probe_margin: float = opt(0.4, "margin around the face box in the alert's probe crop, in face widths",
                              min=0.0, max=2.0)
    preview_fps: float = opt(2.0, "preview frames per second sent to the hub (0 = none)", min=0.0, max=30.0)
    preview_width: int = opt(640, "preview frame width in pixels (downscaled)", min=64, max=1920)
    pixel_blocks: int = opt(6, "blocks across a pixelated face in the preview", min=2, max=16)
    preview_min_score: float = opt(0.3, "detector score from which a face is pixelated in the preview, "
                                        "even if too unsure to track (0..1, at most detect.min_score)",
                                   min=0.05, max=0.99)
    stats_flush_s: float = opt(10.0, "seconds between flushes of counters to the stats table", min=0.5,
                               max=600.0)
    watchlist_poll_s: float = opt(1.0, "seconds between checks for a new active watchlist", min=0.1,
                                  max=60.0)
    hub_socket: str = opt("/run/lfr/hub.sock", "Unix socket the camera processes send to the hub on")

    def __post_init__(self) -> None:
        if self.min_shots > self.max_shots:
            raise ConfigError(f"pipeline.min_shots ({self.min_shots}) is above pipeline.max_shots "
                              f"({self.max_shots})")


@dataclass(frozen=True)
class LinkConfig:
    bind_address: str = opt("0.0.0.0", "appliance: address the CURVE-encrypted link listens on (van LAN)")
    appliance_host: str = opt("127.0.0.1", "viewer: host name or address of the appliance to connect to")
    alerts_port: int = opt(5560, "TCP port of the alerts channel (alerts, acks, decisions, heartbeats)",
                           min=1024, max=65535)
    preview_port: int = opt(5561, "TCP port of the conflated live-preview stream (newest frame only)",
                            min=1024, max=65535)
    heartbeat_interval: float = opt(0.5, "seconds between heartbeats, sent both ways", min=0.1, max=1.0)
    link_timeout: float = opt(2.5, "seconds without a message after which the link shows down (policy: < 3)",
                              min=0.5, max=3.0)
    resend_interval: float = opt(2.0, "seconds before an unacknowledged alert or decision is sent again",
                                 min=0.2, max=60.0)
    window: int = opt(64, "unacknowledged alerts in flight at once, lowest seq first", min=1, max=1024)
    health_interval: float = opt(2.0, "seconds between health messages to the viewer", min=0.5, max=60.0)
    secret_key: str = opt("/etc/lfr/link/link.key_secret", "this machine's CURVE secret key file (mode 0600)")
    public_key: str = opt("/etc/lfr/link/link.key", "this machine's CURVE public key file (for the peer)")
    allowed_keys: str = opt("/etc/lfr/link/allowed_laptops", "appliance: paired laptop keys, one a line")
    appliance_public_key: str = opt("/etc/lfr/link/appliance.key", "viewer: the appliance's public key file")
# -- hardware: GPIO status lights, stop button, sign relay --
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
    import_refused_s: float = opt(180.0, "seconds the status LED shows 'watchlist refused' after a refused "
                                  "import (0: not shown)", min=0.0, max=3600.0)
    import_accepted_s: float = opt(10.0, "seconds the status LED shows 'watchlist accepted' after an "
                                   "accepted import (0: not shown)", min=0.0, max=600.0)

    def __post_init__(self) -> None:
        used: dict[int, str] = {}
        for name in _PIN_FIELDS:
            pin = getattr(self, name)
            if pin is None:
                continue
            if pin in used:
                raise ConfigError(f"gpio.{name}: pin {pin} is already used by gpio.{used[pin]}")
            used[pin] = name


# -- operator viewer (firmware/viewer) ---------------------------------------------------------------------
@dataclass(frozen=True)
class ViewerConfig:
    host: str = opt("127.0.0.1", "address the viewer's web page is served on (keep it local: 127.0.0.1)")
    port: int = opt(8080, "TCP port of the viewer's web page", min=1024, max=65535)
    state_dir: str = opt("~/.local/state/lfr-viewer", "laptop folder holding the viewer's alert history "
                                                      "(sqlite); ~ is the user's home")
    db_file: str = opt("viewer.sqlite3", "viewer database file name inside viewer.state_dir")
    retention_days: int = opt(30, "days after capture when the laptop drops alert images (policy: at most 30)",
                              min=1, max=30)
    sound: bool = opt(True, "beep in the browser when a new alert arrives")
    allow_remote: bool = opt(False, "serve the viewer's page on a viewer.host that is not loopback (the page "
                                    "then answers the van LAN: anyone there can see alerts); off by default")

    def __post_init__(self) -> None:
        check_file_name("viewer.db_file", self.db_file, "viewer.state_dir")
        if not self.allow_remote and not is_loopback(self.host):
            raise ConfigError(f"viewer.host: {self.host!r} is not a loopback address; the operator's page "
                              "shows alerts and takes decisions, so serving it to the network needs "
                              "viewer.allow_remote = true")


# -- appliance wiring: link, health, stop flag, disk limit --
@dataclass(frozen=True)
class ApplianceConfig:
    """The hub's services around the pipeline (firmware/pipeline/services.py, docs/appliance.md)."""

    link: bool = opt(True, "serve the CURVE link to the operator laptop (keys from [link]); false: alerts wait "
                           "in the outbox")
    health_log_s: float = opt(60.0, "seconds between health lines in the journal", min=5.0, max=3600.0)
    camera_silent_s: float = opt(15.0, "seconds without a report from a camera before it counts as a fault "
                                       "(LED shows it)", min=2.0, max=600.0)
    min_free_mb: float = opt(500.0, "below this free space on the state directory, in MB, new alerts keep "
                                    "no probe crop in the alerts table (the operator still gets it)",
                             min=0.0, max=1_000_000.0)
    stop_flag: str = opt("/run/lfr/capture-stopped", "file whose presence stops capture in every camera "
                                                     "process (the stop button creates it)")


# -- officers' handhelds (firmware/viewer/handheld) ------------------------------------------------------
@dataclass(frozen=True)
class HandheldConfig:
    enabled: bool = opt(False, "serve the officers' handheld page on the van LAN (HTTPS) beside the viewer")
    host: str = opt("0.0.0.0", "address the handheld listener binds to (the laptop's van LAN side)")
    port: int = opt(8443, "TCP port of the handheld page (HTTPS, self-signed certificate)", min=1024, max=65535)
    address: str = opt("", "address phones use to reach the laptop (IP or name, in the certificate and the "
                           "pairing QR code); empty: this laptop's LAN address")
    ttl_minutes: int = opt(30, "minutes an alert stays on a handheld unless closed sooner", min=1, max=240)
    pairing_minutes: int = opt(10, "minutes a pairing QR code stays valid (used once)", min=1, max=60)


@dataclass(frozen=True)
class AppConfig:
    paths: PathsConfig = field(default_factory=PathsConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    watchlist: WatchlistConfig = field(default_factory=WatchlistConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    viewer: ViewerConfig = field(default_factory=ViewerConfig)
    handheld: HandheldConfig = field(default_factory=HandheldConfig)
    cameras: tuple[CameraConfig, ...] = opt((CameraConfig(),), "cameras ([[cameras]]), one process each")

    def __post_init__(self) -> None:
        names = [c.name for c in self.cameras]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"cameras: the name {duplicates[0]!r} is used twice; names must be unique")
    gpio: GpioConfig = field(default_factory=GpioConfig)
    appliance: ApplianceConfig = field(default_factory=ApplianceConfig)


def config_errors(data: dict[str, Any], cls: type = AppConfig, prefix: str = "") -> list[str]:
    """Every problem of a parsed TOML document, not only the first (`lfr config check`): unknown keys with
    the nearest known key (a typo), wrong types and out-of-range values, each named by its path; then the
    checks across keys."""
    errors: list[str] = []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            where = f"[{prefix}]" if prefix else "top level"
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"known keys: {', '.join(sorted(fields))}"
            errors.append(f"unknown key {path} in {where}; {hint}")
        elif dataclasses.is_dataclass(records.hints(cls)[key]) and isinstance(value, dict):
            errors += config_errors(value, records.hints(cls)[key], path)
        else:
            try:
                records.check(path, value, records.hints(cls)[key], fields[key].metadata)
            except (records.RecordError, ConfigError) as exc:
                errors.append(str(exc))
    if not errors and cls is AppConfig:
        try:
            parse_config(data)
        except ConfigError as exc:
            errors.append(str(exc))
    return errors


def parse_config(data: dict[str, Any]) -> AppConfig:
    """Validate an already-parsed TOML document; raises ConfigError naming the offending key's path."""
    try:
        return records.build(AppConfig, data)
    except records.RecordError as exc:
        raise ConfigError(str(exc)) from exc


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML table in the file at `path`, or a ConfigError that names the file and what is wrong with it."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason}); save it "
                          "as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def load_config(path: Path | str | None) -> AppConfig:
    """Read and validate the TOML file at `path`; `None` gives the built-in defaults."""
    if path is None:
        return AppConfig()
    path = Path(path)
    data = read_config_file(path)
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def describe(cls: type = AppConfig, prefix: str = "") -> list[tuple[str, str, Any]]:
    """Every config key as (dotted path, doc, default), for the docs test and `docs/configuration.md`."""
    return records.describe(cls, prefix)
