"""Set up one demo from scratch in a folder under the repo: keys, configs, scene, signed bundle, deployment.

Every step is what a command an operator would type does (`lfr keys pair`, `lfr watchlist build`, `lfr
deployment start`, `lfr watchlist import`), done by calling the same functions those commands call (the demo
does not depend on the CLI). Nothing is written outside `state_dir` and the faces cache; a demo folder is
wiped and made anew each run (only a folder this module made: it carries a marker file).
"""

from __future__ import annotations

import csv
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from firmware.capture.scene import Person, build_scene
from firmware.config import AppConfig, load_config
from firmware.demo.faces import PHOTOS, demo_faces
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.hardware.clock import SystemClock
from firmware.link.keys import AllowedKeys, create_keypair, load_public
from firmware.match.score import load_calibration
from firmware.store import deployments
from firmware.store.db import open_config_db
from firmware.watchlist.bundle import build_bundle
from firmware.watchlist.enrol import RecognizerEnroller
from firmware.watchlist.install import install_bundle
from firmware.watchlist.limits import BundleLimits
from firmware.watchlist.manifest import allowed_categories
from firmware.watchlist.signing import init_signing_keys, load_private_key, load_trusted_keys

MARKER = ".lfr-demo"
WATCHLISTED = "Person_A"   # on the watchlist (reference: its first photo, never shown in the scene)
AUTHORITY = "DEMO-0001"
SCENE_SIZE = (640, 360)
ACTOR = "lfr-demo"


@dataclass(frozen=True)
class DemoSetup:
    """Where the demo's pieces are; ports on 127.0.0.1."""

    state_dir: Path
    appliance_config: Path
    viewer_config: Path
    viewer_port: int
    scene_frames: int


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fresh(state_dir: Path) -> None:
    if state_dir.exists():
        if not (state_dir / MARKER).exists():
            raise DataError(f"{state_dir} exists and was not made by lfr demo; choose another --state-dir")
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True, mode=0o700)
    (state_dir / MARKER).write_text("made by lfr demo; deleted and remade by the next run\n")


