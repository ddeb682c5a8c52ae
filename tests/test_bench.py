"""`lfr bench`: timing summaries, the RSS sampler, the 1:N layouts' agreement with exact search, the scene."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from firmware.bench.match import Float32Layout, IndexLayout, probes, unit_rows
from firmware.bench.memory import MIB, RssSampler, peak_rss_bytes
from firmware.bench.timing import Samples
from firmware.capture.compose import PanningStill, compose, read_background
from firmware.cli.main import main
from firmware.errors import DataError
from tests.conftest import require_data


def test_samples_summary_in_milliseconds() -> None:
    s = Samples("x", [0.001] * 98 + [0.050, 0.100])
    m = s.summary()
    assert m["n"] == 100
    assert m["p50_ms"] == pytest.approx(1.0)
    assert 1.0 < m["p99_ms"] <= 100.0
    assert m["mean_ms"] == pytest.approx((98 * 1 + 50 + 100) / 100)


def test_rss_sampler_sees_a_temporary_allocation() -> None:
    with RssSampler(interval_s=0.001) as rss:
        block = np.ones(64 * MIB, np.uint8)
        block[::4096] = 2
        # hold the block until the sampler thread has had a turn (on a loaded machine it may wait for a core)
        deadline = time.monotonic() + 10
        while rss.growth_bytes < 48 * MIB and time.monotonic() < deadline:
            time.sleep(0.002)
        del block
    assert rss.growth_bytes >= 48 * MIB
    assert peak_rss_bytes() >= rss.peak_bytes * 0.9


def test_index_and_batches_find_the_exact_top3_of_float32() -> None:
    rng = np.random.default_rng(1)
    matrix = unit_rows(20_000, rng)
    mated, random = probes(matrix, 30, rng)
    exact, index = Float32Layout(matrix), IndexLayout(matrix)
    both = np.concatenate([mated, random])
    truth = [list(exact.search(p)) for p in both]
    assert [list(index.search(p)) for p in both] == truth
    assert [list(b) for b in index.search_batch(both)] == truth
    assert [list(b) for b in exact.search_batch(both)] == truth
    assert index.nbytes == matrix.nbytes // 4


def test_scene_pastes_faces_without_overlap_and_refuses_too_many() -> None:
    data = require_data()
    faces = sorted((data / "lfw" / "images").glob("A*/*_0001.jpg"))[:6]
    bg = read_background(data / "video" / "MOT17-13-SDP-raw.h265")
    assert bg.shape == (1080, 1920, 3)
    scene = compose(bg, faces)
    for i, a in enumerate(scene.boxes):
        for b in scene.boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    assert not np.array_equal(scene.frame, bg)
    with pytest.raises(DataError, match="do not fit"):
        compose(bg, faces * 20, face_px=400)


def test_bench_match_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "match", "--sizes", "2000", "--probes", "10", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    res = r["sizes"]["2000"]
    assert set(res) == {"float32", "float32_batch", "int8_simd", "int8_simd_batch"}
    assert res["int8_simd"]["mib"] == pytest.approx(res["float32"]["mib"] / 4)
    assert res["int8_simd"]["top1_recall"] == res["int8_simd_batch"]["top1_recall"] == 1.0
    assert r["kernels"]


def test_bench_match_refuses_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "match", "--sizes", "10k,ten"]) == 2
    assert "--sizes" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_stages_json_on_real_images(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = require_data()
    assert main(["bench", "stages", "--data", str(data), "--images", "4", "--frames", "1", "--faces", "4",
                 "--watchlist", "500", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    for p in ("int8", "float"):
        st = r["stages"][p]
        for k in ("lfw.decode", "lfw.detect", "lfw.align", "lfw.quality", "lfw.embed", "lfw.match",
                  "1080p.detect_tiled", "1080p.track", "1080p.face_embed"):
            assert st[k]["n"] >= 1 and st[k]["p50_ms"] > 0, (p, k)
        assert r["faces_found"][p] >= 3
    assert r["ratio_int8_over_float_p50"]["lfw.embed"] > 0


def test_panning_still_moves_every_face_with_its_box() -> None:
    """The faces of each view sit where `boxes(i)` says, they move from frame to frame, and with two stills
    held 5 frames each the view switches between them."""
    data = require_data()
    faces = sorted((data / "lfw" / "images").glob("B*/*_0001.jpg"))[:6]
    bg = read_background(data / "video" / "MOT17-13-SDP-raw.h265", (640, 360))
    with pytest.raises(ValueError, match="leave the view"):
        PanningStill([compose(bg, faces, face_px=100, margin_px=0, seed=3)], 40, amplitude_px=100)
    stills = [compose(bg, faces[:3], face_px=100, margin_px=6), compose(bg, faces[3:], face_px=100, margin_px=6,
                                                                         seed=1)]
    pan = PanningStill(stills, 40, hold_frames=5, amplitude_px=6, step_px=2)
    offsets = {pan.offset(i) for i in range(len(pan))}
    assert len(offsets) > 5 and max(abs(dx) for dx, _ in offsets) == 6
    assert [pan.still_index(i) for i in (0, 4, 5, 9, 10)] == [0, 0, 1, 1, 0]
    for i in (0, 3, 7, 13):
        view, still = pan.frame(i), stills[pan.still_index(i)]
        assert view.shape == still.frame.shape
        for (x1, y1, x2, y2), (a1, b1, a2, b2) in zip(pan.boxes(i), still.boxes, strict=True):
            assert np.array_equal(view[y1:y2, x1:x2], still.frame[b1:b2, a1:a2])


@pytest.mark.slow
def test_bench_pipeline_matrix_on_lfw(capsys: pytest.CaptureFixture[str]) -> None:
    """The matrix runs the real pipeline per cell: fps, CPU, faces and the 30 fps drop run add up, and the
    appliance-like child's peak RSS is measured from outside."""
    data = require_data()
    assert main(["bench", "pipeline", "--data", str(data), "--sizes", "1280x720", "--faces", "1,5",
                 "--threads", "1", "--frames", "3", "--warmup", "0", "--rss-frames", "2", "--rss-faces", "2",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    cells = r["matrix"]["cells"]
    assert [(c["size"], c["faces"], c["threads"]) for c in cells] == [("1280x720", 1, 1), ("1280x720", 5, 1)]
    for c in cells:
        t, live = c["throughput"], c["live"]
        assert t["frames"] == 3 and t["fps"] > 0 and t["frames_per_cpu_second"] > 0
        cpu = t["cpu"]
        assert 0 < cpu["cpu_s"] and 0 < cpu["cpu_pct_one_core"] <= 100 * cpu["cores"] * 1.1
        assert cpu["cpu_pct_all_cores"] == pytest.approx(cpu["cpu_pct_one_core"] / cpu["cores"], abs=0.11)
        assert live["frames_delivered"] == 3 and live["frames_idle"] == 0
        assert live["frames_processed"] + live["frames_dropped"] == live["frames_delivered"]
        assert live["drop_rate"] == pytest.approx(live["frames_dropped"] / 3, abs=1e-4)
        assert live["cpu"]["cpu_s"] > 0
    one, five = (c["throughput"] for c in cells)
    assert 1 <= one["faces_seen"] < five["faces_seen"]
    assert one["faces_detected_per_frame"] < five["faces_detected_per_frame"]
    assert five["embeddings"] > one["embeddings"] >= 1
    rss = r["appliance_rss"]
    assert rss["size"] == "1920x1080" and rss["faces"] == 2
    assert rss["peak_rss_mib"] > 50 and rss["child_reported_peak_rss_mib"] > 50
    assert rss["peak_rss_mib"] <= rss["child_reported_peak_rss_mib"] * 1.05


def test_bench_pipeline_refuses_bad_matrix_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for flag, value in (("--sizes", "1280by720"), ("--faces", "0,5"), ("--tiles", "9x1")):
        with pytest.raises(SystemExit) as exit_info:
            main(["bench", "pipeline", flag, value])
        assert exit_info.value.code == 2
        assert flag in capsys.readouterr().err


@pytest.mark.slow
def test_bench_pipeline_churn_brings_new_people(capsys: pytest.CaptureFixture[str]) -> None:
    """With --churn-frames the pipeline meets more people than are in view at once (new tracks, embedded)."""
    data = require_data()
    assert main(["bench", "pipeline", "--data", str(data), "--sizes", "1280x720", "--faces", "2", "--threads", "1",
                 "--frames", "8", "--warmup", "0", "--churn-frames", "4", "--no-live", "--rss-frames", "0",
                 "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["matrix"]["cells"][0]["throughput"]
    assert t["faces_seen"] > 2 and t["embeddings"] > 2
