"""scripts/compare_dlib.py: pair subsetting (always), and a 20-pair run against the peer (needs [compare])."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from firmware.eval.lfw import read_pairs
from tests.conftest import REPO, require_data


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_dlib", REPO / "scripts" / "compare_dlib.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["compare_dlib"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_limit_pairs_keeps_every_fold_and_the_same_different_balance() -> None:
    lfw = require_data("lfw")
    pairs = read_pairs(lfw / "pairs.txt", lfw / "images")
    few = _script().limit_pairs(pairs, 28)
    folds = {p.fold for p in pairs}
    assert {p.fold for p in few} == folds
    for f in folds:
        in_fold = [p for p in few if p.fold == f]
        assert sum(p.same for p in in_fold) == sum(not p.same for p in in_fold) == 2
    assert _script().limit_pairs(pairs, None) is pairs


@pytest.mark.slow
def test_twenty_pairs_against_face_recognition(tmp_path: Path) -> None:
    pytest.importorskip("face_recognition",
                        reason="optional [compare] extra not installed (make compare-deps)")
    data = require_data()
    mod = _script()
    r = mod.compare(data, pairs_limit=20, frames=1, peer_frames=1, peer_upsample=0)
    assert r["pairs"] == 14 and r["folds"] == 7
    for side in ("ours", "peer"):
        s = r[side]
        assert 0.5 <= s["accuracy"] <= 1.0
        assert s["detect_per_image"]["n"] == r["images"]
        assert s["encode_per_face"]["n"] == r["images"]
        assert s["frame_1080p"]["faces"] >= 8, f"{side} found too few of the 10 faces in the scene"
    fps = r["ours"]["frame_1080p"]["fps"], r["peer"]["frame_1080p"]["fps"]
    assert r["ratios"]["fps_speedup"] == pytest.approx(fps[0] / fps[1])
    text = mod.format_report(r)
    assert "face_recognition" in text and "1080p frames per second" in text
    mod.plot_roc(r, tmp_path / "roc.png")
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
