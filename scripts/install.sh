#!/usr/bin/env bash
# Install the LFR appliance on Raspberry Pi OS bookworm (Pi 5), from a checkout of this repository:
#   sudo scripts/install.sh [--dry-run] [--camera NAME]... [--coral usb|pci] [--libedgetpu-deb FILE]
#                           [--gasket-source DIR] [--pcie-hat-overlay NAME] [--source DIR]
# Idempotent: run it again after an update; it keeps the configuration and keys it finds.
#   --dry-run      print every action (lines starting with "+") and change nothing
#   --camera NAME  enable lfr-camera@NAME.service, one per camera in appliance.toml (default: cam0)
#   --coral BUS    set up a Coral Edge TPU on usb (udev rules for 1a6e:089a and 18d1:9302, plugdev, uhubctl
#                  power-cycle of its port when a camera unit fails) or pci (M.2/PCIe on a Pi 5: config.txt
#                  dtparam=pciex1, kernel=kernel8.img, dtoverlay=pcie-32bit-dma-pi5; the gasket/apex driver
#                  with DKMS; 65-apex.rules, group apex; /dev/apex_0 checked). Nothing is downloaded from
#                  outside the Debian/Raspberry Pi OS archive and PyPI:
#   --libedgetpu-deb FILE  the libedgetpu1 .deb to install (one built for the TF version of the pinned
#                  ai-edge-litert, e.g. feranick's 16.0tf2.19.1 for arm64); without it the CPU runs, and says so
#   --gasket-source DIR    a copy of google/gasket-driver (its src/ folder is built with DKMS; pci only)
#   --pcie-hat-overlay NAME  the dtoverlay of the M.2 adapter board, if it needs one (e.g. pineboards-hat-ai)
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
LIBEDGETPU_DEB=""
GASKET_SOURCE=""
PCIE_HAT_OVERLAY=""
CORAL_USB_IDS=("1a6e:089a" "18d1:9302")  # before and after libedgetpu loads the TPU's firmware
GASKET_VERSION=1.0
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
        --libedgetpu-deb) LIBEDGETPU_DEB="${2:?--libedgetpu-deb needs a .deb file}"; shift ;;
        --gasket-source) GASKET_SOURCE="${2:?--gasket-source needs a directory}"; shift ;;
        --pcie-hat-overlay) PCIE_HAT_OVERLAY="${2:?--pcie-hat-overlay needs an overlay name}"; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage 2 ;;
    esac
    shift
done
case "$CORAL" in ""|usb|pci) ;; *) echo "install.sh: --coral must be usb or pci, not $CORAL" >&2; exit 2 ;; esac
if [ -n "$LIBEDGETPU_DEB" ] && [ ! -f "$LIBEDGETPU_DEB" ]; then
    echo "install.sh: --libedgetpu-deb $LIBEDGETPU_DEB is not a file" >&2; exit 2; fi
if [ -n "$GASKET_SOURCE" ] && [ ! -f "$GASKET_SOURCE/src/Makefile" ]; then
    echo "install.sh: --gasket-source $GASKET_SOURCE has no src/Makefile (a copy of google/gasket-driver)" >&2
    exit 2; fi
[[ "$PCIE_HAT_OVERLAY" =~ ^[A-Za-z0-9_-]*$ ]] || {
    echo "install.sh: --pcie-hat-overlay '$PCIE_HAT_OVERLAY' is not an overlay name" >&2; exit 2; }
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
    if [ "$DRY_RUN" = 1 ]; then
        while IFS= read -r line; do printf '# | %s\n' "$line"; done <<< "$content"
    else
        printf '%s\n' "$content" > "$path"; chmod "$mode" "$path"
    fi
}
append_lines() {  # append_lines PATH LINE...: append the lines to PATH (created if absent)
    local path="$1"; shift
    printf '+ append %q' "$path"; printf ' %q' "$@"; printf '\n'
    [ "$DRY_RUN" = 1 ] || printf '%s\n' "$@" >> "$path"
}
has_group() { grep -q "^$1:" "$(R /etc/group)" 2>/dev/null; }
has_user() { grep -q "^$1:" "$(R /etc/passwd)" 2>/dev/null; }
root_opt=()
[ -z "$ROOT" ] || root_opt=(--root "$ROOT")

