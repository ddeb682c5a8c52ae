"""YUV420 lores conversion on a real image, and FakePicamera2 following picamera2's documented shapes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from firmware.capture.fake_picamera2 import FakeJob, FakePicamera2
from firmware.capture.yuv import bgr_to_yuv420, yuv420_to_bgr
from tests.conftest import require_data


def real_image(w: int = 426, h: int = 240) -> np.ndarray:
    image = cv2.imread(str(require_data("faces/face_recognition/examples/obama-480p.jpg")))
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)


def reference_i420(bgr: np.ndarray, stride: int) -> np.ndarray:
    """Full-range BT.601 (JFIF / sYCC) written out from the formulas, independent of OpenCV's conversions."""
    b, g, r = (bgr[:, :, i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 + (b - y) * 0.564
    v = 128 + (r - y) * 0.713
    h, w = y.shape
    sub = [(p.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))) for p in (u, v)]
    out = np.zeros(h * stride * 3 // 2, np.uint8)
    planes = [np.zeros((h, stride)), np.zeros((h // 2, stride // 2)), np.zeros((h // 2, stride // 2))]
    planes[0][:, :w] = y
    planes[1][:, : w // 2] = sub[0]
    planes[2][:, : w // 2] = sub[1]
    out[:] = np.clip(np.round(np.concatenate([p.ravel() for p in planes])), 0, 255)
    return out.reshape(h * 3 // 2, stride)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


@pytest.mark.parametrize("stride", [426, 448])
def test_yuv420_from_picamera2_layout_converts_back_to_the_real_picture(stride: int) -> None:
    image = real_image()
    yuv = reference_i420(image, stride)
    assert yuv.shape == (360, stride) and yuv.dtype == np.uint8
    bgr = yuv420_to_bgr(yuv, 426)
    assert bgr.shape == (240, 426, 3) and bgr.dtype == np.uint8
    assert psnr(bgr, image) > 30
    assert abs(float(bgr.mean()) - float(image.mean())) < 1.5


def test_limited_range_decoding_would_be_visibly_wrong() -> None:
    """Regression guard: OpenCV's I420 decoder assumes limited range and stretches sYCC contrast."""
    image = real_image(426, 240)
    yuv = reference_i420(image, 426)
    naive = cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)
    assert psnr(yuv420_to_bgr(yuv, 426), image) > psnr(naive, image) + 5


def test_encoder_matches_the_reference_layout() -> None:
    image = real_image(426, 240)
    ours, ref = bgr_to_yuv420(image, 448).astype(int), reference_i420(image, 448).astype(int)
    assert np.abs(ours - ref).max() <= 2
    assert np.all(ours[:240, 426:] == 0)  # the stride padding is padding


def test_bad_yuv_arrays_are_refused() -> None:
    with pytest.raises(ValueError, match="not a YUV420 array"):
        yuv420_to_bgr(np.zeros((100, 64), np.uint8), 64)
    with pytest.raises(ValueError, match="even"):
        bgr_to_yuv420(np.zeros((11, 10, 3), np.uint8))


@pytest.fixture
def camera() -> FakePicamera2:
    cam = FakePicamera2(0, frames=[real_image(1280, 720)], fps=500)
    config = cam.create_video_configuration(main={"size": (1280, 720), "format": "RGB888"},
                                            lores={"size": (426, 240), "format": "YUV420"})
    cam.configure(config)
    cam.start()
    yield cam
    cam.close()


def test_fake_configuration_has_picamera2_shape() -> None:
    cam = FakePicamera2(0, frames=[real_image()])
    config = cam.create_video_configuration(main={"size": (1280, 720), "format": "RGB888"},
                                            lores={"size": (426, 240)})
    assert {"use_case", "transform", "colour_space", "buffer_count", "queue", "main", "lores", "raw",
            "controls", "display", "encode"} <= set(config)
    assert config["use_case"] == "video" and config["lores"]["format"] == "YUV420"
    with pytest.raises(RuntimeError, match="not been configured"):
        cam.start()
    with pytest.raises(RuntimeError, match="may not exceed"):
        cam.configure(cam.create_video_configuration(main={"size": (320, 240)}, lores={"size": (640, 480)}))


def test_fake_streams_have_the_documented_shapes_and_dtypes(camera: FakePicamera2) -> None:
    lores_cfg = camera.stream_configuration("lores")
    assert lores_cfg["stride"] == 448 and lores_cfg["framesize"] == 448 * 240 * 3 // 2
    main = camera.capture_array("main")
    assert main.shape == (720, 1280, 3) and main.dtype == np.uint8
    lores = camera.capture_array("lores")
    assert lores.shape == (360, 448) and lores.dtype == np.uint8
    buffer = camera.capture_buffer("lores")
    assert buffer.ndim == 1 and buffer.size == lores_cfg["framesize"]
    assert camera.capture_buffer("main").size == camera.stream_configuration("main")["framesize"]
    (m, lo), metadata = camera.capture_arrays(["main", "lores"])
    assert m.shape == main.shape and lo.shape == lores.shape and "SensorTimestamp" in metadata
    assert psnr(yuv420_to_bgr(lo, 426), cv2.resize(m, (426, 240), interpolation=cv2.INTER_AREA)) > 30
    with pytest.raises(RuntimeError, match="stopped before configuring"):
        camera.configure(camera.camera_configuration())


def test_fake_jobs_time_out_when_the_frontend_stalls() -> None:
    cam = FakePicamera2(0, frames=[real_image()], fps=500, stall_after=2)
    cam.configure(cam.create_video_configuration(main={"size": (640, 360), "format": "RGB888"}))
    cam.start()
    cam.capture_array("main")
    cam.capture_array("main")
    job = cam.capture_array("main", wait=False)
    assert isinstance(job, FakeJob)
    with pytest.raises(TimeoutError):
        cam.wait(job, timeout=0.05)
    cam.close()
    cam.close()
    assert cam.closed and not cam.started
