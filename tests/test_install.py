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
    actions, _ = dry_run(None, "--coral", "usb")
    apt = next(a for a in actions if "apt-get" in a and "install" in a)
    assert {"python3-picamera2", "python3-venv", "python3-lgpio", "libedgetpu1-std"} <= set(apt)
    assert "gasket-dkms" not in apt
    assert ["systemctl", "daemon-reload"] in actions and ["udevadm", "control", "--reload"] in actions
    assert any(a[:2] == ["write", "/etc/apt/sources.list.d/coral-edgetpu.list"] for a in actions)


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
