"""`lfr keys signing-init`, `lfr watchlist build` and `lfr watchlist verify` end to end, through `main`."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from bundle_helpers import members_of, write_members

from firmware.cli.main import main
from firmware.config import parse_config
from firmware.errors import ConfigError
from firmware.watchlist.limits import MIB, BundleLimits
from firmware.watchlist.manifest import BASE_CATEGORIES, allowed_categories, format_instant


@pytest.fixture()
def hq(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Keys made with the CLI, the public key placed in a trusted-signers folder, a config naming it."""
    assert main(["keys", "signing-init", "--out", str(tmp_path / "hq"), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    trusted = tmp_path / "trusted-signers"
    trusted.mkdir()
    (trusted / "hq.pub").write_bytes(Path(made["public_key"]).read_bytes())
    (trusted / "hq.pub").chmod(0o644)
    config = tmp_path / "appliance.toml"
    config.write_text(f'[watchlist]\ntrusted_keys_dir = "{trusted}"\n'
                      'extra_categories = ["bail conditions"]\n')
    return {**made, "trusted": str(trusted), "config": str(config)}


@pytest.fixture()
def cli_bundle(tmp_path: Path, images_dir: Path, hq: dict[str, str],
               capsys: pytest.CaptureFixture[str]) -> Path:
    rows = [f"B-{i},Person {i},{'bail conditions' if i == 0 else 'warrant'},Magistrates ref {i},{p.name}"
            for i, p in enumerate(sorted(images_dir.iterdir()))]
    csv_path = tmp_path / "entries.csv"
    csv_path.write_text("id,name,category,reason,image\n" + "\n".join(rows) + "\n")
    now = time.time()
    out = tmp_path / "stick" / "today.lfrw"
    code = main(["watchlist", "build", "--images", str(images_dir), "--entries", str(csv_path),
                 "--deployment", "OP-CLI-1", "--valid-from", format_instant(now - 3600),
                 "--valid-until", format_instant(now + 8 * 3600), "--key", hq["private_key"],
                 "--out", str(out), "--config", hq["config"], "--json"])
    assert code == 0, capsys.readouterr().err
    built = json.loads(capsys.readouterr().out)
    assert built["bundle_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert built["signer_fingerprint"] == hq["fingerprint"]
    assert built["by_category"] == {"bail conditions": 1, "warrant": len(rows) - 1}
    return out


def test_signing_init_prints_the_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "signing-init", "--out", str(tmp_path / "k")]) == 0
    out = capsys.readouterr().out
    assert "fingerprint:" in out and (tmp_path / "k" / "lfr-signing.key").exists()
    assert main(["keys", "signing-init", "--out", str(tmp_path / "k")]) == 2
    assert "lfr: error:" in capsys.readouterr().err


def test_verify_a_stick(cli_bundle: Path, hq: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watchlist", "verify", str(cli_bundle.parent), "--config", hq["config"]]) == 0
    out = capsys.readouterr().out
    assert "bundle is valid" in out and "deployment ref: OP-CLI-1" in out
    assert f"signer fingerprint: {hq['fingerprint']}" in out
    assert hashlib.sha256(cli_bundle.read_bytes()).hexdigest() in out


def test_verify_json(cli_bundle: Path, hq: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watchlist", "verify", str(cli_bundle), "--trusted-keys", hq["trusted"],
                 "--config", hq["config"], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is True and doc["entries"] >= 2 and doc["signer_fingerprint"] == hq["fingerprint"]


def test_verify_refuses_a_tampered_bundle(cli_bundle: Path, hq: dict[str, str], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    m = members_of(cli_bundle)
    name = [n for n in m if n.startswith("images/")][0]
    m[name] = m[name][::-1]
    bad = write_members(tmp_path / "bad.lfrw", m)
    assert main(["watchlist", "verify", str(bad), "--config", hq["config"]]) == 2
    assert "lfr: error: entry 'B-0': image images/0001.jpg does not match its signed SHA-256" in \
        capsys.readouterr().err


def test_verify_without_the_extra_category_in_config(cli_bundle: Path, hq: dict[str, str], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A van that was not configured for a category refuses a list that uses it."""
    plain = tmp_path / "plain.toml"
    plain.write_text(f'[watchlist]\ntrusted_keys_dir = "{hq["trusted"]}"\n')
    assert main(["watchlist", "verify", str(cli_bundle), "--config", str(plain)]) == 2
    assert "'bail conditions' is not one of" in capsys.readouterr().err


def test_build_refuses_a_loose_key(hq: dict[str, str], images_dir: Path, entries_csv: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    Path(hq["private_key"]).chmod(0o644)
    code = main(["watchlist", "build", "--images", str(images_dir), "--entries", str(entries_csv),
                 "--deployment", "X", "--valid-from", "2026-11-22T06:00:00Z", "--valid-until",
                 "2026-11-22T20:00:00Z", "--key", hq["private_key"], "--out", str(tmp_path / "x.lfrw"),
                 "--config", hq["config"]])
    assert code == 2 and "chmod 600" in capsys.readouterr().err
    assert not (tmp_path / "x.lfrw").exists()


def test_watchlist_config_section() -> None:
    cfg = parse_config({"watchlist": {"max_image_mib": 4, "max_entries": 10, "max_image_megapixels": 2.5,
                                      "extra_categories": ["bail conditions"]}}).watchlist
    limits = BundleLimits.from_config(cfg)
    assert (limits.max_member_bytes, limits.max_entries, limits.max_image_pixels) == (4 * MIB, 10, 2_500_000)
    assert allowed_categories(cfg.extra_categories) == (*BASE_CATEGORIES, "bail conditions")
    with pytest.raises(ConfigError, match="watchlist.max_image_megapixels: 1000.0 is above the maximum"):
        parse_config({"watchlist": {"max_image_megapixels": 1000}})
    with pytest.raises(ConfigError, match=r"watchlist.extra_categories\[0\]: expected str"):
        parse_config({"watchlist": {"extra_categories": [3]}})
    with pytest.raises(ConfigError, match="not a usable category name"):
        allowed_categories(["  "])
