#!/usr/bin/env bash
# The same answers on aarch64, without a Pi: run the firmware on an emulated Cortex-A76 and compare embeddings.
#   scripts/arm64_check.sh [--root DIR] [--out DIR] [--faces N] [--suite bookworm|trixie]
# 1. A Debian arm64 root from Debian packages: `debootstrap --foreign --arch=arm64 --variant=minbase
#    --include=python3`, then every downloaded .deb unpacked with dpkg-deb (the second stage would need binfmt
#    or a chroot able to execute arm64 binaries; neither is available here, and python3 needs no maintainer
#    scripts to run). Kept in DIR (default .cache/arm64-root-SUITE) and reused.
# 2. The aarch64 wheels of the pinned set (constraints.txt) and of this checkout's wheel, from PyPI, into
#    DIR/opt/lfr/site: `pip install --target --platform manylinux*_aarch64 --only-binary=:all:`.
# 3. Under `qemu-aarch64-static -cpu cortex-a76 -L DIR` (called directly: no binfmt registration), with a
#    Raspberry Pi 5's /proc/cpuinfo in DIR (qemu 7.2 passes the host's x86 one through, on which XNNPACK's CPU
#    detection crashes): `lfr models verify --edgetpu`, then embeddings of N shared LFW faces (default 36), int8
#    and float, compared with the same faces embedded here on x86 (scripts/arm64_embeddings.py: mean and minimum
#    cosine per model and precision, tolerances stated and justified there). Exit 1 when any is below.
#    The embeddings and the comparison (result.json) stay in --out (default .cache/arm64-check).
# Needs: apt packages debootstrap and qemu-user-static; network to deb.debian.org and PyPI for the first run.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE=bookworm
FACES=36
ROOT=""
OUT=""
DATA="${LFR_TEST_DATA:-$HERE/../shared/data}"
PY="$HERE/.venv/bin/python"
[ -x "$PY" ] || PY=python3
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        --out) OUT="${2:?--out needs a directory}"; shift ;;
        --faces) FACES="${2:?--faces needs a number}"; shift ;;
        --suite) SUITE="${2:?--suite needs bookworm or trixie}"; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "arm64_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
case "$SUITE" in bookworm) PYVER=3.11 ;; trixie) PYVER=3.13 ;; *) echo "arm64_check.sh: --suite bookworm|trixie" >&2; exit 2 ;; esac
ROOT="${ROOT:-$HERE/.cache/arm64-root-$SUITE}"
OUT="$(mkdir -p "${OUT:-$HERE/.cache/arm64-check}" && cd "${OUT:-$HERE/.cache/arm64-check}" && pwd)"
for tool in debootstrap qemu-aarch64-static dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "arm64_check.sh: $tool missing: apt-get install debootstrap qemu-user-static" >&2; exit 2; }
done
[ -d "$DATA/lfw/images" ] || { echo "arm64_check.sh: no LFW images under $DATA (set LFR_TEST_DATA)" >&2; exit 2; }
DATA="$(cd "$DATA" && pwd)"  # absolute: the emulated process resolves paths outside the root on the host
[ "$(id -u)" = 0 ] || { echo "arm64_check.sh: debootstrap needs root" >&2; exit 2; }

started=$SECONDS
step() { printf '== %s (%ds)\n' "$*" $((SECONDS - started)); }

# 1. The Debian arm64 root.
if [ ! -x "$ROOT/usr/bin/python$PYVER" ]; then
    step "debootstrap --foreign $SUITE arm64 into $ROOT"
    mkdir -p "$ROOT"
    debootstrap --arch=arm64 --foreign --variant=minbase --include=python3 "$SUITE" "$ROOT" "$MIRROR"
    step "unpacking $(ls "$ROOT"/var/cache/apt/archives/*.deb | wc -l) packages"
    for deb in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$ROOT"; done
