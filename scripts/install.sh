#!/usr/bin/env bash
# Install the LFR appliance on Raspberry Pi OS bookworm (Pi 5), from a checkout of this repository:
#   sudo scripts/install.sh [--dry-run] [--camera NAME]... [--coral usb|pci] [--source DIR]
# Idempotent: run it again after an update; it keeps the configuration and keys it finds.
#   --dry-run      print every action (lines starting with "+") and change nothing
#   --camera NAME  enable lfr-camera@NAME.service, one per camera in appliance.toml (default: cam0)
#   --coral BUS    also install the Edge TPU runtime (usb or pci) from Google's Coral apt repository
#   --source DIR   the checkout to install (default: the one holding this script)
#   --prefix DIR   where the code and its venv go (default /opt/lfr; the units expect /opt/lfr)
#   --root DIR     treat DIR as / for files, the user and the units (tests; no apt, and a venv made
#                  there only works at that path)
set -euo pipefail

PREFIX=/opt/lfr
ROOT=/
DRY_RUN=0
CORAL=""
CAMERAS=()
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Debian packages: picamera2 and libcamera only exist as Raspberry Pi OS packages (the venv sees them
# through --system-site-packages); lgpio is the pin library gpiozero needs on a Pi 5.
APT_PACKAGES=(python3-venv python3-pip python3-picamera2 python3-lgpio util-linux)
# The one source outside Raspberry Pi OS and PyPI, only with --coral: Google's Coral apt repository.
CORAL_REPO="deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main"
CORAL_KEY_URL="https://packages.cloud.google.com/apt/doc/apt-key.gpg"
# The venv gets the pinned set of the checkout (constraints.txt: numpy 2.x, as in development and CI) and
# simplejpeg from PyPI: apt's python3-simplejpeg, which picamera2 imports, is built against numpy 1.x and would
# fail to load beside numpy 2; the venv's own copy comes first on sys.path.
PIP_EXTRA=(simplejpeg)
GROUPS_WANTED=(video gpio plugdev)
KEY_SECRET=/etc/lfr/link/link.key_secret
UNITS_ENABLED=(lfr-appliance.service lfr-purge.timer lfr-watchlist-expiry.timer)

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --prefix) PREFIX="${2:?--prefix needs a directory}"; shift ;;
        --root) ROOT="${2:?--root needs a directory}"; shift ;;
        --source) SOURCE="${2:?--source needs a directory}"; shift ;;
        --camera) CAMERAS+=("${2:?--camera needs a name}"); shift ;;
        --coral) CORAL="${2:?--coral needs usb or pci}"; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
