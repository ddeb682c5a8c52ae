"""Dependencies between the packages of `firmware/` run one way: no package imports one that imports it back.

Every import counts, at module level or inside a function (a lazy import is still a dependency). The arrows
allowed are drawn in docs/architecture.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"


def _imported_modules(tree: ast.AST, package: tuple[str, ...] = ()) -> Iterator[str]:
    """Every absolute module name an import statement in `tree` names (`from firmware import x` gives
    `firmware.x`); relative imports are resolved against `package`, the importing module's package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join([*base, *([node.module] if node.module else [])])
            if module:
                yield module
                yield from (f"{module}.{alias.name}" for alias in node.names)


def package_graph(root: Path) -> dict[str, dict[str, set[str]]]:
    """package -> {imported package -> files that import it}, for the sub-packages (folders) of `root`."""
    packages = {p.name for p in root.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    graph: dict[str, dict[str, set[str]]] = {p: {} for p in packages}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) < 2 or parts[0] not in packages:
            continue  # top-level modules (config, errors) are leaves every package may use
        package = (root.name, *parts[:-1])
        for module in _imported_modules(ast.parse(path.read_text(encoding="utf-8"), str(path)), package):
            names = module.split(".")
            if names[0] == root.name and len(names) > 1 and names[1] in packages and names[1] != parts[0]:
                graph[parts[0]].setdefault(names[1], set()).add(str(path.relative_to(root.parent)))
    return graph


def find_cycles(graph: dict[str, dict[str, set[str]]]) -> list[list[str]]:
    """The strongly connected groups of more than one package (Tarjan), each sorted; empty when acyclic."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def describe(graph: dict[str, dict[str, set[str]]], group: list[str]) -> str:
    """Each arrow inside a cycle with the files that draw it, so the failure says what to cut."""
    arrows = [f"  {a} -> {b}: {', '.join(sorted(graph[a][b]))}" for a in group for b in group if b in graph[a]]
    return f"cycle between {', '.join(group)}:\n" + "\n".join(arrows)


def test_firmware_packages_have_no_import_cycle() -> None:
    graph = package_graph(FIRMWARE)
    assert {"store", "link", "watchlist", "pipeline", "cli"} <= set(graph)  # the walk saw the real tree
    assert "store" in graph["pipeline"] and "link" in graph["store"]  # and real arrows
    cycles = find_cycles(graph)
    assert not cycles, "\n".join(describe(graph, g) for g in cycles)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_planted_cycle_is_found(tmp_path: Path) -> None:
    """The walk finds a cycle through a lazy import inside a function, and names the files."""
    root = tmp_path / "firmware"
    _write(root / "__init__.py", "")
    _write(root / "errors.py", "")
    for pkg in ("store", "link", "viewer"):
        _write(root / pkg / "__init__.py", "")
    _write(root / "store" / "alerts.py", "from firmware.link.messages import Alert\nfrom firmware import errors\n")
    _write(root / "link" / "messages.py", "import json\n")
    _write(root / "link" / "worker.py", "def run():\n    from firmware.store import alerts\n")
    _write(root / "viewer" / "app.py", "import firmware.link.messages\nfrom ..store import alerts\n")
    graph = package_graph(root)
    assert find_cycles(graph) == [["link", "store"]]
    assert "firmware/link/worker.py" in describe(graph, ["link", "store"])


def test_a_one_way_tree_has_no_cycle(tmp_path: Path) -> None:
    root = tmp_path / "firmware"
    _write(root / "__init__.py", "")
    for pkg in ("store", "link"):
        _write(root / pkg / "__init__.py", "")
    _write(root / "store" / "alerts.py", "from firmware.link.messages import Alert\n")
    _write(root / "link" / "messages.py", "from firmware.link import keys\n")
    assert find_cycles(package_graph(root)) == []


@pytest.mark.parametrize("source, expected", [
    ("from firmware import store", {"firmware", "firmware.store"}),
    ("from .db import x", {"firmware.store.db", "firmware.store.db.x"}),
    ("from ..link import keys", {"firmware.link", "firmware.link.keys"}),
    ("import firmware.link.keys as k", {"firmware.link.keys"}),
])
def test_imported_modules(source: str, expected: set[str]) -> None:
    """Imports as written in a module of `firmware.store`, absolute and relative."""
    assert set(_imported_modules(ast.parse(source), ("firmware", "store"))) == expected
