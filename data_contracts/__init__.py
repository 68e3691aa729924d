"""Data contracts: every table declared once. DuckDB DDL, BigQuery schemas, Polars schemas
and validation all derive from these declarations."""

from __future__ import annotations

from .model import Column, Contract, FlatView, Partition, Rule, Source
from .tables import (
    dim,
    features,
    market_data,
    monitoring,
    ops,
    predictions,
    raw_intelligence,
    regimes,
    training,
)

LOCATION = "us-central1"

# The user's twelve BigQuery datasets; the warehouse mirrors each as a DuckDB schema.
DATASETS: dict[str, str] = {
    "raw_intelligence": "Macro, weather and positioning inputs.",
    "market_data": "Databento bars, continuous series, the Yahoo bridge.",
    "features": "Feature matrices built from canonical data.",
    "training": "Training runs and their metrics.",
    "predictions": "Forecasts ready to serve.",
    "monitoring": "Health checks, quarantine, dedup conflicts.",
    "api": "Views served to dashboards; never expose private rows.",
    "dim": "Reference dimensions (instruments).",
    "ops": "Batches, file manifest, sync journal.",
    "signals": "Derived trading signals.",
    "regimes": "Regime registry and the calendar derived from it.",
    "neural": "Neural-model artefacts.",
}

_MODULES = (market_data, dim, raw_intelligence, regimes, features, training, predictions, monitoring, ops)
CONTRACTS: tuple[Contract, ...] = tuple(c for m in _MODULES for c in m.CONTRACTS)
_BY_FQN = {c.fqn: c for c in CONTRACTS}
# Views declared beside the contracts they read (created by `cbi init`, never holding data).
VIEWS: tuple[FlatView, ...] = tuple(v for m in _MODULES for v in getattr(m, "VIEWS", ()))

if len(_BY_FQN) != len(CONTRACTS):  # pragma: no cover - guards a bad edit at import time
    raise RuntimeError("two contracts declare the same dataset.table")
for _c in CONTRACTS:
    if _c.dataset not in DATASETS:  # pragma: no cover
        raise RuntimeError(f"{_c.fqn}: unknown dataset {_c.dataset!r}")
for _v in VIEWS:
    if _v.source not in _BY_FQN or _v.fqn in _BY_FQN:  # pragma: no cover
        raise RuntimeError(f"{_v.fqn}: reads an undeclared table {_v.source!r} or shadows a table")


def get(fqn: str) -> Contract:
    """The contract for 'dataset.table'; a KeyError names the known tables on a typo."""
    try:
        return _BY_FQN[fqn]
    except KeyError:
        raise KeyError(f"no contract for {fqn!r}; known: {', '.join(sorted(_BY_FQN))}") from None


def in_dataset(dataset: str) -> list[Contract]:
    return [c for c in CONTRACTS if c.dataset == dataset]


__all__ = ["CONTRACTS", "DATASETS", "LOCATION", "VIEWS", "Column", "Contract", "FlatView", "Partition", "Rule", "Source", "get", "in_dataset"]
