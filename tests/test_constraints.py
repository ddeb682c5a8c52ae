"""constraints.txt is the one pinned set: it pins every dependency setup.cfg names, and make, CI and install.sh
install with it."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            out[canonicalize_name(name)] = version
    return out


def test_every_runtime_and_test_dependency_is_pinned_within_its_bounds() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    wanted = [r for r in cfg["options"]["install_requires"].split("\n") + cfg["options.extras_require"]["test"]
              .split("\n") if r.strip()]
    pinned = pins()
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} (setup.cfg) has no pin in constraints.txt"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"{req.name}=={pinned[name]} does not satisfy setup.cfg's {req.specifier}"


def test_numpy_is_the_same_major_version_on_the_van_as_in_tests() -> None:
    import numpy

    assert pins()["numpy"].split(".")[0] == numpy.__version__.split(".")[0]
    assert "numpy<2" not in (REPO / "scripts/install.sh").read_text()


def test_make_ci_and_the_installer_install_with_the_constraints() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"pip install -q --constraint constraints.txt -e '\.\[test\]'", makefile)
    assert "make test" in (REPO / ".ci/run").read_text()
    assert '--constraint "$(R "$PREFIX/constraints.txt")"' in (REPO / "scripts/install.sh").read_text()
