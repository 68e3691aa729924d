"""Layering: the layers of pyproject.toml's import-linter contract hold, no module imports itself
back through others, and the headless packages never import Textual (the UI stays in tui/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
HEADLESS = ("data_contracts", "cbi_local", "sync")
PACKAGES = (*HEADLESS, "tui")


def test_the_layers_hold():
    """`lint-imports` (import-linter) with the contract in pyproject.toml, exactly as a developer runs it."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "import-linter is not installed (the dev extra installs it)"
    out = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0 and "Contracts: 1 kept, 0 broken." in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = len(index)
                stack.append(v)
                on.add(v)
            for j in range(i, len(edges[v])):
                w = edges[v][j]
                if w not in index:
                    work += [(v, j + 1), (w, 0)]
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
    return found


def test_no_import_cycles_between_modules():
    # grimp counts imports inside functions too: a cycle hidden in a function is still a cycle.
    assert _cycles(grimp.build_graph(*PACKAGES)) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for m in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(m)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.z", imported="a.x")
    assert _cycles(graph) == [["a.x", "a.y"]]


def test_headless_packages_never_import_textual():
    # Import every module of the headless packages in a fresh interpreter, then look.
    code = f"""
import importlib, pkgutil, sys
for name in {HEADLESS!r}:
    pkg = importlib.import_module(name)
    for mod in pkgutil.walk_packages(pkg.__path__, name + "."):
        importlib.import_module(mod.name)
bad = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
print(",".join(bad))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_no_textual_import_statement_in_headless_sources():
    for pkg in HEADLESS:
        for path in (REPO / pkg).rglob("*.py"):
            for line in path.read_text().splitlines():
                stripped = line.strip()
                assert not stripped.startswith(("import textual", "from textual")), f"{path}: {stripped}"


def test_transactions_go_through_warehouse_transaction():
    # One place decides commit and rollback: a hand-written BEGIN without a rollback path leaves
    # the connection inside a failed transaction when a statement raises.
    allowed = REPO / "cbi_local" / "warehouse.py"
    for pkg in HEADLESS + ("tui",):
        for path in (REPO / pkg).rglob("*.py"):
            if path == allowed:
                continue
            for n, line in enumerate(path.read_text().splitlines(), 1):
                for word in ('"BEGIN', '"COMMIT"', '"ROLLBACK"'):
                    assert word not in line, f"{path}:{n}: use cbi_local.warehouse.transaction(con)"
