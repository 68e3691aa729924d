"""Fixtures shared by the cbi_local tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cbi_local import warehouse


@pytest.fixture
def con(tmp_path: Path):
    """A connection to a fresh warehouse created from the contracts."""
    path = tmp_path / "w.duckdb"
    warehouse.init(path)
    c = warehouse.connect(path)
    yield c
    c.close()
