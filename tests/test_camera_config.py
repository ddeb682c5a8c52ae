"""The [[cameras]] sections: one per camera, checked like every other section, names unique."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.config import CameraConfig, describe, load_config, parse_config
from firmware.errors import ConfigError


def test_cameras_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text('[[cameras]]\nname = "door"\nsource = "opencv"\nuri = "rtsp://10.0.0.5/s"\n\n'
                 '[[cameras]]\nname = "demo"\nsource = "replay"\npath = "/tmp/scene"\nfps = 0\nloop = true\n')
    cams = load_config(p).cameras
    assert [c.name for c in cams] == ["door", "demo"]
    assert cams[1] == CameraConfig(name="demo", source="replay", path="/tmp/scene", fps=0.0, loop=True)


def test_default_is_one_pi_camera() -> None:
    (cam,) = parse_config({}).cameras
    assert cam.source == "picamera2" and (cam.main_width, cam.lores_width) == (1920, 640)


@pytest.mark.parametrize("cameras, fragment", [
    ([{"name": "a", "source": "usb"}], r"cameras\[0\]\.source: 'usb' is not one of"),
    ([{"name": "a", "fps": 500}], r"cameras\[0\]\.fps: 500.0 is above the maximum"),
    ([{"name": "a", "folder": "x"}], r"unknown key cameras\[0\]\.folder"),
    ([{"name": "a", "source": "replay"}], "source 'replay' needs `path`"),
    ([{"name": "a", "lores_width": 1280, "main_width": 1024}], "lores stream must not be larger"),
    ([{"name": "a", "lores_width": 641}], "must be even"),
    ([{"name": "a"}, {"name": "a", "source": "opencv"}], "name 'a' is used twice"),
])
def test_bad_cameras_are_refused(cameras: list, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config({"cameras": cameras})


def test_camera_keys_are_documented() -> None:
    paths = {p for p, doc, _ in describe() if doc}
    assert {"cameras", "cameras[].source", "cameras[].read_timeout_s", "cameras[].lores_width"} <= paths