case "$CORAL" in ""|usb|pci) ;; *) echo "install.sh: --coral must be usb or pci, not $CORAL" >&2; exit 2 ;; esac
[ ${#CAMERAS[@]} -gt 0 ] || CAMERAS=(cam0)
for camera in "${CAMERAS[@]}"; do
    [[ "$camera" =~ ^[A-Za-z0-9_-]+$ ]] || {
        echo "install.sh: camera name '$camera' must be letters, digits, _ or - (it names a systemd unit)" >&2
        exit 2; }
done
ROOT="${ROOT%/}"
R() { printf '%s%s' "$ROOT" "$1"; }   # a path inside the target root
VENV="$PREFIX/.venv"
LFR="$VENV/bin/lfr"

if [ "$DRY_RUN" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (sudo), or with --dry-run to see what it would do" >&2
    exit 2
fi
[ -f "$SOURCE/setup.cfg" ] && [ -d "$SOURCE/firmware" ] || {
    echo "install.sh: $SOURCE is not an LFR checkout (no setup.cfg and firmware/); pass --source" >&2; exit 2; }

# Every change goes through run: printed, then done unless --dry-run.
run() {
    printf '+'; printf ' %q' "$@"; printf '\n'
    [ "$DRY_RUN" = 1 ] || "$@"
}
note() { printf '# %s\n' "$*"; }
write_file() {  # write_file PATH MODE: stdin to PATH
    local path="$1" mode="$2" content
    content="$(cat)"
    printf '+ write %q %s\n' "$path" "$mode"
    [ "$DRY_RUN" = 1 ] || { printf '%s\n' "$content" > "$path"; chmod "$mode" "$path"; }
}
has_group() { grep -q "^$1:" "$(R /etc/group)" 2>/dev/null; }
has_user() { grep -q "^$1:" "$(R /etc/passwd)" 2>/dev/null; }
root_opt=()
[ -z "$ROOT" ] || root_opt=(--root "$ROOT")

note "LFR appliance install: source $SOURCE, prefix $PREFIX, root ${ROOT:-/}"

# 1. Debian packages.
if [ -z "$ROOT" ]; then
    if [ -n "$CORAL" ]; then
        note "Coral Edge TPU runtime from Google's apt repository (the one external source)"
        if [ ! -f /usr/share/keyrings/coral-edgetpu.gpg ]; then
            run sh -c "curl -fsSL $CORAL_KEY_URL | gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg"
        fi
        [ -f /etc/apt/sources.list.d/coral-edgetpu.list ] ||
            printf '%s\n' "$CORAL_REPO" | write_file /etc/apt/sources.list.d/coral-edgetpu.list 0644
        APT_PACKAGES+=(libedgetpu1-std)
        if [ "$CORAL" = pci ]; then APT_PACKAGES+=(gasket-dkms); fi
    fi
    run apt-get update -q
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}"
else
    note "skipping apt-get with --root: install ${APT_PACKAGES[*]} in the image"
fi

# 2. The lfr user: no login, no home of its own, only the device groups it needs.
if has_user lfr; then
    note "user lfr exists"
else
    run useradd "${root_opt[@]}" --system --user-group --home-dir /var/lib/lfr --no-create-home \
        --shell /usr/sbin/nologin --comment "LFR appliance" lfr
fi
for group in "${GROUPS_WANTED[@]}"; do
    if has_group "$group"; then
        run usermod "${root_opt[@]}" --append --groups "$group" lfr
    else
        note "group $group does not exist here; skipped (it exists on Raspberry Pi OS)"
    fi
done

# 3. Directories: code root-owned; config readable by lfr; keys: the secret stays root-only and reaches
#    the service through LoadCredential=.
run install -d -m 0755 -o root -g root "$(R "$PREFIX")"
run install -d -m 0750 -o root -g lfr "$(R /etc/lfr)"
run install -d -m 0750 -o root -g lfr "$(R /etc/lfr/link)"
run install -d -m 0750 -o lfr -g lfr "$(R /var/lib/lfr)"

# 4. The code and its venv (sees picamera2 and lgpio from apt).
run rm -rf "$(R "$PREFIX/src")"
run install -d -m 0755 "$(R "$PREFIX/src")"
for item in firmware models docs systemd scripts setup.cfg setup.py pyproject.toml constraints.txt README.md; do
    if [ -e "$SOURCE/$item" ]; then run cp -R "$SOURCE/$item" "$(R "$PREFIX/src/")"; fi
done
if [ -x "$(R "$VENV/bin/python")" ]; then
    note "venv $VENV exists; updating it"
else
    run python3 -m venv --system-site-packages "$(R "$VENV")"
fi
run install -m 0644 "$SOURCE/constraints.txt" "$(R "$PREFIX/constraints.txt")"
run "$(R "$VENV/bin/pip")" install -q --constraint "$(R "$PREFIX/constraints.txt")" "$(R "$PREFIX/src")" \
    "${PIP_EXTRA[@]}"

# 5. Default configuration, only when there is none (an operator's edits are never overwritten).
if [ -f "$(R /etc/lfr/appliance.toml)" ]; then
    note "keeping existing /etc/lfr/appliance.toml"
else
    run install -m 0640 -o root -g lfr "$SOURCE/scripts/appliance.default.toml" "$(R /etc/lfr/appliance.toml)"
fi
run "$(R "$LFR")" config check "$(R /etc/lfr/appliance.toml)"

# 6. CURVE keys of the appliance, made once on the device itself.
if [ -f "$(R "$KEY_SECRET")" ]; then
    note "keeping existing CURVE keys in /etc/lfr/link"
else
    run "$(R "$LFR")" keys init --config "$(R /etc/lfr/appliance.toml)" --dir "$(R /etc/lfr/link)"
fi

# 7. systemd units and the USB udev rule.
for unit in "$SOURCE"/systemd/*.service "$SOURCE"/systemd/*.timer; do
    if [ "$PREFIX" = /opt/lfr ]; then
        run install -m 0644 "$unit" "$(R /etc/systemd/system/)"
    else  # the units name /opt/lfr; point them at the chosen prefix
        sed "s#/opt/lfr/#$PREFIX/#g" "$unit" | write_file "$(R "/etc/systemd/system/${unit##*/}")" 0644
    fi
done
run install -d -m 0755 "$(R /etc/udev/rules.d)"
run install -m 0644 "$SOURCE/systemd/99-lfr-watchlist-usb.rules" "$(R /etc/udev/rules.d/)"
if [ -z "$ROOT" ]; then
    run systemctl daemon-reload
    run udevadm control --reload
fi
systemctl_opt=()
[ -z "$ROOT" ] || systemctl_opt=("--root=$ROOT")
for camera in "${CAMERAS[@]}"; do
    UNITS_ENABLED+=("lfr-camera@$camera.service")
done
run systemctl "${systemctl_opt[@]}" enable "${UNITS_ENABLED[@]}"

note "installed. Pair the operator laptop (docs/appliance.md), then reboot or: systemctl start lfr-appliance"
