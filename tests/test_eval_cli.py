"""`lfr eval` and `lfr models verify` as a user runs them, on small subsets of the real LFW data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.cli.main import main
from firmware.eval.lfw import read_pairs

pytestmark = pytest.mark.slow  # runs for more than a few seconds: `make test`, not `make test-fast`


def subset_pairs(lfw: Path, out: Path, per_fold: int = 25, folds: int = 2) -> Path:
    """The first `per_fold` same and different pairs of the first `folds` folds, in View 2 format."""
    lines = (lfw / "pairs.txt").read_text().splitlines()
    _, n = (int(x) for x in lines[0].split())
    body = []
    for f in range(folds):
        start = 1 + f * 2 * n
        body += lines[start:start + per_fold] + lines[start + n:start + n + per_fold]
    out.write_text("\n".join([f"{folds} {per_fold}", *body]) + "\n")
    return out


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip().startswith("{") else {}


def test_eval_verify_on_a_subset(tmp_path: Path, lfw_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pairs = subset_pairs(lfw_dir, tmp_path / "pairs.txt")
    plot = tmp_path / "roc.png"
    code, r = run_json(capsys, ["eval", "verify", "--pairs", str(pairs), "--images", str(lfw_dir / "images"),
                                "--json", "--plot", str(plot), "--by", "gender,race",
                                "--labels", str(lfw_dir / "labels"), "--cache", str(tmp_path / "cache")])
    assert code == 0
    for key in ("accuracy", "accuracy_std", "tar_at_far_1e-3", "tar_at_far_1e-4", "pairs", "failed_detections"):
        assert key in r
    assert r["pairs"] == 100 and r["folds"] == 2
    assert r["accuracy"] >= 0.95
    assert plot.stat().st_size > 10_000
    assert "male" in r["groups"]["gender"] and r["groups"]["gender"]["male"]["genuine_pairs"] > 0


def test_eval_identify_on_a_subset(tmp_path: Path, lfw_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    people = sorted(p for p in (lfw_dir / "images").iterdir() if p.is_dir())
    rich = [p for p in people if len(list(p.glob("*.jpg"))) >= 3][:40]
    for p in rich + [p for p in people if p not in rich][:40]:
        (images / p.name).symlink_to(p)
    code, r = run_json(capsys, ["eval", "identify", "--images", str(images), "--json", "--no-cache"])
    assert code == 0
    assert r["gallery"] == 20 and r["mated"] == 20 and r["non_mated"] == 60
    for key in ("tpir", "fpir", "tpir_at_fpir_1e-2", "tpir_at_fpir_1e-3"):
        assert 0.0 <= r[key] <= 1.0
    assert r["tpir"] >= 0.8 and r["fpir"] <= 0.05


def test_bad_inputs_give_clear_errors(tmp_path: Path, lfw_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "pairs.txt"
    bad.write_text("2 1\nAaron_Peirsol 1\n")
    assert main(["eval", "verify", "--pairs", str(bad), "--images", str(lfw_dir / "images")]) == 2
    assert "promises 2×2 pairs" in capsys.readouterr().err
    bad.write_text("1 1\nNobody 1 2\nNobody 1 Someone 1\n")
    assert main(["eval", "verify", "--pairs", str(bad), "--images", str(lfw_dir / "images")]) == 2
    assert "images named in" in capsys.readouterr().err
    assert main(["eval", "identify", "--images", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_pairs_header_is_checked(tmp_path: Path) -> None:
    f = tmp_path / "p.txt"
    f.write_text("2 1\nA 1 2\nA 1 B 1\n")
    from firmware.errors import DataError
    with pytest.raises(DataError, match="promises 2×2 pairs, file has 2 lines"):
        read_pairs(f, tmp_path)


def test_models_verify_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code, r = run_json(capsys, ["models", "verify", "--json"])
    assert code == 0 and r["ok"]
    assert all(f["sha256_ok"] for f in r["files"])
    assert "CPU only" in r["delegate"]
