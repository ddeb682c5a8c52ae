"""The configuration refuses nonsense with the offending key's path in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.config import AppConfig, describe, load_config, parse_config
from firmware.errors import ConfigError


def test_defaults_follow_policy() -> None:
    cfg = AppConfig()
    assert cfg.match.threshold == 0.6


def test_file_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "a.toml"
    p.write_text('[match]\nthreshold = 0.7\n[models]\naccelerator = "cpu"\n')
    cfg = load_config(p)
    assert cfg.match.threshold == 0.7 and cfg.models.accelerator == "cpu"


@pytest.mark.parametrize("doc, fragment", [
    ({"match": {"treshold": 0.7}}, "unknown key match.treshold"),
    ({"bogus": {}}, "unknown key bogus"),
    ({"match": {"threshold": "high"}}, "match.threshold: expected float"),
    ({"match": {"threshold": 0.2}}, "match.threshold: 0.2 is below the minimum"),
    ({"models": {"accelerator": "gpu"}}, "models.accelerator: 'gpu' is not one of"),
    ({"models": {"threads": True}}, "models.threads: expected int"),
    ({"match": 3}, "match: expected a table"),
])
def test_refuses_nonsense(doc: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        parse_config(doc)


def test_bad_files_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[match\nthreshold=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_every_key_is_documented() -> None:
    rows = describe()
    assert rows and all(doc for _, doc, _ in rows), [p for p, d, _ in rows if not d]


@pytest.mark.parametrize("text, path", [
    ("[match]\nthreshold = nan\n", "match.threshold"),
    ("[pipeline]\ncooldown_s = inf\n", "pipeline.cooldown_s"),
    ("[link]\nheartbeat_interval = -inf\n", "link.heartbeat_interval"),
])
def test_non_finite_numbers_are_refused(tmp_path: Path, text: str, path: str) -> None:
    """TOML allows nan and inf; a range check alone lets nan through (every comparison with it is false)."""
    p = tmp_path / "nan.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=f"{path.replace('.', r'[.]')}: .* is not a finite number"):
        load_config(p)
