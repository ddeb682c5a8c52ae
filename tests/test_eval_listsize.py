"""The list-size protocol of `lfr eval identify --gallery-sizes`: splits, label noise, projection, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from firmware.cli.main import main
from firmware.eval.label_noise import LABEL_NOISE_FILE, REASONS, load_label_noise
from firmware.eval.listsize import GRID, ListSizeEval, person_sets, projected_fpir, tail_fmr

NOISY = ("Choi_Sung-hong", "Sung_Hong_Choi", "Elena_de_Chavez", "Hugo_Chavez", "Wang_Yingfan", "Yingfan_Wang")


def test_person_sets_keep_probe_and_template_apart() -> None:
    """A mated probe must never share an image with its own template, or TPIR would be inflated."""
    people = {"a": list(range(0, 6)), "b": list(range(6, 8)), "c": [8]}
    s = person_sets(people, templates=3, probe_shots=2)
    assert set(s.mated) == {"a"}
    assert not set(s.mated["a"]) & set(s.templates["a"]) and len(s.templates["a"]) == 3
    assert len(s.templates["c"]) == 1
    assert [n for n, _ in s.non_mated] == ["a", "a", "a", "b"]  # disjoint 2-image chunks; c has too few


def test_projection_is_the_independent_search_formula() -> None:
    assert projected_fpir(1e-6, 1000) == pytest.approx(1 - (1 - 1e-6) ** 1000, rel=1e-9)
    assert projected_fpir(0.0, 10_000) == 0.0


def test_tail_fit_takes_over_where_counts_run_out() -> None:
    total = 10_000_000
    counts = np.round(total * 10 ** (2.0 - 12.0 * GRID)).astype(np.int64)
    curve, fit = tail_fmr(counts, total)
    assert fit["slope_per_cosine"] == pytest.approx(-12.0, rel=0.05)
    far = GRID >= 0.85
    assert np.all(curve[far] < 10 / total) and np.all(curve[far] > 0)  # extrapolated, not zero


def test_label_noise_list_is_justified() -> None:
    """Every exclusion names two sides, one of the known reasons and the evidence seen."""
    noise = load_label_noise(LABEL_NOISE_FILE)
    assert len(noise.entries) >= 15
    assert {e.reason for e in noise.entries} <= set(REASONS)
    text = LABEL_NOISE_FILE.read_text()
    assert text.count("evidence = ") == len(noise.entries)
    assert frozenset(("Choi_Sung-hong", "Sung_Hong_Choi")) in noise.linked_people()


def _subset(lfw: Path, out: Path) -> Path:
    out.mkdir()
    people = sorted(p for p in (lfw / "images").iterdir() if p.is_dir())
    rich = [p for p in people if len(list(p.glob("*.jpg"))) >= 4][:25]
    chosen = rich + [p for p in people if p not in rich and p.name not in NOISY][:35]
    chosen += [lfw / "images" / n for n in NOISY]
    for p in dict.fromkeys(chosen):
        (out / p.name).symlink_to(p)
    return out


@pytest.mark.slow
def test_label_noise_is_what_separates_the_two_figures(lfw_dir: Path, tmp_path: Path) -> None:
    """Hugo Chavez's own photos match 'Elena_de_Chavez_0001' (he is the face in it): that is label noise,
    and the exclusion list must remove exactly such comparisons from the impostor set."""
    from firmware.config import AppConfig
    from firmware.embed.recognizer import Recognizer
    from firmware.eval.embedding_set import embed_images
    from firmware.eval.lfw import iter_images

    images = tmp_path / "images"
    images.mkdir()
    for n in ("Elena_de_Chavez", "Hugo_Chavez", "Choi_Sung-hong", "Sung_Hong_Choi", "Aaron_Peirsol"):
        (images / n).symlink_to(lfw_dir / "images" / n)
    paths = list(iter_images(images))
    emb = embed_images(Recognizer.from_config(AppConfig(), precision="int8"), paths)
    names = [p.parent.name for p in emb.paths]
    noise = load_label_noise()
    with_noise = ListSizeEval(emb.embeddings, names, 1, 1, stems=[p.stem for p in emb.paths])
    clean = ListSizeEval(emb.embeddings, names, 1, 1, noise=noise, stems=[p.stem for p in emb.paths])
    raw_counts, raw_total = with_noise.fmr_counts(grid=np.array([0.75]))
    clean_counts, clean_total = clean.fmr_counts(grid=np.array([0.75]))
    assert raw_counts[0] >= 2 and clean_counts[0] < raw_counts[0] and clean_total < raw_total


@pytest.mark.slow
def test_eval_identify_at_list_sizes(lfw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = _subset(lfw_dir, tmp_path / "images")
    plot = tmp_path / "fpir.png"
    code = main(["eval", "identify", "--images", str(images), "--gallery-sizes", "20,50", "--templates", "2",
                 "--probe-shots", "2", "--labels", str(lfw_dir / "labels"), "--plot", str(plot), "--json",
                 "--cache", str(tmp_path / "cache")])
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    assert "tpir" in r and "gallery" in r  # the default run's keys stay
    ls = r["list_sizes"]
    assert [s["gallery"] for s in ls["sizes"]] == [20, 50]
    for s in ls["sizes"]:
        for key in ("gallery", "templates", "probe_shots", "mated", "non_mated", "tpir", "tpir_ci95", "fpir",
                    "fpir_ci95", "threshold_score", "threshold_cosine"):
            assert key in s
        assert s["templates"] == 2 and s["probe_shots"] == 2 and s["mated"] >= 20
        assert s["tpir"] >= 0.8
    assert set(ls["projected_fpir"]) == {"1000", "5000", "10000", "20000"}
    fp = [ls["projected_fpir"][n]["fpir_at_operating_threshold"] for n in ("1000", "5000", "10000", "20000")]
    assert fp == sorted(fp) and all(0.0 <= x <= 1.0 for x in fp)  # FPIR grows with the list at one threshold
    assert len(ls["projection_check"]) == 4
    assert ls["label_noise"]["entries"] >= 15
    assert ls["fmr"]["all_image_pairs"]["excluded_comparisons"] > 0
    assert {"female", "male"} <= set(ls["by_gender"]["operating_threshold"]["groups"])
    assert plot.stat().st_size > 10_000
