"""The systemd units and the udev rule in systemd/: checked by systemd's and udev's own parsers.

How (see docs/appliance.md, "Checking the units"):
- `systemd-analyze verify --root=ROOT UNIT`: ROOT is a throw-away tree holding a copy of this machine's
  /usr/lib/systemd/system (for targets like multi-user.target), our units in etc/systemd/system, and an
  empty executable at every absolute path an Exec line names (verify refuses a missing /opt/lfr/.venv/bin/lfr;
  with --root it looks for it inside ROOT). The `lfr` user need not exist: verify does not resolve User=.
  verify exits 0 even for "ignoring" warnings (a misspelt Type=), so any line of output fails the test.
- `udevadm test` reads rules only from the system directories, so it runs inside `unshare --mount
  --map-root-user` with a temporary directory bind-mounted over /etc/udev/rules.d: the host is untouched
  and, without real privileges, udevadm cannot change any device either.
- Every `lfr ...` command line in the units is parsed by `firmware.cli.main.build_parser()`.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from firmware.cli.main import build_parser

REPO = Path(__file__).resolve().parent.parent
UNITS_DIR = REPO / "systemd"
RULES = UNITS_DIR / "99-lfr-watchlist-usb.rules"
LFR = "/opt/lfr/.venv/bin/lfr"
INSTANCES = {"lfr-camera@.service": "cam0", "lfr-watchlist-import@.service": "sda1"}
UNIT_FILES = sorted(p for p in UNITS_DIR.iterdir() if p.suffix in (".service", ".timer"))
EXEC_KEYS = ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecStop", "ExecStopPost")

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None or
                                   not Path("/usr/lib/systemd/system").is_dir(),
                                   reason="systemd-analyze not installed (make deps installs it)")


def instance_name(path: Path) -> str:
    """The unit name to verify: templates get a sample instance (verify cannot load a bare template)."""
    return path.name.replace("@.", f"@{INSTANCES[path.name]}.") if "@." in path.name else path.name


def exec_lines(path: Path) -> list[tuple[str, list[str]]]:
    """(key, argv) of each Exec* line, with systemd's prefixes (-, +, !, @, :) removed from argv[0]."""
    lines = []
    for raw in path.read_text().splitlines():
        key, sep, value = raw.partition("=")
        if sep and key.strip() in EXEC_KEYS:
            argv = shlex.split(value)
            argv[0] = argv[0].lstrip("-+!@:")
            lines.append((key.strip(), argv))
    return lines


def make_root(root: Path, units: list[Path]) -> Path:
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    for unit in units:
        shutil.copy(unit, target / unit.name)
        for _, argv in exec_lines(unit):
            stub = root / argv[0].lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\nexit 0\n")
            stub.chmod(0o755)
    return root


def verify(root: Path, unit: str) -> tuple[int, str]:
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", unit],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, (result.stdout + result.stderr).strip()


def test_the_expected_units_are_there() -> None:
    names = {p.name for p in UNIT_FILES}
    assert names == {"lfr-appliance.service", "lfr-camera@.service", "lfr-purge.service", "lfr-purge.timer",
                     "lfr-watchlist-expiry.service", "lfr-watchlist-expiry.timer",
                     "lfr-watchlist-import@.service"}


@needs_systemd
@pytest.mark.parametrize("unit", UNIT_FILES, ids=lambda p: p.name)
def test_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    root = make_root(tmp_path, UNIT_FILES)
    status, output = verify(root, instance_name(unit))
    assert status == 0 and output == "", output


