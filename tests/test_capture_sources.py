"""One contract for every frame source (replay, OpenCV, picamera2 on the fake), then each one's recovery."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware.capture.fake_picamera2 import FakePicamera2
from firmware.capture.opencv_source import OpenCVSource
from firmware.capture.picamera2_source import Picamera2Source
from firmware.capture.registry import make_source
from firmware.capture.replay import ReplaySource
from firmware.capture.source import Backoff, CaptureThread, FrameSource
from firmware.config import CameraConfig
from firmware.errors import CameraError, DataError
from tests.conftest import require_data

HAMILTON = "video/short_hamilton_clip.mp4"
MOT17 = "video/MOT17-13-SDP-raw.h265"


def fake_camera(path: Path) -> Callable[[int], FakePicamera2]:
    return FakePicamera2.factory(path, fps=200)


def make_replay_folder() -> FrameSource:
    return ReplaySource(require_data("lfw/images/Tony_Blair"), camera="c", fps=0)


def make_replay_video() -> FrameSource:
    return ReplaySource(require_data(HAMILTON), camera="c", fps=0)


def make_opencv_file() -> FrameSource:
    return OpenCVSource(str(require_data(HAMILTON)), camera="c")


def make_picamera2_fake() -> FrameSource:
    return Picamera2Source("c", main_size=(1280, 720), lores_size=(426, 240), fps=200,
                           camera_factory=fake_camera(require_data(HAMILTON)))


def make_picamera2_real() -> FrameSource:
    pytest.importorskip("picamera2")
    return Picamera2Source("c", main_size=(1920, 1080), lores_size=(640, 360), fps=15)


def make_opencv_usb() -> FrameSource:
    if not Path("/dev/video0").exists():
        pytest.skip("no USB camera at /dev/video0")
    return OpenCVSource(0, camera="c", max_failures=3)


ADAPTERS = [
    pytest.param(make_replay_folder, id="replay-folder"),
    pytest.param(make_replay_video, id="replay-video"),
    pytest.param(make_opencv_file, id="opencv-file"),
    pytest.param(make_picamera2_fake, id="picamera2-fake"),
    pytest.param(make_picamera2_real, id="picamera2-real", marks=pytest.mark.hardware),
    pytest.param(make_opencv_usb, id="opencv-usb", marks=pytest.mark.hardware),
]


def read_n(source: FrameSource, n: int, deadline_s: float = 10.0) -> list:
    frames = []
    deadline = time.monotonic() + deadline_s
    while len(frames) < n and time.monotonic() < deadline:
        got = source.read(0.5)
        if got is not None:
            frames.append(got)
        elif source.exhausted:
            break
    return frames


@pytest.mark.parametrize("make", ADAPTERS)
def test_contract_numbered_bgr_frames_in_time_order(make: Callable[[], FrameSource]) -> None:
    source = make()
    assert isinstance(source, FrameSource)
    source.open()
    try:
        frames = read_n(source, 10)
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(10))
    assert all(f.camera == "c" for f in frames)
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.ndim == 3 and f.image.shape[2] == 3
        assert f.image.std() > 5  # real picture content, not a blank buffer
        if f.lores is not None:
            assert f.lores.dtype == np.uint8 and f.lores.shape[2] == 3
            assert f.lores.shape[0] <= f.image.shape[0] and f.lores.shape[1] <= f.image.shape[1]
    times = [f.t_mono for f in frames]
    assert times == sorted(times)
    assert source.stats.frames == 10


@pytest.mark.parametrize("make", ADAPTERS)
def test_contract_close_is_safe_twice_and_stops_reading(make: Callable[[], FrameSource]) -> None:
    source = make()
    source.open()
    assert read_n(source, 1)
    source.close()
    source.close()
    assert source.read(0.05) is None


@pytest.mark.parametrize("make", ADAPTERS)
def test_contract_runs_under_the_capture_thread(make: Callable[[], FrameSource]) -> None:
    capture = CaptureThread(make(), poll=0.1).start()
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 5 and time.monotonic() < deadline:
        frame = capture.slot.wait_for_frame(0.5)
        if frame is not None:
            got.append(frame.index)
    capture.stop(timeout=5)
    assert len(got) == 5 and got == sorted(got)
    assert not capture.is_alive and capture.slot.is_closed and capture.error is None


# --- replay ---------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name, count, size", [(HAMILTON, 275, (360, 640)), (MOT17, 750, (540, 960))])
def test_replay_plays_the_real_videos_to_the_end(name: str, count: int, size: tuple[int, int]) -> None:
    source = ReplaySource(require_data(name), fps=0)
    t0 = time.monotonic()
    with source:
        frames = 0
        while (frame := source.read(1.0)) is not None:
            assert frame.image.shape[:2] == size
            frames += 1
    fps = frames / (time.monotonic() - t0)
    assert frames == count and source.exhausted
    assert fps > 50, f"unpaced replay decoded only {fps:.0f} frames/s"


def test_replay_paces_frames_at_the_set_rate() -> None:
    with ReplaySource(require_data(HAMILTON), fps=50) as source:
        frames = read_n(source, 26)
    span = frames[-1].t_mono - frames[0].t_mono
    assert span == pytest.approx(25 / 50, abs=0.1)
    gaps = np.diff([f.t_mono for f in frames])
    assert np.median(gaps) == pytest.approx(1 / 50, abs=0.004)  # each frame waits for its slot: no bursts


def test_replay_slow_consumer_gets_the_newest_frames_and_drops_are_counted() -> None:
    capture = CaptureThread(ReplaySource(require_data(HAMILTON), fps=200), poll=0.1).start()
    seen = []
    while (frame := capture.slot.wait_for_frame(2.0)) is not None:
        seen.append(frame.index)
        time.sleep(0.025)  # 40 frames/s pipeline on a 200 frames/s camera
    capture.stop()
    slot = capture.slot
    assert slot.delivered + slot.dropped == 275 and slot.delivered == len(seen)
    assert 0.6 < slot.dropped / 275 < 0.95
    assert seen[-1] == 274


def test_replay_folder_loops_when_asked(tmp_path: Path) -> None:
    people = sorted(require_data("lfw/images/Tony_Blair").iterdir())[:3]
    for p in people:
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "notes.txt").write_text("not an image")
    with ReplaySource(tmp_path, fps=0, loop=True) as source:
        frames = read_n(source, 7)
        assert not source.exhausted
    assert [f.index for f in frames] == list(range(7))
    assert np.array_equal(frames[0].image, frames[3].image)
    assert not np.array_equal(frames[0].image, frames[1].image)
    with ReplaySource(tmp_path, fps=0) as once:
        assert len(read_n(once, 7, deadline_s=1.0)) == 3 and once.exhausted


def test_replay_refuses_missing_or_empty_paths(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        ReplaySource(tmp_path / "nope").open()
    with pytest.raises(DataError, match="holds no images"):
        ReplaySource(tmp_path).open()


# --- OpenCV: reconnect with backoff ---------------------------------------------------------------

class FlakyStream:
    """A VideoCapture stand-in: opened or not, delivering `frames` real video frames then dropping."""

    def __init__(self, video: Path, opened: bool, frames: int) -> None:
        self._cap = cv2.VideoCapture(str(video)) if opened else None
        self._left = frames

    def isOpened(self) -> bool:  # noqa: N802
        return self._cap is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self._cap is None or self._left <= 0:
            return False, None
        self._left -= 1
        return self._cap.read()

    def release(self) -> None:
        if self._cap is not None:
            self._cap.release()


def test_opencv_stream_reconnects_with_exponential_backoff(caplog: pytest.LogCaptureFixture) -> None:
    video = require_data(HAMILTON)
    plan = [(False, 0), (False, 0), (True, 5), (False, 0), (True, 100)]
    attempts: list[float] = []

    def factory(target: str | int) -> FlakyStream:
        attempts.append(time.monotonic())
        opened, frames = plan.pop(0) if plan else (True, 100)
        return FlakyStream(video, opened, frames)

    source = OpenCVSource("rtsp://officer:s3cret@10.0.0.5/stream", camera="door", backoff=Backoff(0.05, 1.0),
                          capture_factory=factory)
    with caplog.at_level(logging.WARNING), source:
        frames = read_n(source, 10)
    assert len(frames) == 10 and [f.index for f in frames] == list(range(10))
    assert source.stats.failures == 4 and source.stats.reconnects == 1
    gaps = np.diff(attempts)
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095  # 0.05 s, then 0.1 s: the wait doubles
    assert gaps[3] >= 0.045  # after frames flowed again the backoff started over
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "camera door" in messages and "stopped delivering frames" in messages
    assert "s3cret" not in messages and "//***@10.0.0.5" in messages


def test_opencv_gives_up_after_max_failures_without_crashing_the_thread() -> None:
    source = OpenCVSource("rtsp://10.0.0.9/none", camera="gate", backoff=Backoff(0.01, 0.02), max_failures=2,
                          capture_factory=lambda t: FlakyStream(Path("."), False, 0))
    capture = CaptureThread(source, poll=0.1).start()
    assert capture.slot.wait_for_frame(5.0) is None
    capture.stop()
    assert isinstance(capture.error, CameraError)
    assert "gate" in str(capture.error) and "giving up after 3 failed attempts" in str(capture.error)


def test_opencv_file_loops_only_when_asked() -> None:
    video = str(require_data(HAMILTON))
    with OpenCVSource(video, loop=True) as looping:
        frames = read_n(looping, 300)
    assert len(frames) == 300 and not looping.exhausted
    assert np.array_equal(frames[0].image, frames[275].image)
    with OpenCVSource(video) as once:
        assert len(read_n(once, 300, deadline_s=20)) == 275 and once.exhausted


def test_opencv_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        OpenCVSource(str(tmp_path / "missing.mp4")).open()
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(DataError, match="cannot be read by OpenCV"):
        OpenCVSource(str(garbage)).open()


# --- picamera2: restart on a hung front end -------------------------------------------------------

def test_picamera2_restarts_the_camera_when_the_frontend_times_out() -> None:
    video = require_data(HAMILTON)
    made: list[FakePicamera2] = []

    def factory(num: int) -> FakePicamera2:
        made.append(FakePicamera2(num, frames=video, fps=200, stall_after=5 if not made else None))
        return made[-1]

    source = Picamera2Source("door", main_size=(640, 360), lores_size=(320, 180), fps=200, read_timeout=0.2,
                             backoff=Backoff(0.05, 1.0), camera_factory=factory)
    t0 = time.monotonic()
    with source:
        frames = read_n(source, 12)
    assert len(frames) == 12 and time.monotonic() - t0 < 3
    assert len(made) == 2 and made[0].closed and made[1].closed
    assert source.stats.failures == 1 and source.stats.reconnects == 1


def test_picamera2_recovers_from_failed_opens_and_raising_captures() -> None:
    video = require_data(HAMILTON)
    plan: list[object] = [RuntimeError("Failed to acquire camera: Device or resource busy"), "fail", "ok"]

    def factory(num: int) -> FakePicamera2:
        step = plan.pop(0) if plan else "ok"
        if isinstance(step, Exception):
            raise step
        return FakePicamera2(num, frames=video, fps=200, fail_after=3 if step == "fail" else None)

    source = Picamera2Source("c", main_size=(640, 360), lores_size=(320, 180), backoff=Backoff(0.02, 0.1),
                             camera_factory=factory)
    with source:
        frames = read_n(source, 8)
    assert len(frames) == 8 and source.stats.failures == 2 and source.stats.reconnects == 1


def test_picamera2_without_the_library_says_how_to_install_it() -> None:
    try:
        import picamera2  # noqa: F401
        pytest.skip("picamera2 is installed here")
    except ImportError:
        pass
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        Picamera2Source("c").open()


def test_lores_detections_map_onto_the_main_frame() -> None:
    """A box found on the lores stream, scaled by `lores_scale`, frames the same face in the main image."""
    from firmware.capture.frame import lores_scale
    from firmware.detect.detection import Detection

    image = cv2.imread(str(require_data("faces/face_recognition/examples/obama-480p.jpg")))
    image = cv2.resize(image, (1280, 720))
    source = Picamera2Source("c", main_size=(1280, 720), lores_size=(426, 240), fps=200,
                             camera_factory=lambda n: FakePicamera2(n, frames=[image], fps=200))
    with source:
        frame = read_n(source, 1)[0]
    assert frame.lores is not None and frame.lores.shape == (240, 426, 3)
    sx, sy = lores_scale(frame)
    assert (sx, sy) == pytest.approx((1280 / 426, 3.0))
    lores_box = (150.0, 40.0, 250.0, 160.0)
    main_box = Detection(lores_box, 0.9, np.zeros((6, 2), np.float32)).scaled(sx, sy).box
    x1, y1, x2, y2 = (int(round(v)) for v in main_box)
    crop_main = cv2.resize(frame.image[y1:y2, x1:x2], (100, 120), interpolation=cv2.INTER_AREA).astype(float)
    crop_lores = frame.lores[40:160, 150:250].astype(float)
    assert np.abs(crop_main - crop_lores).mean() < 6
    shifted = frame.lores[40:160, 170:270].astype(float)
    assert np.abs(crop_main - shifted).mean() > 2 * np.abs(crop_main - crop_lores).mean()


# --- config → adapter -----------------------------------------------------------------------------

def test_config_chooses_the_adapter_by_name() -> None:
    video = str(require_data(HAMILTON))
    replay = make_source(CameraConfig(name="a", source="replay", path=video, fps=0))
    opencv = make_source(CameraConfig(name="b", source="opencv", uri=video))
    pi = make_source(CameraConfig(name="c", source="picamera2", main_width=640, main_height=360,
                                  lores_width=320, lores_height=180),
                     picamera2_factory=fake_camera(Path(video)))
    assert (type(replay), type(opencv), type(pi)) == (ReplaySource, OpenCVSource, Picamera2Source)
    with pi:
        frame = read_n(pi, 1)[0]
    assert frame.camera == "c" and frame.image.shape == (360, 640, 3) and frame.lores.shape == (180, 320, 3)