fi
mkdir -p "$ROOT/proc" "$ROOT/sys/devices/system/cpu" "$ROOT/opt/lfr" "$ROOT/tmp"
{
    for cpu in 0 1 2 3; do
        printf 'processor\t: %s\nBogoMIPS\t: 108.00\n' "$cpu"
        printf 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\n'
        printf 'CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n'
    done
    printf 'Model\t\t: Raspberry Pi 5 Model B (emulated by qemu-aarch64-static -cpu cortex-a76)\n'
} > "$ROOT/proc/cpuinfo"
echo 0-3 > "$ROOT/sys/devices/system/cpu/possible"
echo 0-3 > "$ROOT/sys/devices/system/cpu/present"

# 2. The pinned aarch64 wheels and this checkout's wheel.
step "building the wheel and installing the aarch64 wheels for CPython $PYVER"
# The emulated process sees the host's files wherever DIR has no file of that name: the work folder is shared.
work="$OUT"
rm -rf "$work/dist"
"$PY" -m pip wheel -q --no-deps -w "$work/dist" "$HERE" >/dev/null
platforms=(--platform manylinux2014_aarch64)
for glibc in 17 24 26 27 28 31 34 35 36 38 39 41; do platforms+=(--platform "manylinux_2_${glibc}_aarch64"); done
rm -rf "$ROOT/opt/lfr/site"
"$PY" -m pip install -q --target "$ROOT/opt/lfr/site" "${platforms[@]}" --python-version "$PYVER" \
    --implementation cp --only-binary=:all: --constraint "$HERE/constraints.txt" "$work"/dist/lfr_firmware-*.whl \
    2> >(grep -v "WARNING: Location" >&2)
cp "$HERE/scripts/arm64_embeddings.py" "$ROOT/opt/lfr/arm64_embeddings.py"
printf '[models]\naccelerator = "cpu"\n' > "$ROOT/opt/lfr/check.toml"
qemu=(qemu-aarch64-static -cpu cortex-a76 -L "$ROOT" -E PYTHONPATH=/opt/lfr/site -E HOME=/tmp
      -E PYTHONDONTWRITEBYTECODE=1 "$ROOT/usr/bin/python$PYVER")

# 3. Under emulation: the model check, then the embeddings.
step "lfr models verify --edgetpu on aarch64"
"${qemu[@]}" -c 'import sys; from firmware.cli.main import main; sys.exit(main())' \
    models verify --edgetpu --config /opt/lfr/check.toml 2> >(grep -v "XNNPACK delegate" >&2)
"${qemu[@]}" -c 'import platform, sys, numpy, cv2, ai_edge_litert
print("aarch64 runtime:", platform.machine(), "Python", sys.version.split()[0], "numpy", numpy.__version__,
      "OpenCV", cv2.__version__, "ai-edge-litert", ai_edge_litert.__version__ if hasattr(ai_edge_litert, "__version__") else "?")'

find "$DATA/lfw/images" -name '*_0001.jpg' | sort | awk -v n="$FACES" 'NR % 97 == 1 && c < n { print; c++ }' \
    > "$work/faces.txt"
step "x86 embeddings of $(wc -l < "$work/faces.txt") LFW faces"
"$PY" "$HERE/scripts/arm64_embeddings.py" embed --list "$work/faces.txt" --out "$work/x86.npz" \
    --write-aligned "$work/aligned.npz" 2> >(grep -v "XNNPACK delegate" >&2)
step "aarch64 embeddings of the same faces under qemu"
"${qemu[@]}" /opt/lfr/arm64_embeddings.py embed --list "$work/faces.txt" --aligned "$work/aligned.npz" \
    --out "$work/arm.npz" 2> >(grep -v "XNNPACK delegate" >&2)
step "aarch64 against x86 (cosine per face)"
status=0
"$PY" "$HERE/scripts/arm64_embeddings.py" compare "$work/x86.npz" "$work/arm.npz" || status=$?
"$PY" "$HERE/scripts/arm64_embeddings.py" compare --json "$work/x86.npz" "$work/arm.npz" > "$work/result.json" || true
step "done, exit $status"
exit "$status"
