#!/usr/bin/env bash
# Check that every pin in constraints.txt has a binary wheel on PyPI for the Pi: aarch64 Linux, CPython 3.11
# (Raspberry Pi OS bookworm) and 3.13 (trixie). Downloads each pin alone (--no-deps) into a temporary folder with
# `pip download --only-binary=:all:`; prints one line per pin and Python, exits 1 when any has no wheel.
#   scripts/check_wheels.sh [--python 3.11] [--python 3.13] [--constraints FILE]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONSTRAINTS="$HERE/constraints.txt"
PYTHONS=()
PIP="${PIP:-$HERE/.venv/bin/pip}"
[ -x "$PIP" ] || PIP="python3 -m pip"
while [ $# -gt 0 ]; do
    case "$1" in
        --python) PYTHONS+=("${2:?--python needs a version}"); shift ;;
        --constraints) CONSTRAINTS="${2:?--constraints needs a file}"; shift ;;
        *) echo "check_wheels.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#PYTHONS[@]} -gt 0 ] || PYTHONS=(3.11 3.13)
# manylinux2014 is glibc 2.17; newer wheels carry a manylinux_2_NN tag up to bookworm's glibc 2.36.
PLATFORMS=(manylinux2014_aarch64)
for glibc in 17 24 26 27 28 31 34 35 36; do PLATFORMS+=("manylinux_2_${glibc}_aarch64"); done
platform_opts=()
for p in "${PLATFORMS[@]}"; do platform_opts+=(--platform "$p"); done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
missing=0
while read -r pin; do
    for py in "${PYTHONS[@]}"; do
        if $PIP download -q --no-deps --only-binary=:all: "${platform_opts[@]}" --python-version "$py" \
                -d "$tmp/$py" "$pin" >"$tmp/log" 2>&1; then
            printf 'ok       %-40s cp%s aarch64\n' "$pin" "${py/./}"
        else
            printf 'MISSING  %-40s cp%s aarch64\n' "$pin" "${py/./}"
            missing=$((missing + 1))
        fi
    done
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$CONSTRAINTS")
echo "$missing pins without an aarch64 wheel"
[ "$missing" = 0 ]
