"""The package as the van gets it: a wheel installed into a fresh venv outside the checkout finds its models.

Tests otherwise run from the editable checkout, where models/ sits beside firmware/; an installed wheel has no
checkout around it, so this builds the wheel, installs it with the pinned dependency set (constraints.txt, from
PyPI or pip's cache) into a new venv in a temporary folder, and runs `lfr` from there with the checkout out of
reach (another working directory, no PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LFR_CONFIG", "VIRTUAL_ENV")}
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding the wheel of this checkout and its pinned dependencies; returns its bin folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp / "dist"), str(REPO)], tmp)
    (tmp / "build.log").write_text(built.stdout + built.stderr)
    wheel = next((tmp / "dist").glob("lfr_firmware-*.whl"))
    _run([sys.executable, "-m", "venv", str(tmp / "venv")], tmp)
    _run([str(tmp / "venv/bin/python"), "-m", "pip", "install", "-q", "--constraint",
          str(REPO / "constraints.txt"), str(wheel)], tmp)
    return tmp / "venv/bin"


def _site_packages(bin_dir: Path) -> Path:
    out = _run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
               bin_dir)
    return Path(out.stdout.strip())


@pytest.mark.slow
def test_the_installed_wheel_verifies_the_models_it_carries(installed: Path, tmp_path: Path) -> None:
    site = _site_packages(installed)
    out = _run([str(installed / "lfr"), "models", "verify", "--json"], tmp_path)
    result = json.loads(out.stdout)
    assert result["ok"], result
    assert Path(result["models_dir"]) == site / "lfr_models"
    assert {f["file"] for f in result["files"]} >= {
        f"{role}_{p}.tflite" for role in ("face_detector", "face_embedder", "face_landmarks")
        for p in ("int8", "float")}
    where = _run([str(installed / "python"), "-c", "import firmware; print(firmware.__file__)"], tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(site), "the wheel test imported the checkout"


@pytest.mark.slow
def test_the_installed_wheel_recognises_real_faces(installed: Path, tmp_path: Path, lfw_dir: Path) -> None:
    """Two folds of three same-person and three different-person LFW pairs, embedded by the installed int8
    models and scored with the installed calibration: all twelve decided right (the shipped models get 99 %)."""
    lines = (lfw_dir / "pairs.txt").read_text().splitlines()
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["2 3", *lines[1:4], *lines[301:304], *lines[601:604], *lines[901:904]]) + "\n")
    out = _run([str(installed / "lfr"), "eval", "verify", "--pairs", str(pairs), "--images",
                str(lfw_dir / "images"), "--no-cache", "--json"], tmp_path)
    result = json.loads(out.stdout)
    assert result["pairs"] == 12 and result["failed_detections"] == 0
    assert result["accuracy"] == 1.0, result
    assert result["operating_point"]["fnmr"] == 0.0 and result["operating_point"]["fmr_file_impostors"] == 0.0


@pytest.mark.slow
def test_the_wheel_builds_without_package_data_warnings_and_carries_the_pages(installed: Path) -> None:
    """Issue 14: every fresh install printed about 60 setuptools warnings about firmware.viewer.static."""
    log = (installed.parent.parent / "build.log").read_text()
    assert "absent from the `packages` configuration" not in log
    site = _site_packages(installed)
    for page in ("viewer/static/index.html", "viewer/static/favicon.svg", "viewer/handheld/static/handheld.html"):
        assert (site / "firmware" / page).is_file(), page