@needs_systemd
def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt Type= and a missing binary are both reported."""
    broken = tmp_path / "src" / "lfr-appliance.service"
    broken.parent.mkdir()
    broken.write_text((UNITS_DIR / broken.name).read_text().replace("Type=notify", "Type=notifyy"))
    root = make_root(tmp_path / "root", [broken])
    assert "Failed to parse service type" in verify(root, broken.name)[1]
    (root / LFR.lstrip("/")).unlink()
    status, output = verify(root, broken.name)
    assert status != 0 and "is not executable" in output


# `systemd-analyze security` exposure (0 = locked down, 100 = none) measured when the units were written:
# hub and cameras 21, purge and expiry 11, USB import 35 (its mount runs as root). A weakened unit fails.
EXPOSURE_LIMIT = {"lfr-appliance.service": 25, "lfr-camera@.service": 25, "lfr-purge.service": 15,
                  "lfr-watchlist-expiry.service": 15, "lfr-watchlist-import@.service": 40}


@needs_systemd
@pytest.mark.parametrize("unit", sorted(EXPOSURE_LIMIT))
def test_security_exposure_stays_low(unit: str, tmp_path: Path) -> None:
    root = make_root(tmp_path, UNIT_FILES)
    name = instance_name(UNITS_DIR / unit)
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={root}",
                             f"--threshold={EXPOSURE_LIMIT[unit]}", name],
                            capture_output=True, text=True, timeout=60, cwd=root / "etc/systemd/system")
    exposure = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
    assert exposure is not None, result.stdout + result.stderr
    assert result.returncode == 0, f"{name}: exposure {exposure.group(1)} above {EXPOSURE_LIMIT[unit] / 10}"


def test_appliance_units_are_hardened_and_supervised() -> None:
    hub = (UNITS_DIR / "lfr-appliance.service").read_text()
    camera = (UNITS_DIR / "lfr-camera@.service").read_text()
    for text in (hub, camera):
        for line in ("Type=notify", "Restart=on-failure", "User=lfr", "ProtectSystem=strict",
                     "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "DevicePolicy=closed",
                     "StateDirectory=lfr", "ConfigurationDirectory=lfr"):
            assert re.search(rf"^{re.escape(line)}$", text, re.M), line
        assert re.search(r"^WatchdogSec=\d+$", text, re.M)
        assert re.search(r"^RestrictAddressFamilies=", text, re.M)
    assert "LoadCredential=curve-secret:" in hub and "LoadCredential" not in camera
    assert f"ExecStartPre={LFR} run --validate-config" in hub
    assert "DeviceAllow=char-gpiochip rw" in hub
    for device in ("char-video4linux", "char-media", "char-dma_heap", "char-apex", "char-usb_device"):
        assert f"DeviceAllow={device} rw" in camera
    assert "BindsTo=lfr-appliance.service" in camera and "WantedBy=lfr-appliance.service" in camera


def test_usb_import_mounts_read_only_and_unmounts() -> None:
    text = (UNITS_DIR / "lfr-watchlist-import@.service").read_text()
    mounts = [argv for key, argv in exec_lines(UNITS_DIR / "lfr-watchlist-import@.service")
              if argv[0] == "/usr/bin/mount"]
    assert len(mounts) == 1
    options = set(mounts[0][mounts[0].index("-o") + 1].split(","))
    assert {"ro", "noexec", "nosuid", "nodev"} <= options
    assert "ExecStopPost=-+/usr/bin/umount" in text and "BindsTo=dev-%i.device" in text


def test_every_unit_runs_the_installed_lfr_binary() -> None:
    for unit in UNIT_FILES:
        for key, argv in exec_lines(unit):
            if argv[0].endswith("/lfr"):
                assert argv[0] == LFR, f"{unit.name} {key} runs {argv[0]}, not {LFR}"


LFR_COMMAND_LINES = [(unit.name, key, argv) for unit in UNIT_FILES for key, argv in exec_lines(unit)
                     if argv[0] == LFR]


@pytest.mark.parametrize("unit,key,argv", LFR_COMMAND_LINES, ids=lambda v: v if isinstance(v, str) else "")
def test_unit_command_lines_parse_with_the_lfr_cli(unit: str, key: str, argv: list[str]) -> None:
    """Each `lfr` line must name existing sub-commands and options (templates' %i/%I get a sample value)."""
    sample = INSTANCES.get(unit, "x")
    args = [a.replace("%i", sample).replace("%I", sample) for a in argv[1:]]
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{unit} {key}: `lfr {' '.join(args)}` is refused by the CLI: "
                        f"{errors.getvalue().strip()}")


