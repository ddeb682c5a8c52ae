"""scripts/install.sh in --dry-run: the actions it would take on a fresh Pi and on one already installed."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from firmware.config import parse_config

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "install.sh"


def dry_run(root: Path | None, *options: str) -> tuple[list[list[str]], list[str]]:
    """(actions as argv lists, notes) printed by `install.sh --dry-run`."""
    argv = ["bash", str(SCRIPT), "--dry-run", *options] + (["--root", str(root)] if root else [])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    lines = result.stdout.splitlines()
    actions = [shlex.split(line[2:]) for line in lines if line.startswith("+ ")]
    notes = [line[2:] for line in lines if line.startswith("# ")]
    assert len(actions) + len(notes) == len(lines), result.stdout
    return actions, notes


def snapshot(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def installed_root(root: Path) -> Path:
    """A root that looks like a Pi on which the installer already ran."""
    (root / "etc/lfr/link").mkdir(parents=True)
    (root / "etc/lfr/appliance.toml").write_text("[match]\nthreshold = 0.7\n")
    (root / "etc/lfr/link/link.key_secret").write_text("secret\n")
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/bash\n"
                                     "lfr:x:999:999::/var/lib/lfr:/usr/sbin/nologin\n")
    (root / "etc/group").write_text("video:x:44:\ngpio:x:993:\nplugdev:x:46:\nlfr:x:999:\n")
    python = root / "opt/lfr/.venv/bin/python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    return root


def test_fresh_install_actions(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    actions, notes = dry_run(tmp_path, "--camera", "front", "--camera", "rear")
    assert snapshot(tmp_path) == before, "--dry-run changed the file system"
    r = str(tmp_path)
    joined = [" ".join(a) for a in actions]
    assert any("skipping apt-get with --root" in n and "python3-picamera2" in n for n in notes)
    useradd = next(a for a in actions if a[0] == "useradd")
    assert {"--system", "--no-create-home"} <= set(useradd) and useradd[-1] == "lfr"
    assert useradd[useradd.index("--shell") + 1] == "/usr/sbin/nologin"
    assert ["python3", "-m", "venv", "--system-site-packages", f"{r}/opt/lfr/.venv"] in actions
    pip = next(a for a in actions if a[0] == f"{r}/opt/lfr/.venv/bin/pip")
    assert f"{r}/opt/lfr/src" in pip and "simplejpeg" in pip
    assert pip[pip.index("--constraint") + 1] == f"{r}/opt/lfr/constraints.txt"
    assert ["install", "-m", "0644", f"{REPO}/constraints.txt", f"{r}/opt/lfr/constraints.txt"] in actions
    assert f"install -d -m 0750 -o root -g lfr {r}/etc/lfr/link" in joined
    assert f"install -d -m 0750 -o lfr -g lfr {r}/var/lib/lfr" in joined
    assert any(a[:2] == ["install", "-m"] and a[-1] == f"{r}/etc/lfr/appliance.toml" for a in actions)
    assert [f"{r}/opt/lfr/.venv/bin/lfr", "keys", "init", "--config", f"{r}/etc/lfr/appliance.toml",
            "--dir", f"{r}/etc/lfr/link"] in actions
    for unit in (REPO / "systemd").glob("lfr-*"):
        assert f"install -m 0644 {unit} {r}/etc/systemd/system/" in joined
    assert f"install -m 0644 {REPO}/systemd/99-lfr-watchlist-usb.rules {r}/etc/udev/rules.d/" in joined
    assert actions[-1] == ["systemctl", f"--root={r}", "enable", "lfr-appliance.service",
                           "lfr-purge.timer", "lfr-watchlist-expiry.timer", "lfr-camera@front.service",
                           "lfr-camera@rear.service"]
    # the user exists before anything is given to it
    assert joined.index(next(j for j in joined if j.startswith("useradd"))) < \
        joined.index(f"install -d -m 0750 -o lfr -g lfr {r}/var/lib/lfr")


def test_second_run_keeps_config_keys_user_and_venv(tmp_path: Path) -> None:
    root = installed_root(tmp_path)
    actions, notes = dry_run(root)
    assert "keeping existing /etc/lfr/appliance.toml" in notes
    assert "keeping existing CURVE keys in /etc/lfr/link" in notes
    assert "user lfr exists" in notes
    assert any(n.startswith("venv /opt/lfr/.venv exists") for n in notes)
    assert not [a for a in actions if a[0] == "useradd" or a[-2:] == ["keys", "init"] or "venv" in a[:3]]
    assert not [a for a in actions if a and a[-1] == f"{root}/etc/lfr/appliance.toml" and a[0] == "install"]
    groups = [a[-2] for a in actions if a[0] == "usermod"]
    assert groups == ["video", "gpio", "plugdev"]
    assert (root / "etc/lfr/appliance.toml").read_text() == "[match]\nthreshold = 0.7\n"


def test_on_the_pi_itself_apt_and_reloads_run(tmp_path: Path) -> None:
    deb, _ = coral_sources(tmp_path)
    actions, _ = dry_run(None, "--coral", "usb", "--libedgetpu-deb", str(deb))
    apt = next(a for a in actions if "apt-get" in a and "install" in a)
    assert {"python3-picamera2", "python3-venv", "python3-lgpio", "uhubctl", str(deb.resolve())} <= set(apt)
    assert "dkms" not in apt
    assert ["systemctl", "daemon-reload"] in actions and ["udevadm", "control", "--reload"] in actions
    assert not any("sources.list.d" in " ".join(a) for a in actions), "no package source outside the archive"


def test_other_prefix_rewrites_the_units(tmp_path: Path) -> None:
    actions, _ = dry_run(tmp_path, "--prefix", "/srv/lfr")
    writes = [a[1] for a in actions if a[0] == "write"]
    assert f"{tmp_path}/etc/systemd/system/lfr-appliance.service" in writes
    assert ["python3", "-m", "venv", "--system-site-packages", f"{tmp_path}/srv/lfr/.venv"] in actions


@pytest.mark.parametrize("options,message", [
    (["--camera", "front cam"], "camera name 'front cam'"),
    (["--coral", "m2"], "--coral must be usb or pci"),
    (["--frobnicate"], "unknown option --frobnicate"),
])
def test_bad_options_are_refused(options: list[str], message: str) -> None:
    result = subprocess.run(["bash", str(SCRIPT), "--dry-run", *options], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and message in result.stderr


def test_default_config_is_valid_and_keys_match_the_unit() -> None:
    with (REPO / "scripts" / "appliance.default.toml").open("rb") as fh:
        config = parse_config(tomllib.load(fh))
    assert config.match.threshold == 0.6 and config.gpio.pin_factory == "auto"
    script = SCRIPT.read_text()
    secret = re.search(r"^KEY_SECRET=(\S+)$", script, re.M)
    assert secret is not None
    unit = (REPO / "systemd" / "lfr-appliance.service").read_text()
    assert f"LoadCredential=curve-secret:{secret.group(1)}" in unit


def coral_sources(tmp_path: Path) -> tuple[Path, Path]:
    """Stand-ins for what the installer is given: a libedgetpu .deb and a copy of google/gasket-driver."""
    deb = tmp_path / "libedgetpu1-std_16.0tf2.19.1-1.bookworm_arm64.deb"
    deb.write_bytes(b"!<arch>\n")
    gasket = tmp_path / "gasket-driver"
    (gasket / "src").mkdir(parents=True)
    (gasket / "src/Makefile").write_text("obj-m += gasket.o apex.o\n")
    return deb, gasket


def test_coral_usb_dry_run_on_a_fake_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    deb, _ = coral_sources(tmp_path)
    before = snapshot(root)
    actions, notes = dry_run(root, "--coral", "usb", "--libedgetpu-deb", str(deb))
    assert snapshot(root) == before, "--dry-run changed the file system"
    r = str(root)
    assert any("skipping apt-get" in n and "uhubctl" in n and str(deb) in n for n in notes)
    assert ["write", f"{r}/etc/udev/rules.d/71-lfr-coral-usb.rules", "0644"] in actions
    rules = [n[2:] for n in notes if n.startswith("| SUBSYSTEMS==")]
    assert rules == [f'SUBSYSTEMS=="usb", ATTRS{{idVendor}}=="{v}", ATTRS{{idProduct}}=="{p}", MODE="0664", '
                     'GROUP="plugdev"' for v, p in (("1a6e", "089a"), ("18d1", "9302"))]
    assert ["write", f"{r}/etc/systemd/system/lfr-camera@.service.d/coral-usb.conf", "0644"] in actions
    assert "| ExecStopPost=+/opt/lfr/src/scripts/coral_usb_reset.sh" in notes
    assert not any("apex" in " ".join(a) for a in actions), "a USB Coral needs no apex driver"
    assert not any("packages.cloud.google.com" in line for line in [*notes, *(" ".join(a) for a in actions)])


def test_coral_pci_dry_run_on_a_fake_root(tmp_path: Path) -> None:
    root = installed_root(tmp_path / "root")
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/config.txt").write_text("[all]\ndtparam=pciex1\n")
    deb, gasket = coral_sources(tmp_path)
    actions, notes = dry_run(root, "--coral", "pci", "--libedgetpu-deb", str(deb), "--gasket-source",
                             str(gasket), "--pcie-hat-overlay", "pineboards-hat-ai")
    r = str(root)
    # only the boot lines that are missing are appended
    [append] = [a for a in actions if a[:2] == ["append", f"{r}/boot/firmware/config.txt"]]
    assert append[2:] == ["", "[all]", "# Coral PCIe (scripts/install.sh)", "kernel=kernel8.img",
                          "dtoverlay=pcie-32bit-dma-pi5", "dtoverlay=pineboards-hat-ai"]
    assert "config.txt changed: reboot before /dev/apex_0 can appear" in notes
    assert ["groupadd", "--root", r, "--system", "apex"] in actions
    assert ["usermod", "--root", r, "--append", "--groups", "apex", "lfr"] in actions
    assert ["write", f"{r}/etc/udev/rules.d/65-apex.rules", "0644"] in actions
    assert '| SUBSYSTEM=="apex", MODE="0660", GROUP="apex"' in notes
    assert ["cp", "-R", f"{gasket}/src", f"{r}/usr/src/gasket-1.0"] in actions
    assert '| BUILT_MODULE_NAME[1]="apex"' in notes
    assert any("skipping dkms with --root" in n for n in notes)
    assert "| SupplementaryGroups=apex" in notes
    assert any(n.startswith("/dev/apex_0 absent: reboot") for n in notes)
    assert any("set edgetpu_device" in n for n in notes), "an existing config is not edited, but named"
    (root / "dev").mkdir()
    (root / "dev/apex_0").write_text("")
    assert "/dev/apex_0 present" in dry_run(root, "--coral", "pci")[1]


def test_coral_pci_on_the_device_builds_the_driver_and_checks(tmp_path: Path) -> None:
    """Without --root (as on the Pi; --dry-run only prints): apt with DKMS, the kernel8 headers and the .deb,
    dkms build and install, udev reload, and `lfr models verify` to show the delegate's state."""
    deb, gasket = coral_sources(tmp_path)
    actions, notes = dry_run(None, "--coral", "pci", "--libedgetpu-deb", str(deb), "--gasket-source", str(gasket))
    apt = next(a for a in actions if "apt-get" in a and "install" in a)
    assert {"dkms", "linux-headers-rpi-v8", str(deb.resolve())} <= set(apt)
    assert any(a[:2] == ["dkms", "build"] and "gasket" in a for a in actions)
    assert any(a[:2] == ["dkms", "install"] for a in actions)
    assert ["udevadm", "control", "--reload"] in actions
    assert actions[-1][-3:] == ["verify", "--config", "/etc/lfr/appliance.toml"]


