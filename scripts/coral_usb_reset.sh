#!/usr/bin/env bash
# Power-cycle the USB port of a Coral USB Accelerator after a camera unit failed (ExecStopPost=+ of
# lfr-camera@.service, installed by `install.sh --coral usb`). systemd sets $SERVICE_RESULT: nothing is done after a
# clean stop. The Coral is found in sysfs by its USB ids (1a6e:089a before libedgetpu loads its firmware, 18d1:9302
# after); its hub and port come from the device's sysfs name (1-1.3: hub 1-1, port 3; 2-1: root hub 2, port 1).
# `uhubctl --action cycle` switches the port off and on; on the restart the camera loads its models on the Edge TPU
# again, or on the CPU if it still does not answer (models.accelerator = auto). Never fails the unit: exit 0.
#   coral_usb_reset.sh [--sysfs DIR] [--dry-run]
set -uo pipefail

SYSFS=/sys/bus/usb/devices
DRY_RUN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --sysfs) SYSFS="${2:?--sysfs needs a directory}"; shift ;;
        --dry-run) DRY_RUN=1 ;;
        *) echo "coral_usb_reset.sh: unknown option $1" >&2; exit 0 ;;
    esac
    shift
done
if [ "${SERVICE_RESULT:-failure}" = success ]; then
    exit 0
fi
found=0
for dev in "$SYSFS"/*; do
    [ -f "$dev/idVendor" ] && [ -f "$dev/idProduct" ] || continue
    id="$(cat "$dev/idVendor"):$(cat "$dev/idProduct")"
    case "$id" in 1a6e:089a|18d1:9302) ;; *) continue ;; esac
    name="$(basename "$dev")"  # e.g. 1-1.3 or 2-1
    case "$name" in
        *.*) location="${name%.*}"; port="${name##*.}" ;;
        *-*) location="${name%-*}"; port="${name##*-}" ;;
        *) continue ;;
    esac
    found=1
    echo "coral_usb_reset: ${SERVICE_RESULT:-failure}: power-cycling the Coral ($id) on hub $location port $port"
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ uhubctl --location $location --ports $port --action cycle --delay 2"
    elif ! command -v uhubctl >/dev/null; then
        echo "coral_usb_reset: uhubctl is not installed (install.sh --coral usb installs it)" >&2
    elif ! uhubctl --location "$location" --ports "$port" --action cycle --delay 2; then
        echo "coral_usb_reset: uhubctl could not cycle hub $location port $port (no per-port power switching?)" >&2
    fi
done
[ "$found" = 1 ] || echo "coral_usb_reset: no Coral USB Accelerator on the bus; the camera will run on the CPU"
exit 0