def background(size: tuple[int, int] = SCENE_SIZE) -> np.ndarray:
    """A face-free street-like background drawn in code: sky-to-pavement gradient and a few shop fronts."""
    w, h = size
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = ((1 - ramp) * np.array([200, 170, 140]) + ramp * np.array([90, 95, 100])).astype(np.uint8)
    img = np.ascontiguousarray(np.broadcast_to(img, (h, w, 3)))
    for i, colour in enumerate([(60, 80, 140), (120, 100, 70), (70, 120, 90), (110, 110, 130)]):
        x = i * w // 4 + 10
        cv2.rectangle(img, (x, h // 8), (x + w // 4 - 20, h // 2), colour, -1)
        cv2.rectangle(img, (x + 15, h // 8 + 15), (x + w // 4 - 35, h // 3), (200, 210, 220), -1)
    return img


def write_scene(faces_root: Path, out: Path, *, passes: int = 3) -> int:
    """Render the replay scene (watchlisted and other people walking past) as JPEG frames; frame count."""
    images = faces_root / "images"
    people = []
    for _ in range(passes):
        for name in PHOTOS:
            photos = sorted((images / name).glob("*.jpg"))
            if name == WATCHLISTED:
                photos = photos[1:]  # the reference photo goes on the watchlist, not into the street
            people.append(Person(name, tuple(photos)))
    scene = build_scene(people, background(), lanes=2, frames_per_walker=14, gap_frames=10,
                        photos_per_walker=2, face_px=(110, 180), lead_in=5)
    out.mkdir(parents=True)
    for i in range(len(scene)):
        cv2.imwrite(str(out / f"{i:05d}.jpg"), scene.frame(i), [cv2.IMWRITE_JPEG_QUALITY, 92])
    return len(scene)


def _configs(state: Path, models_dir: str, viewer_port: int, cooldown_s: float) -> tuple[Path, Path]:
    alerts_port, preview_port = free_port(), free_port()
    keys = state / "keys"
    common = f"""[link]
bind_address = "127.0.0.1"
appliance_host = "127.0.0.1"
alerts_port = {alerts_port}
preview_port = {preview_port}
allowed_keys = "{keys / 'allowed_laptops'}"
appliance_public_key = "{keys / 'appliance.key'}"
"""
    appliance = state / "appliance.toml"
    appliance.write_text(f"""# lfr demo: the appliance (hub + one replay camera), all state in this folder
[paths]
state_dir = "{state / 'appliance'}"
config_dir = "{state}"
[models]
dir = "{models_dir}"
[watchlist]
trusted_keys_dir = "{state / 'trusted-signers'}"
[pipeline]
hub_socket = "{state / 'hub.sock'}"
cooldown_s = {cooldown_s}
stats_flush_s = 2.0
[appliance]
stop_flag = "{state / 'capture-stopped'}"
health_log_s = 30.0
min_free_mb = 50.0
[gpio]
pin_factory = "mock"
{common}secret_key = "{keys / 'appliance.key_secret'}"
public_key = "{keys / 'appliance.key'}"
[[cameras]]
name = "demo-street"
source = "replay"
path = "{state / 'scene'}"
fps = 10.0
loop = true
""")
    viewer = state / "viewer.toml"
    viewer.write_text(f"""# lfr demo: the operator's viewer
[viewer]
host = "127.0.0.1"
port = {viewer_port}
state_dir = "{state / 'viewer'}"
{common}secret_key = "{keys / 'laptop.key_secret'}"
public_key = "{keys / 'laptop.key'}"
""")
    return appliance, viewer


def prepare(state_dir: Path, cache_dir: Path, *, viewer_port: int, cooldown_s: float = 8.0) -> DemoSetup:
    """Make everything the demo runs on, from nothing but the registry package with the faces."""
    _fresh(state_dir)
    models_dir = AppConfig().models.dir
    faces = demo_faces(cache_dir, Recognizer.from_config(AppConfig()))
    frames = write_scene(faces, state_dir / "scene")
    keys = state_dir / "keys"
    keys.mkdir(mode=0o700)
    create_keypair(keys, "appliance")
    create_keypair(keys, "laptop")
    appliance, viewer = _configs(state_dir, models_dir, viewer_port, cooldown_s)
    cfg = load_config(appliance)
    AllowedKeys(cfg.link.allowed_keys).pair(load_public(keys / "laptop.key"), "demo laptop")
    signing = init_signing_keys(state_dir / "signing")
    trusted = state_dir / "trusted-signers"
    trusted.mkdir()
    shutil.copy(signing.public, trusted / signing.public.name)
    bundle = _bundle(state_dir, faces, signing.private, cfg)
    _deploy(cfg, bundle)
    return DemoSetup(state_dir, appliance, viewer, viewer_port, frames)


def _deploy(cfg: AppConfig, bundle: Path) -> None:
    """Start the demo deployment and import its watchlist (`lfr deployment start`, `lfr watchlist import`)."""
    clock = SystemClock()
    db = open_config_db(cfg)
    try:
        deployments.start(db, authority=AUTHORITY, officer="Demo Officer", location="Demo Street (replay scene)",
                          threshold=cfg.match.threshold, clock=clock, actor=ACTOR)
        install_bundle(db, bundle, trusted_keys=load_trusted_keys(cfg.watchlist.trusted_keys_dir), clock=clock,
                       enroller=RecognizerEnroller.from_config(cfg),
                       calibration=load_calibration(Path(cfg.models.dir)), threshold=cfg.match.threshold,
                       actor=ACTOR, limits=BundleLimits.from_config(cfg.watchlist),
                       categories=allowed_categories(cfg.watchlist.extra_categories),
                       require_ref_match=cfg.watchlist.require_deployment_ref_match)
    finally:
        db.close()


def _bundle(state: Path, faces: Path, key: Path, cfg: AppConfig) -> Path:
    refs = state / "watchlist"
    refs.mkdir()
    shutil.copy(faces / "images" / WATCHLISTED / f"{WATCHLISTED}_0001.jpg", refs / "subject-a.jpg")
    entries = refs / "entries.csv"
    with entries.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "category", "reason", "image"])
        w.writerow(["DEMO-A", "Demo Subject A", "wanted", "demo only: a test photo from a PyPI package",
                    "subject-a.jpg"])
    now = int(time.time())  # whole seconds, as `lfr watchlist build` takes them from an ISO 8601 instant
    result = build_bundle(images_dir=refs, entries_csv=entries, deployment_ref=AUTHORITY,
                          valid_from=now - 3600, valid_until=now + 12 * 3600, private_key=load_private_key(key),
                          out=state / "demo-watchlist.lfrw", created_by="lfr demo", clock=SystemClock(),
                          limits=BundleLimits.from_config(cfg.watchlist),
                          categories=allowed_categories(cfg.watchlist.extra_categories))
    return result.path
