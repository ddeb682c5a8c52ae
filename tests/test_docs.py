"""Docs stay true: every `lfr` command is documented, the configuration page equals the code, and the code the
docs name exists."""

from __future__ import annotations

import argparse
import ast
import importlib
import re
from pathlib import Path

from firmware.cli.config_cmd import config_markdown
from firmware.cli.main import build_parser
from firmware.config import describe

DOCS = Path(__file__).resolve().parent.parent / "docs"


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "lfr") -> list[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    out = []
    for name, child in subs[0].choices.items():
        out += leaf_commands(child, f"{prefix} {name}")
    return out


def test_every_command_is_documented() -> None:
    text = (DOCS / "commands.md").read_text()
    missing = [c for c in leaf_commands(build_parser()) if f"`{c}" not in text]
    assert not missing, f"undocumented in docs/commands.md: {missing}"


def test_configuration_page_matches_the_code() -> None:
    assert (DOCS / "configuration.md").read_text() == config_markdown(), \
        "docs/configuration.md is stale: regenerate with `lfr config keys --markdown > docs/configuration.md`"


REPO = DOCS.parent
EXTERNAL_CALLS = {
    "face_locations": "face_recognition's API, the peer in docs/benchmarks.md",
    "max": "Python's builtin, in formulas",
    "token_urlsafe": "secrets.token_urlsafe",
    "wal_checkpoint": "SQLite's PRAGMA",
}
"""Calls the docs name that are not this project's code, each with where it comes from."""
FILE_SUFFIXES = {"py", "md", "toml", "js", "css", "html", "json", "csv", "sqlite3", "key", "key_secret"}
"""`name.suffix` in a code span is a file name, not code."""


def _defined_names() -> set[str]:
    """Every function, class, assigned name and attribute defined in firmware/ and scripts/ (Python), and every
    function and constant of the viewer's JavaScript."""
    names: set[str] = set()
    for path in [*REPO.glob("firmware/**/*.py"), *REPO.glob("scripts/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, ast.AnnAssign) else []
            names.update(t.id if isinstance(t, ast.Name) else t.attr for t in targets
                         if isinstance(t, (ast.Name, ast.Attribute)))
    for path in REPO.glob("firmware/**/*.js"):
        names.update(re.findall(r"(?:function|const|let)\s+(\w+)", path.read_text(encoding="utf-8")))
    return names


def _code_spans() -> list[tuple[str, str]]:
    return [(doc.name, span) for doc in [*sorted(DOCS.glob("*.md")), REPO / "README.md"]
            for span in re.findall(r"`([^`\n]+)`", doc.read_text(encoding="utf-8"))]


def _resolves(dotted: str) -> bool:
    """`firmware.a.b.c` (module, then attributes) exists."""
    parts = dotted.split(".")
    for i in range(len(parts), 1, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_the_code_docs_name_exists() -> None:
    """Regression (issue 16): docs named `pending_outbox()` and `ack()`, which no longer existed. Every call,
    `firmware.…` reference, `package.module.name` and repository path in a code span must exist."""
    defined = _defined_names()
    keys = {path.replace("[]", "") for path, _, _ in describe()}
    packages = {p.name for p in (REPO / "firmware").iterdir() if (p / "__init__.py").exists()}
    missing = []
    for doc, span in _code_spans():
        for call in re.findall(r"([A-Za-z_][\w.]*)\(", span):
            name = call.split(".")[-1]
            if name not in defined and name not in EXTERNAL_CALLS:
                missing.append(f"{doc}: {name}() in `{span}`")
        for dotted in re.findall(r"(?<![\w./])([a-z_]+(?:\.[A-Za-z_]\w*)+)", span):
            parts = dotted.split(".")
            if dotted in keys or parts[0] not in ({"firmware"} | packages) or parts[-1] in FILE_SUFFIXES:
                continue
            full = dotted if parts[0] == "firmware" else f"firmware.{dotted}"
            if (parts[0] == "firmware" or len(parts) > 2) and not _resolves(full):
                missing.append(f"{doc}: {dotted} in `{span}`")
            elif len(parts) == 2 and parts[1] not in defined and not _resolves(full):
                missing.append(f"{doc}: {dotted} in `{span}`")
        for path in re.findall(r"(?<![\w/.])((?:firmware|tests|scripts|systemd|models)/[\w./@*{},-]*[\w}]\*?)", span):
            options = re.sub(r"\{([^}]*)\}", lambda m: m.group(1).split(",")[0], path)
            if not list(REPO.glob(options)):
                missing.append(f"{doc}: path {path}")
    assert not missing, "docs name code that does not exist:\n" + "\n".join(sorted(set(missing)))
