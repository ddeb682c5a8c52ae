"""Issue 13, finding 7: configuration that refuses nonsense an attacker or a typo could put there. Written
against `load_config` and `ConfigError` only, so they hold whatever validator implements them.

`nan` passed every range check (`watchlist.max_validity_hours = nan` let a 400-day bundle verify);
`db_file = "../../../etc/x"` was accepted; a file that is not UTF-8 gave a traceback; `viewer.host =
"0.0.0.0"` served the operator's page to the van LAN without a word."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.config import AppConfig, describe, load_config
from firmware.errors import ConfigError

FLOAT_KEYS = sorted(path for path, _, default in describe()
                    if isinstance(default, float) and not isinstance(default, bool) and "[]" not in path)
CAMERA_FLOAT_KEYS = sorted(path.split("[].", 1)[1] for path, _, default in describe()
                           if isinstance(default, float) and path.startswith("cameras[]."))


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "appliance.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _table(key: str, value: str) -> str:
    section, name = key.rsplit(".", 1)
    return f"[{section}]\n{name} = {value}\n"


def test_there_are_float_keys_to_check() -> None:
    assert len(FLOAT_KEYS) >= 10 and "watchlist.max_validity_hours" in FLOAT_KEYS


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_non_finite_numbers_are_refused_everywhere(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key.rsplit(".", 1)[1]):
        load_config(_write(tmp_path, _table(key, value)))


@pytest.mark.parametrize("key", CAMERA_FLOAT_KEYS)
def test_non_finite_numbers_are_refused_in_cameras(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(_write(tmp_path, f"[[cameras]]\nname = \"cam0\"\n{key} = nan\n"))


def test_nan_validity_no_longer_lets_a_long_window_through(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_validity_hours"):
        load_config(_write(tmp_path, "[watchlist]\nmax_validity_hours = nan\n"))


@pytest.mark.parametrize("key", ["storage.db_file", "viewer.db_file"])
@pytest.mark.parametrize("value", ["../../../etc/x", "/etc/x", "sub/../../x", "..", ".", "", "a\\\\..\\\\b",
                                   "x/y.sqlite3"])
def test_file_names_stay_inside_their_directory(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key.rsplit(".", 1)[1]):
        load_config(_write(tmp_path, _table(key, f'"{value}"')))


def test_a_plain_file_name_is_fine(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, '[storage]\ndb_file = "van-2.sqlite3"\n[viewer]\ndb_file = "v.db"\n'))
    assert (cfg.storage.db_file, cfg.viewer.db_file) == ("van-2.sqlite3", "v.db")


@pytest.mark.parametrize("raw", [b"[storage]\ndb_file = \"caf\xe9.sqlite3\"\n", b"\xff\xfe[\x00s\x00",
                                 b"# \xc3\x28\n"])
def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path, raw: bytes) -> None:
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(_write(tmp_path, raw))


def test_a_folder_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "van-laptop.local"])
def test_viewer_host_off_loopback_needs_an_explicit_opt_in(tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="allow_remote"):
        load_config(_write(tmp_path, f'[viewer]\nhost = "{host}"\n'))
    cfg = load_config(_write(tmp_path, f'[viewer]\nhost = "{host}"\nallow_remote = true\n'))
    assert cfg.viewer.host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_viewer_host_on_loopback_needs_nothing(tmp_path: Path, host: str) -> None:
    assert load_config(_write(tmp_path, f'[viewer]\nhost = "{host}"\n')).viewer.host == host


def test_the_defaults_pass() -> None:
    assert AppConfig().viewer.host == "127.0.0.1"
