"""Fixtures shared by the cbi_local tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cbi_local import warehouse


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A warehouse home holding a fresh warehouse created from the contracts."""
    warehouse.init(tmp_path / "warehouse.duckdb")
    return tmp_path


@pytest.fixture
def con(home: Path):
    """A connection to the fresh warehouse in `home`."""
    c = warehouse.connect(home / "warehouse.duckdb")
    yield c
    c.close()
