"""What does a path hold? Databento downloads, FRED series, the regime registry, or legacy exports.

Detection looks at names and at most a header line, never at whole files, so it is instant
on a drive with thousands of daily files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

DATABENTO_NAME = re.compile(r"\.(ohlcv-1[smhd]|definition|statistics|status|trades|mbp-1|tbbo)\.(json|csv|dbn)(\.zst)?$")
LEGACY_NAME = re.compile(r"^[a-z_]+\.[a-z0-9_]+\.parquet$")


class UnknownInput(ValueError):
    pass


def _is_fred_csv(path: Path) -> bool:
    if path.suffix != ".csv" or path.name == "metadata.csv":
        return False
    with path.open("rb") as fh:
        return fh.readline().strip().lower() == b"date,value"


def kind_of(path: Path) -> str:
    """'databento', 'fred', 'registry' or 'legacy'; UnknownInput names the path otherwise."""
    if path.is_file():
        if DATABENTO_NAME.search(path.name):
            return "databento"
        if _is_fred_csv(path):
            return "fred"
        if path.name in ("regime_weights.yaml", "regime_weights.yml"):
            return "registry"
        if LEGACY_NAME.match(path.name):
            return "legacy"
    elif path.is_dir():
        if (path / "regime_weights.yaml").exists():
            return "registry"
        names = [p.name for p in path.iterdir()]
        if any(DATABENTO_NAME.search(n) for n in names) or any(
            (path / n).is_dir() and n.upper().startswith(("GLBX", "XNAS", "DBEQ")) for n in names
        ) or (path / "symbology.json").exists():
            return "databento"
        if (path / "metadata.csv").exists() or any(_is_fred_csv(path / n) for n in names if n.endswith(".csv")):
            return "fred"
        if any(LEGACY_NAME.match(n) for n in names):
            return "legacy"
    elif not path.exists():
        raise UnknownInput(f"{path}: no such file or directory")
    raise UnknownInput(
        f"{path}: not recognised as Databento (glbx-mdp3-*.ohlcv-1h.json, *.dbn.zst ...), FRED (date,value CSV), "
        "the regime registry (regime_weights.yaml) or legacy BigQuery exports (dataset.table.parquet)"
    )


def group_by_kind(paths: Iterable[Path]) -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for p in paths:
        groups.setdefault(kind_of(p), []).append(p)
    return groups
