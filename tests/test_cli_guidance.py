"""The `lfr` commands guide a new user instead of surprising them (issue 14): a missing configuration is
refused rather than defaulting to state under /var/lib, `config check` lists every error with a suggestion,
`--config` works before the command, `--sizes 1k` is read as the help writes it, and a second appliance on
the same ports is named as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import firmware.cli.common as common
from firmware.bench.loopback import loopback_config, make_keys
from firmware.cli.bench_match import parse_size
from firmware.cli.main import main
from firmware.errors import DataError, LinkError
from firmware.link.appliance_link import ApplianceLink
from firmware.store import outbox


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def no_installed_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LFR_CONFIG", raising=False)
    monkeypatch.setattr(common, "DEFAULT_CONFIG_PATH", tmp_path / "etc" / "appliance.toml")


def test_a_command_with_state_refuses_without_a_configuration(
        no_installed_config: None, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`lfr deployment start` without --config silently created /var/lib/lfr/lfr.sqlite3."""
    status, _, err = run(capsys, "deployment", "start", "--authority", "A", "--officer", "O", "--location", "L")
    assert status == 2 and err.strip() == f"lfr: error: {common.NO_CONFIG}"
    assert "LFR_CONFIG" in err and "--config" in err
    config = tmp_path / "a.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    monkeypatch.setenv("LFR_CONFIG", str(config))
    assert run(capsys, "deployment", "start", "--authority", "A", "--officer", "O", "--location", "L")[0] == 0
    assert (tmp_path / "state" / "lfr.sqlite3").exists()


def test_config_before_the_command_and_a_header_on_deployment_list(
        no_installed_config: None, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`lfr --config X deployment list` gave `invalid choice`."""
    config = tmp_path / "a.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n')
    status, out, _ = run(capsys, "--config", str(config), "deployment", "list")
    assert status == 0 and out.strip() == "no deployments"
    status, out, _ = run(capsys, "--config", str(config), "deployment", "list", "--json")
    assert status == 0 and json.loads(out) == {"deployments": []}


def test_config_check_reports_every_error_with_a_suggestion(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`lfr config check` stopped at the first error and offered no "did you mean"."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[paths]\nstate_dri = "/tmp/x"\n[match]\nthreshold = 7\n[viewr]\nport = 1\n'
                   '[viewer]\nport = "x"\n')
    status, out, err = run(capsys, "config", "check", str(bad))
    assert status == 1 and out == ""
    assert err.splitlines() == [
        f"{bad}: 4 errors",
        "  unknown key paths.state_dri in [paths]; did you mean state_dir?",
        "  match.threshold: 7.0 is above the maximum 0.99",
        "  unknown key viewr in top level; did you mean viewer?",
        "  viewer.port: expected int, got str 'x'"]
    good = tmp_path / "good.toml"
    good.write_text('[viewer]\nport = 8081\n')
    assert run(capsys, "config", "check", str(good)) == (0, f"{good}: configuration is valid\n", "")


def test_sizes_are_read_as_the_help_writes_them() -> None:
    """`lfr bench match --sizes 1k` refused the 1k its own help shows."""
    assert [parse_size(s) for s in ("1000", "1k", "10K", "100k", "1M", "2.5k")] == \
        [1000, 1000, 10_000, 100_000, 1_000_000, 2500]
    with pytest.raises(DataError, match="'ten' is not one"):
        parse_size("ten")


def test_a_second_appliance_on_the_same_ports_is_named(tmp_path: Path) -> None:
    """`lfr run` twice said "Address already in use" instead of "another appliance is running"."""
    keys = make_keys(tmp_path / "keys")
    first = ApplianceLink(loopback_config(keys), outbox.opener(tmp_path / "a.sqlite3"), when_decision=lambda d: None,
                          keypair=keys.appliance)
    try:
        taken = loopback_config(keys, first.alerts_port, first.preview_port)
        with pytest.raises(LinkError, match="ports .*: another appliance is running"):
            ApplianceLink(taken, outbox.opener(tmp_path / "b.sqlite3"), when_decision=lambda d: None,
                          keypair=keys.appliance)
    finally:
        first.close()


def test_config_check_names_a_file_that_is_not_utf8(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`lfr config check` read the file with its own copy of the TOML reader, which had no case for bytes
    that are not UTF-8: a Latin-1 file gave a traceback there while `load_config` named the problem."""
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[deployment]\nlocation = "Caf\u00e9"\n'.encode("latin-1"))
    status, out, err = run(capsys, "config", "check", str(latin1))
    assert status != 0 and out == ""
    assert "is not UTF-8 text" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
