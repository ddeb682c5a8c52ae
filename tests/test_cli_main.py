"""The `lfr` entry point: each command loads only its own module; help and unknown commands see them all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from firmware.cli.main import COMMANDS, build_parser, command_named, main


def test_the_command_is_found_after_global_options() -> None:
    assert command_named(["-v", "watchlist", "status"]) == "watchlist"
    assert command_named(["lights", "test"]) == "lights"
    assert command_named(["--help"]) is None
    assert command_named(["watchlst"]) is None
    assert command_named([]) is None


def test_every_listed_command_is_registered_by_its_module() -> None:
    """A module listed with a command it does not add would make that command unreachable."""
    for module, commands in COMMANDS:
        for command in commands:
            parser = build_parser(command)
            actions = [a for a in parser._actions if a.dest == "command"]
            assert command in actions[0].choices, f"{module} does not add `{command}`"  # type: ignore[operator]


def test_a_light_command_does_not_load_opencv_or_litert() -> None:
    code = ("import sys; from firmware.cli.main import main; status = main(['config', 'keys']); "
            "print(status, 'cv2' in sys.modules, 'ai_edge_litert' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.splitlines()[-1] == "0 False False"


def test_a_mistyped_command_is_refused_naming_the_real_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["watchlst", "status"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'watchlst'" in err and "'watchlist'" in err and "'run'" in err
