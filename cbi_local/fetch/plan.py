"""`cbi fetch plan`: the exact Databento requests that would fill the warehouse's coverage gaps.

Protocol:
* The universe (roots, dataset, stype_in, parent suffix, first date) comes from the registry's
  `universe/databento_universe.yaml`.
* For each root x schema (ohlcv-1m/1h/1d) the sessions already held come from `cbi_local.coverage`
  (the series' first..last present session, minus its session gaps); every other CME session of the
  root (`calendars.sessions`) in [start, end] is missing. Hour gaps inside present sessions are NOT
  requested: Databento writes no bar for an hour without trades, so re-buying them buys nothing.
* A run of consecutive missing sessions becomes one window [open_utc of its first session,
  close_utc of its last): sessions never overlap, so nothing already held is requested again.
* Roots with the same schema and identical windows are merged into one request (several parent
  symbols), so every root of the plan ends with the same, uniform coverage of [start, end].
Read-only: runs on a read-only connection, touches no network and spends nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

from .. import calendars, coverage

SCHEMAS = {"ohlcv-1m": "1m", "ohlcv-1h": "1h", "ohlcv-1d": "1d"}


@dataclass(frozen=True)
class Universe:
    dataset: str
    stype_in: str
    parent_suffix: str
    start_date: dt.date
    schemas: tuple[str, ...]
    roots: tuple[str, ...]


def load_universe(path: Path) -> Universe:
    doc = yaml.safe_load(path.read_text())
    d = doc.get("defaults", {})
    schemas = tuple(d[k] for k in ("schema_1m", "schema_1h", "schema_1d") if k in d)
    return Universe(d["dataset"], d.get("stype_in", "parent"), d.get("parent_suffix", ".FUT"),
                    pd.Timestamp(d["start_date"]).date(), schemas, tuple(r["root"] for r in doc["roots"]))


@dataclass
class Request:
    dataset: str
    schema: str
    stype_in: str
    symbols: list[str]
    roots: list[str]
    start: str  # inclusive, UTC ISO
    end: str  # exclusive, UTC ISO
    first_session: str
    last_session: str
    sessions: int


@dataclass
class Plan:
    start: str
    end: str
    requests: list[Request] = field(default_factory=list)
    held_sessions: dict[str, int] = field(default_factory=dict)  # "ROOT ohlcv-1h" -> sessions already held
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "requests": [asdict(r) for r in self.requests],
                "held_sessions": self.held_sessions, "skipped": self.skipped}


def _held_mask(days: pd.Series, item: coverage.SeriesCoverage | None, assign_until: pd.Series) -> pd.Series:
    """Sessions of `days` that coverage says are held: inside the series' span and in no session gap."""
    if item is None or item.first is None:
        return pd.Series(False, index=days.index)
    first_ts, last_ts = (pd.Timestamp(v).tz_localize("UTC") for v in (item.first, item.last))
    # The session a bar belongs to is the first one whose assign_until is after the bar (the as-of rule).
    first_session = days[assign_until > first_ts].min()
    last_session = days[assign_until > last_ts].min()
    held = (days >= first_session) & (days <= last_session)
    for g in item.gaps:
        if g["kind"] == "sessions":
            held &= ~((days >= dt.date.fromisoformat(g["start"])) & (days <= dt.date.fromisoformat(g["end"])))
    return held


def build_plan(con: duckdb.DuckDBPyConnection, universe: Universe, roots: list[str] | None, schemas: list[str] | None,
               start: dt.date | None, end: dt.date) -> Plan:
    roots = list(roots or universe.roots)
    schemas = list(schemas or universe.schemas)
    unknown = [s for s in schemas if s not in SCHEMAS]
    if unknown:
        raise ValueError(f"unsupported schema(s) {', '.join(unknown)}: fetch plans {', '.join(SCHEMAS)}")
    start = start or universe.start_date
    plan = Plan(start.isoformat(), end.isoformat())
    known = []
    for r in roots:
        try:
            calendars.product_group(r)
            known.append(r)
        except calendars.UnknownRoot as exc:
            plan.skipped.append(f"{r}: {exc}")
    if not known:
        return plan
    items = {(c.series, c.schema): c for c in coverage.coverage(
        con, roots=known, schemas=tuple(SCHEMAS[s] for s in schemas), include_continuous=False, include_fred=False)}
    sess = calendars.sessions(known, start, end).to_pandas()
    windows: dict[tuple[str, str, str, str, str, int], list[str]] = {}
    for root in known:
        rs = sess[sess["root"] == root].sort_values("session_date").reset_index(drop=True)
        for schema in schemas:
            held = _held_mask(rs["session_date"], items.get((root, SCHEMAS[schema])), rs["assign_until_utc"])
            plan.held_sessions[f"{root} {schema}"] = int(held.sum())
            run_id = (held != held.shift()).cumsum()
            for _, run in rs[~held].groupby(run_id[~held]):
                key = (schema, run["open_utc"].iloc[0].isoformat(), run["close_utc"].iloc[-1].isoformat(),
                       run["session_date"].iloc[0].isoformat(), run["session_date"].iloc[-1].isoformat(), len(run))
                windows.setdefault(key, []).append(root)
    for (schema, w0, w1, s0, s1, n), rts in sorted(windows.items()):
        plan.requests.append(Request(universe.dataset, schema, universe.stype_in,
                                     [r + universe.parent_suffix for r in sorted(rts)], sorted(rts), w0, w1, s0, s1, n))
    return plan