note "LFR appliance install: source $SOURCE, prefix $PREFIX, root ${ROOT:-/}"

# 1. Debian packages (the Coral's too: uhubctl for USB; DKMS and the headers of the 4K-page kernel8.img for
#    PCIe; libedgetpu from the .deb given, which apt installs with its dependencies from the archive).
if [ "$CORAL" = usb ]; then APT_PACKAGES+=(uhubctl usbutils); fi
if [ "$CORAL" = pci ]; then APT_PACKAGES+=(dkms linux-headers-rpi-v8 pciutils); fi
if [ -n "$CORAL" ] && [ -n "$LIBEDGETPU_DEB" ]; then APT_PACKAGES+=("$(realpath "$LIBEDGETPU_DEB")"); fi
if [ -n "$CORAL" ] && [ -z "$LIBEDGETPU_DEB" ]; then
    note "no --libedgetpu-deb: the Edge TPU cannot be used; the appliance runs on the CPU and its health says so"
fi
if [ -z "$ROOT" ]; then
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
if [ "$CORAL" = pci ]; then GROUPS_WANTED+=(apex); fi
if [ "$CORAL" = pci ] && ! has_group apex; then
    run groupadd "${root_opt[@]}" --system apex  # /dev/apex_0's group (65-apex.rules)
fi
for group in "${GROUPS_WANTED[@]}"; do
    if has_group "$group" || { [ "$group" = apex ] && [ "$CORAL" = pci ]; }; then
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
    if [ "$CORAL" = pci ] && ! grep -q '^edgetpu_device *= *"pci"' "$(R /etc/lfr/appliance.toml)"; then
        note "set edgetpu_device = \"pci\" under [models] in /etc/lfr/appliance.toml for the PCIe Coral"
    fi
else
    run install -m 0640 -o root -g lfr "$SOURCE/scripts/appliance.default.toml" "$(R /etc/lfr/appliance.toml)"
    if [ "$CORAL" = pci ]; then
        append_lines "$(R /etc/lfr/appliance.toml)" "" "[models]" 'edgetpu_device = "pci"'
    fi
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

# 8. The Coral Edge TPU.
if [ "$CORAL" = usb ]; then
    note "Coral USB: udev rules for ${CORAL_USB_IDS[*]} (group plugdev); a failed camera unit power-cycles its port"
    {
        echo "# Coral USB Accelerator for the lfr user (group plugdev): written by scripts/install.sh."
        for id in "${CORAL_USB_IDS[@]}"; do
            printf 'SUBSYSTEMS=="usb", ATTRS{idVendor}=="%s", ATTRS{idProduct}=="%s", MODE="0664", GROUP="plugdev"\n' \
                "${id%%:*}" "${id##*:}"
        done
    } | write_file "$(R /etc/udev/rules.d/71-lfr-coral-usb.rules)" 0644
    run install -d -m 0755 "$(R "/etc/systemd/system/lfr-camera@.service.d")"
    printf '%s\n' "# A camera that stopped (watchdog, fault) power-cycles the Coral's USB port before it restarts;" \
        "# if the TPU still does not answer, the camera loads its models on the CPU (models.accelerator = auto)." \
        "[Service]" "ExecStopPost=+$PREFIX/src/scripts/coral_usb_reset.sh" |
        write_file "$(R "/etc/systemd/system/lfr-camera@.service.d/coral-usb.conf")" 0644
