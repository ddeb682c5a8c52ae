"""scripts/compile_edgetpu.sh around a stand-in for Google's edgetpu_compiler (x86-only tooling that no package
registry carries): compiled files land beside the int8 ones with their sha256 in the manifest, and a compile that
leaves any op on the CPU is refused naming it. The real compiler's mapping is checked only on a build host."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from firmware.config import REPO_MODELS_DIR

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "compile_edgetpu.sh"

# Prints a summary in the compiler's format and writes <stem>_edgetpu.tflite into --out_dir (the int8 bytes plus
# a marker: a stand-in, not a compiled graph). $FAKE_CPU_OP, when set, is reported as left on the CPU.
FAKE_COMPILER = r"""#!/usr/bin/env bash
set -eu
if [ "${1:-}" = --version ]; then echo "Edge TPU Compiler version 16.0.384591198 (stand-in)"; exit 0; fi
out=""; model=""
while [ $# -gt 0 ]; do
  case "$1" in --out_dir) out="$2"; shift ;; --show_operations|-s) ;; *) model="$1" ;; esac; shift
done
stem="$(basename "$model" .tflite)"
{ cat "$model"; printf 'stand-in'; } > "$out/${stem}_edgetpu.tflite"
cpu=0; [ -n "${FAKE_CPU_OP:-}" ] && cpu=1
echo "Input: $model"
echo "Number of operations that will run on Edge TPU: 97"
echo "Number of operations that will run on CPU: $cpu"
echo
echo "Operator                       Count      Status"
echo
echo "CONV_2D                        35         Mapped to Edge TPU"
if [ -n "${FAKE_CPU_OP:-}" ]; then echo "$FAKE_CPU_OP                          1          Operation not supported"; fi
"""


def setup(tmp_path: Path) -> tuple[Path, Path]:
    models = tmp_path / "models"
    shutil.copytree(REPO_MODELS_DIR, models)
    compiler = tmp_path / "edgetpu_compiler"
    compiler.write_text(FAKE_COMPILER)
    compiler.chmod(0o755)
    return models, compiler


def run(models: Path, compiler: Path, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(["bash", str(SCRIPT), "--models", str(models), "--compiler", str(compiler)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_every_int8_model_is_compiled_and_recorded(tmp_path: Path) -> None:
    models, compiler = setup(tmp_path)
    result = run(models, compiler)
    assert result.returncode == 0, result.stdout + result.stderr
    with (models / "manifest.toml").open("rb") as fh:
        entries = tomllib.load(fh)["models"]
    for role in ("face_detector", "face_embedder", "face_landmarks"):
        table = entries[f"{role}_edgetpu"]
        assert (models / table["file"]).is_file() and table["file"] == f"{role}_edgetpu.tflite"
        assert table["compiled_from_sha256"] == entries[f"{role}_int8"]["sha256"]
        assert "16.0.384591198" in table["compiler"]
    verify = subprocess.run([sys.executable, "-m", "firmware.cli.main", "models", "verify", "--json", "--config",
                             str(_config(tmp_path, models))], capture_output=True, text=True, timeout=120)
    out = json.loads(verify.stdout)
    assert out["ok"] and {f["file"] for f in out["files"]} >= {"face_embedder_edgetpu.tflite"}


def test_an_op_left_on_the_cpu_is_refused_and_named(tmp_path: Path) -> None:
    models, compiler = setup(tmp_path)
    before = (models / "manifest.toml").read_text()
    result = run(models, compiler, FAKE_CPU_OP="ABS")
    assert result.returncode == 1
    assert "operations left on the CPU" in result.stderr and "ABS" in result.stderr
    assert not list(models.glob("*_edgetpu.tflite")) and (models / "manifest.toml").read_text() == before


def test_a_compiled_file_that_does_not_match_the_manifest_is_caught(tmp_path: Path) -> None:
    models, compiler = setup(tmp_path)
    assert run(models, compiler).returncode == 0
    (models / "face_embedder_edgetpu.tflite").write_bytes(b"swapped")
    verify = subprocess.run([sys.executable, "-m", "firmware.cli.main", "models", "verify", "--config",
                             str(_config(tmp_path, models))], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 1 and "BAD face_embedder_edgetpu.tflite" in verify.stdout


def _config(tmp_path: Path, models: Path) -> Path:
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[models]\ndir = "{models}"\n')
    return cfg
