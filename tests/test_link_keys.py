"""CURVE key files: private secret files, fingerprints, the paired-laptop list, and `lfr keys`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import zmq

from firmware.cli.main import main
from firmware.errors import KeyFileError
from firmware.link.keys import AllowedKeys, create_keypair, fingerprint, load_keypair, load_public


def test_keypair_files_round_trip_with_a_private_secret_file(tmp_path: Path) -> None:
    pair = create_keypair(tmp_path / "k")
    secret, public = tmp_path / "k" / "link.key_secret", tmp_path / "k" / "link.key"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert load_keypair(secret) == pair
    assert load_public(public) == pair.public
    assert "secret-key" not in public.read_text()
    assert zmq.curve_public(pair.secret) == pair.public
    with pytest.raises(KeyFileError, match="already exists"):
        create_keypair(tmp_path / "k")
    assert load_keypair(secret) == pair


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_secret_file_readable_by_others_is_refused_naming_file_and_mode(tmp_path: Path, mode: int) -> None:
    create_keypair(tmp_path)
    secret = tmp_path / "link.key_secret"
    os.chmod(secret, mode)
    with pytest.raises(KeyFileError) as caught:
        load_keypair(secret)
    assert str(secret) in str(caught.value) and f"{mode:04o}" in str(caught.value)


def test_secret_file_whose_halves_disagree_is_refused(tmp_path: Path) -> None:
    a, b = create_keypair(tmp_path / "a"), create_keypair(tmp_path / "b")
    secret = tmp_path / "a" / "link.key_secret"
    secret.write_text(secret.read_text().replace(a.public.decode(), b.public.decode()))
    with pytest.raises(KeyFileError, match="does not belong"):
        load_keypair(secret)


def test_fingerprint_is_stable_grouped_hex_and_differs_between_keys() -> None:
    public, _ = zmq.curve_keypair()
    other, _ = zmq.curve_keypair()
    fp = fingerprint(public)
    assert fp == fingerprint(public) != fingerprint(other)
    groups = fp.split(" ")
    assert len(groups) == 8 and all(len(g) == 4 and int(g, 16) >= 0 for g in groups)


def test_allowed_keys_pair_and_unpair_by_key_or_fingerprint(tmp_path: Path) -> None:
    allowed = AllowedKeys(tmp_path / "allowed")
    (k1, _), (k2, _) = zmq.curve_keypair(), zmq.curve_keypair()
    assert not allowed.callback("lfr-link", k1)  # nothing paired yet
    assert allowed.pair(k1, "laptop 1") and not allowed.pair(k1)
    allowed.pair(k2)
    assert allowed.callback("lfr-link", k1) and allowed.callback("lfr-link", k2)
    assert allowed.unpair(fingerprint(k1)[:9].upper()) == k1
    assert not allowed.is_allowed(k1) and allowed.is_allowed(k2)
    with pytest.raises(KeyFileError, match="no paired key"):
        allowed.unpair("ffff ffff ffff ffff")
    allowed.unpair(k2)
    assert allowed.entries() == {}


def test_a_corrupt_allowed_list_refuses_everyone(tmp_path: Path) -> None:
    allowed = AllowedKeys(tmp_path / "allowed")
    key, _ = zmq.curve_keypair()
    allowed.pair(key)
    (tmp_path / "allowed").write_text(f"{key.decode()}\nnot-a-key\n")
    assert not allowed.callback("lfr-link", key)


def test_lfr_keys_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(f'[link]\nsecret_key = "{tmp_path}/van/link.key_secret"\n'
                      f'allowed_keys = "{tmp_path}/van/allowed_laptops"\n')
    assert main(["keys", "init", "--config", str(config), "--json"]) == 0
    van = json.loads(capsys.readouterr().out)
    assert main(["keys", "init", "--dir", str(tmp_path / "laptop"), "--config", str(config)]) == 0
    laptop_fp = capsys.readouterr().out.split("fingerprint: ")[1].strip()
    assert main(["keys", "pair", "--laptop-key", str(tmp_path / "laptop" / "link.key"), "--config",
                 str(config)]) == 0
    assert laptop_fp in capsys.readouterr().out
    assert main(["keys", "show", "--config", str(config), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["fingerprint"] == van["fingerprint"]
    assert [p["fingerprint"] for p in shown["paired_laptops"]] == [laptop_fp]
    assert main(["keys", "unpair", "--laptop-key", laptop_fp, "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["keys", "unpair", "--laptop-key", laptop_fp, "--config", str(config)]) == 2
    assert "no paired key" in capsys.readouterr().err
    os.chmod(tmp_path / "van" / "link.key_secret", 0o644)
    assert main(["keys", "show", "--config", str(config)]) == 2
    assert "mode 0644" in capsys.readouterr().err


def test_a_flood_of_unpaired_handshakes_is_a_few_warnings(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Issue 13, finding 8: 300 handshakes with fresh unpaired keys wrote 294 warnings (the journal could be
    flooded before authentication). Now one warning a minute names how many were held back."""
    allowed = AllowedKeys(tmp_path / "allowed_keys")
    with caplog.at_level("WARNING"):
        for _ in range(300):
            assert not allowed.callback("global", zmq.curve_keypair()[0])
    assert len([r for r in caplog.records if "unpaired key" in r.getMessage()]) == 1
