#!/usr/bin/env bash
# Compile the int8 models for the Coral Edge TPU and record the results in models/manifest.toml.
#   scripts/compile_edgetpu.sh [--models DIR] [--compiler PATH] [--keep-going]
# Runs Google's edgetpu_compiler (x86-64 Linux only; from the Coral apt repository, not from any package registry
# this project uses, so it is installed by hand on a build host) on every *_int8.tflite in DIR (default models/),
# writes <role>_edgetpu.tflite beside it (the name firmware/accel/backends.py looks for), and checks in the
# compiler's summary that every operation was mapped to the Edge TPU: a file with any op left on the CPU is
# refused (exit 1) unless --keep-going, which keeps it and says which ops. Each compiled file gets a
# [models.<role>_edgetpu] table in the manifest (sha256, bytes, compiler version, the int8 file's sha256), so
# `lfr models verify` checks it and the appliance refuses a file that does not match.
# Before compiling, `lfr models verify --edgetpu` must pass: it names the first op that would split a graph.
# It cannot run on the development machine of this repository (no compiler there, and none on aarch64).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="$HERE/models"
COMPILER="$(command -v edgetpu_compiler || true)"
KEEP_GOING=0
PY="$HERE/.venv/bin/python"
[ -x "$PY" ] || PY=python3

while [ $# -gt 0 ]; do
    case "$1" in
        --models) MODELS="${2:?--models needs a directory}"; shift ;;
        --compiler) COMPILER="${2:?--compiler needs a path}"; shift ;;
        --keep-going) KEEP_GOING=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "compile_edgetpu.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

if [ "$(uname -m)" != x86_64 ]; then
    echo "compile_edgetpu.sh: edgetpu_compiler runs only on x86-64 Linux (this is $(uname -m))" >&2; exit 2
fi
if [ -z "$COMPILER" ] || [ ! -x "$COMPILER" ]; then
    echo "compile_edgetpu.sh: edgetpu_compiler not found; install the edgetpu-compiler package from Coral's apt" \
         "repository on an x86-64 build host, or pass --compiler PATH" >&2
    exit 2
fi
"$PY" -m firmware.cli.main models verify --edgetpu --config <(printf '[models]\ndir = "%s"\n' "$MODELS") || {
    echo "compile_edgetpu.sh: the static Edge TPU check failed (above); fix the graph before compiling" >&2
    exit 1; }

version="$("$COMPILER" --version 2>&1 | head -1)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
records=()
for int8 in "$MODELS"/*_int8.tflite; do
    role="$(basename "$int8" _int8.tflite)"
    echo "== $role: $version"
    "$COMPILER" --show_operations --out_dir "$work" "$int8" | tee "$work/$role.log"
    compiled="$work/${role}_int8_edgetpu.tflite"
    [ -f "$compiled" ] || { echo "compile_edgetpu.sh: $COMPILER wrote no $compiled" >&2; failed=1; continue; }
    # The summary has one row per operator type; anything but "Mapped to Edge TPU" runs on the CPU.
    cpu_ops="$(awk '/^Operator +Count +Status/ { table = 1; next } table && NF >= 3 && !/Mapped to Edge TPU/' \
        "$work/$role.log")"
    if ! grep -q "Number of operations that will run on CPU: 0" "$work/$role.log" || [ -n "$cpu_ops" ]; then
        echo "compile_edgetpu.sh: $role has operations left on the CPU:" >&2
        printf '%s\n' "$cpu_ops" >&2
        if [ "$KEEP_GOING" = 0 ]; then failed=1; continue; fi
    fi
    cp "$compiled" "$MODELS/${role}_edgetpu.tflite"
    records+=("$role")
done

# Record every compiled file in the manifest, keeping the other tables as they are.
if [ ${#records[@]} -gt 0 ]; then
    LFR_SCRIPTS="$HERE/scripts" "$PY" - "$MODELS" "$version" "${records[@]}" <<'PY'
import hashlib
import os
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, os.environ["LFR_SCRIPTS"])
from build_models import write_manifest  # noqa: E402

models, version, roles = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
with (models / "manifest.toml").open("rb") as fh:
    entries = dict(tomllib.load(fh)["models"])
compiled = {}
for role in roles:
    path = models / f"{role}_edgetpu.tflite"
    int8 = entries[f"{role}_int8"]
    compiled[f"{role}_edgetpu"] = {
        "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": path.stat().st_size,
        "precision": "edgetpu", "role": int8["role"], "compiler": version, "compiled_from_sha256": int8["sha256"],
        "agreement_with_float": {}, "tensors": int8["tensors"]}
ordered = {}
for name, table in entries.items():
    if name not in compiled:
        ordered[name] = table
    role = name.rsplit("_", 1)[0]
    if name.endswith("_float") and f"{role}_edgetpu" in compiled:
        ordered[f"{role}_edgetpu"] = compiled[f"{role}_edgetpu"]
ordered.update({k: v for k, v in compiled.items() if k not in ordered})
write_manifest(models, ordered)
print(f"manifest: recorded {', '.join(roles)}")
PY
fi
[ "$failed" = 0 ] || { echo "compile_edgetpu.sh: some models did not compile whole (above)" >&2; exit 1; }
echo "all int8 models compiled with every operation on the Edge TPU"
