"""Layering: the headless packages never import Textual (the UI stays in tui/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEADLESS = ("data_contracts", "cbi_local", "sync")


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