fi
if [ "$CORAL" = pci ]; then
    CONFIG_TXT="$(R /boot/firmware/config.txt)"
    note "Coral PCIe/M.2 on a Pi 5: PCIe on, the 4K-page kernel, 32-bit DMA; gasket/apex with DKMS; 65-apex.rules"
    boot_lines=("dtparam=pciex1" "kernel=kernel8.img" "dtoverlay=pcie-32bit-dma-pi5")
    [ -z "$PCIE_HAT_OVERLAY" ] || boot_lines+=("dtoverlay=$PCIE_HAT_OVERLAY")
    missing=()
    for line in "${boot_lines[@]}"; do
        grep -qxF "$line" "$CONFIG_TXT" 2>/dev/null || missing+=("$line")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        note "/boot/firmware/config.txt already has ${boot_lines[*]}"
    else
        run install -d -m 0755 "$(R /boot/firmware)"
        append_lines "$CONFIG_TXT" "" "[all]" "# Coral PCIe (scripts/install.sh)" "${missing[@]}"
        note "config.txt changed: reboot before /dev/apex_0 can appear"
    fi
    run install -d -m 0755 "$(R "/etc/systemd/system/lfr-camera@.service.d")"
    printf '%s\n' "# The camera units open /dev/apex_0 (group apex, 65-apex.rules)." "[Service]" "SupplementaryGroups=apex" |
        write_file "$(R "/etc/systemd/system/lfr-camera@.service.d/coral-pci.conf")" 0644
    printf '%s\n' "# Coral PCIe/M.2 (apex) for the lfr user: written by scripts/install.sh." \
        'SUBSYSTEM=="apex", MODE="0660", GROUP="apex"' | write_file "$(R /etc/udev/rules.d/65-apex.rules)" 0644
    if [ -n "$GASKET_SOURCE" ]; then
        run rm -rf "$(R "/usr/src/gasket-$GASKET_VERSION")"
        run cp -R "$GASKET_SOURCE/src" "$(R "/usr/src/gasket-$GASKET_VERSION")"
        printf '%s\n' 'PACKAGE_NAME="gasket"' "PACKAGE_VERSION=\"$GASKET_VERSION\"" \
            'BUILT_MODULE_NAME[0]="gasket"' 'BUILT_MODULE_NAME[1]="apex"' \
            'DEST_MODULE_LOCATION[0]="/updates/dkms"' 'DEST_MODULE_LOCATION[1]="/updates/dkms"' 'AUTOINSTALL="yes"' |
            write_file "$(R "/usr/src/gasket-$GASKET_VERSION/dkms.conf")" 0644
        # kernel8.img is the rpi-v8 flavour: build for it (it runs after the reboot), not the 16K-page kernel.
        if [ -z "$ROOT" ]; then
            kver="$(find /lib/modules -maxdepth 1 -name '*-v8*' -printf '%f\n' 2>/dev/null | sort -V | tail -1 || true)"
            kver="${kver:-$(uname -r)}"
            dkms status "gasket/$GASKET_VERSION" 2>/dev/null | grep -q . ||
                run dkms add -m gasket -v "$GASKET_VERSION"
            run dkms build -m gasket -v "$GASKET_VERSION" -k "$kver"
            run dkms install -m gasket -v "$GASKET_VERSION" -k "$kver"
        else
            note "skipping dkms with --root: on the device run dkms add/build/install -m gasket -v $GASKET_VERSION"
        fi
    else
        note "no --gasket-source: the apex driver is not built; without it /dev/apex_0 never appears (CPU runs)"
    fi
    if [ -e "$(R /dev/apex_0)" ]; then
        note "/dev/apex_0 present"
    else
        note "/dev/apex_0 absent: reboot, then check with: ls -l /dev/apex_0 && $LFR models verify"
    fi
fi
if [ -n "$CORAL" ] && [ -z "$ROOT" ]; then
    run udevadm control --reload
    run udevadm trigger --subsystem-match=usb --subsystem-match=apex
    run "$(R "$LFR")" models verify --config "$(R /etc/lfr/appliance.toml)"
fi

note "installed. Pair the operator laptop (docs/appliance.md), then reboot or: systemctl start lfr-appliance"