def test_timers_start_their_services() -> None:
    for timer in UNITS_DIR.glob("*.timer"):
        text = timer.read_text()
        assert (UNITS_DIR / timer.name.replace(".timer", ".service")).exists()
        assert "Persistent=true" in text and "WantedBy=timers.target" in text
    assert "OnCalendar=daily" in (UNITS_DIR / "lfr-purge.timer").read_text()


# --- udev ---

def udev_rules_of(rule_text: str) -> list[str]:
    return [line for line in rule_text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_udev_rule_matches_usb_filesystems_and_starts_the_template() -> None:
    (rule,) = udev_rules_of(RULES.read_text())
    for fragment in ('ACTION=="add"', 'SUBSYSTEM=="block"', 'ENV{ID_BUS}=="usb"',
                     'ENV{ID_FS_USAGE}=="filesystem"', 'TAG+="systemd"',
                     'ENV{SYSTEMD_WANTS}+="lfr-watchlist-import@%k.service"'):
        assert fragment in rule
    assert "RUN" not in rule  # a long import must not run inside udev
    assert (UNITS_DIR / "lfr-watchlist-import@.service").exists()


def udevadm_test(tmp_path: Path, rules: dict[str, str], device: str) -> str:
    """`udevadm test` with only `rules` in /etc/udev/rules.d, in a private mount namespace."""
    rules_dir = tmp_path / "rules.d"
    rules_dir.mkdir()
    for name, text in rules.items():
        (rules_dir / name).write_text(text)
    script = f"mount --bind {shlex.quote(str(rules_dir))} /etc/udev/rules.d && " \
             f"udevadm test --action=add {shlex.quote(device)}"
    result = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script],
                            capture_output=True, text=True, timeout=60)
    if "Reading rules file" not in result.stdout + result.stderr:
        pytest.skip(f"udevadm test cannot run here (no user namespaces?): {result.stderr.strip()[-200:]}")
    return result.stdout + result.stderr


@pytest.fixture
def block_device() -> str:
    if shutil.which("udevadm") is None or shutil.which("unshare") is None:
        pytest.skip("udevadm or unshare not installed (make deps installs udev)")
    devices = sorted(Path("/sys/class/block").glob("*"))
    if not devices:
        pytest.skip("no block device in /sys to run udevadm test against")
    return str(devices[0])


def test_udevadm_parses_the_rule_without_error(tmp_path: Path, block_device: str) -> None:
    out = udevadm_test(tmp_path, {RULES.name: RULES.read_text()}, block_device)
    assert f"Reading rules file: /etc/udev/rules.d/{RULES.name}" in out
    assert f"{RULES.name}:" not in out, out  # udevadm reports problems as FILE:LINE
    assert "lfr-watchlist-import@" not in out  # not a USB stick: nothing started


def test_udevadm_reports_a_broken_rule(tmp_path: Path, block_device: str) -> None:
    """The check above can fail: a misspelt key is reported against its file and line."""
    out = udevadm_test(tmp_path, {RULES.name: RULES.read_text().replace("SUBSYSTEM==", "SUBSYTEM==")},
                       block_device)
    assert f"{RULES.name}:5" in out


def test_udevadm_action_names_the_template_instance(tmp_path: Path, block_device: str) -> None:
    """The rule's action part, with its USB matches swapped for this device's name, asks systemd for the
    import unit of that kernel device name."""
    (rule,) = udev_rules_of(RULES.read_text())
    action = rule[rule.index('TAG+="systemd"'):]
    kernel = Path(block_device).name
    out = udevadm_test(tmp_path, {RULES.name: f'ACTION=="add", KERNEL=="{kernel}", {action}\n'}, block_device)
    assert f"SYSTEMD_WANTS=lfr-watchlist-import@{kernel}.service" in out
    assert re.search(r"^TAGS=.*:systemd:", out, re.M)