def test_coral_without_libedgetpu_says_the_cpu_runs(tmp_path: Path) -> None:
    _, notes = dry_run(tmp_path, "--coral", "usb")
    assert any("no --libedgetpu-deb" in n and "runs on the CPU" in n for n in notes)


def test_coral_usb_reset_cycles_the_port_only_after_a_failure(tmp_path: Path) -> None:
    script = REPO / "scripts/coral_usb_reset.sh"
    dev = tmp_path / "1-1.3"
    dev.mkdir()
    (dev / "idVendor").write_text("18d1\n")
    (dev / "idProduct").write_text("9302\n")
    other = tmp_path / "1-1.2"
    other.mkdir()
    (other / "idVendor").write_text("046d\n")
    (other / "idProduct").write_text("0825\n")

    def run(result: str) -> str:
        import os

        out = subprocess.run(["bash", str(script), "--sysfs", str(tmp_path), "--dry-run"], capture_output=True,
                             text=True, timeout=30, env={**os.environ, "SERVICE_RESULT": result})
        assert out.returncode == 0
        return out.stdout

    assert run("success") == ""
    assert "+ uhubctl --location 1-1 --ports 3 --action cycle --delay 2" in run("watchdog")
    (dev / "idProduct").write_text("0000\n")
    assert "no Coral USB Accelerator on the bus" in run("exit-code")
