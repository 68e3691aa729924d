"""The regime registry on the user's real files: weights, the derived calendar, overlaps, the legacy check."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml

from cbi_local.ingest.core import IngestRun
from cbi_local.ingest.registry import RegistryError, derive_calendar, ingest_registry, read_regimes



def _yaml(sample_data: Path) -> dict:
    return yaml.safe_load((sample_data / "registry" / "regime_weights.yaml").read_text())["regimes"]


def _regime_of(regimes: dict, day: dt.date) -> tuple[str, int]:
    """Independent oracle: the specific regime covering `day`, else the baseline."""
    hits = [
        (name, body["weight"]) for name, body in regimes.items()
        if name != "baseline" and dt.date.fromisoformat(body["start_date"]) <= day <= dt.date.fromisoformat(body["end_date"])
    ]
    assert len(hits) <= 1
    return hits[0] if hits else ("baseline", regimes["baseline"]["weight"])


def _ingest(con, registry_dir: Path, **kw):
    run = IngestRun(con)
    report = ingest_registry(con, registry_dir, run, **kw)
    return report, run.finish()


def test_weights_and_the_calendar_derived_from_the_yaml(con, sample_data: Path):
    regimes = _yaml(sample_data)

    report, summary = _ingest(con, sample_data / "registry")

    assert summary.as_dict()["balanced"]
    weights = {r[0]: r[1:] for r in con.execute(
        "SELECT regime_name, start_date, end_date, regime_weight FROM regimes.regime_weights").fetchall()}
    assert weights == {
        name: (dt.date.fromisoformat(b["start_date"]), dt.date.fromisoformat(b["end_date"]), b["weight"])
        for name, b in regimes.items()
    }
    # The span: 2000-01-01 (the price history's start) to the last day a specific regime covers, read
    # here from the YAML itself (trump_second_term's 2029-01-20), so live data after the legacy
    # calendar's 2025-12-31 still has its regime.
    first = dt.date(2000, 1, 1)
    last = max(dt.date.fromisoformat(b["end_date"]) for name, b in regimes.items() if name != "baseline")
    assert last == dt.date(2029, 1, 20)
    days = con.execute(
        "SELECT date, regime_name, regime_weight FROM regimes.regime_calendar ORDER BY date"
    ).fetchall()
    assert len(days) == (last - first).days + 1 == report.calendar_days == 10613
    assert (days[0][0], days[-1][0]) == (first, last)
    assert len({d for d, _, _ in days}) == len(days)
    for day, name, weight in days:
        assert (name, weight) == _regime_of(regimes, day), day
    # The registry's specific regimes leave no gap in the span: the baseline is never needed there.
    assert report.baseline_days == 0 and "baseline" not in {n for _, n, _ in days}
    # Lineage: the calendar is derived from (and traceable to) the YAML.
    assert con.execute("SELECT DISTINCT source, source_file FROM regimes.regime_calendar").fetchall() == [
        ("registry", str((sample_data / "registry" / "regime_weights.yaml").resolve()))
    ]


def test_baseline_fills_only_the_days_no_specific_regime_covers(con, sample_data: Path):
    regimes = read_regimes(sample_data / "registry" / "regime_weights.yaml")
    earliest = min(r.start_date for r in regimes if r.regime_name != "baseline")

    rows = derive_calendar(con, regimes, "registry", start=earliest - dt.timedelta(days=10), end=earliest + dt.timedelta(days=4)) \
        .select("date, regime_name, regime_weight, is_baseline").order("date").fetchall()

    assert [r[1] for r in rows[:10]] == ["baseline"] * 10 and all(r[3] for r in rows[:10])
    assert {r[2] for r in rows[:10]} == {next(r.regime_weight for r in regimes if r.regime_name == "baseline")}
    assert {r[1] for r in rows[10:]} == {"tech_bubble_1998_2000"} and not any(r[3] for r in rows[10:])


def test_overlapping_regimes_are_an_error_naming_both_and_nothing_is_recorded(con, tmp_path: Path, sample_data: Path):
    registry = tmp_path / "registry"
    shutil.copytree(sample_data / "registry", registry)
    text = (registry / "regime_weights.yaml").read_text()
    # Crafted bad input: covid_shock_2020 extended into covid_recovery_2021.
    block = text.index("  covid_shock_2020:")
    end = text.index("end_date: '2020-12-31'", block)
    (registry / "regime_weights.yaml").write_text(text[:end] + "end_date: '2021-02-15'" + text[end + len("end_date: '2020-12-31'"):])

    run = IngestRun(con)
    with pytest.raises(RegistryError) as err:
        ingest_registry(con, registry, run)
    run.finish()

    message = str(err.value)
    assert "covid_shock_2020" in message and "covid_recovery_2021" in message
    assert "2021-01-01..2021-02-15" in message
    for table in ("regimes.regime_weights", "regimes.regime_calendar", "ops.file_manifest"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


def test_the_legacy_parquet_copies_are_checked_and_never_loaded(con, sample_data: Path):
    registry = sample_data / "registry"
    regimes = _yaml(sample_data)

    report, _ = _ingest(con, registry)

    # Weights: the parquet still has the single 2024-2025 regime the YAML split in two.
    w = report.weights_vs_parquet
    parquet = {r[0] for r in duckdb.sql(f"SELECT regime FROM read_parquet('{registry / 'regime_weights.parquet'}')").fetchall()}
    assert not w["identical"]
    assert {d["regime"] for d in w["only_in_yaml"]} == set(regimes) - parquet
    assert {d["regime"] for d in w["only_in_parquet"]} == parquet - set(regimes)
    # Calendar: every legacy day compared with the derived one (independent oracle for the expected count).
    legacy = duckdb.sql(
        f"SELECT CAST(date AS DATE), regime, training_weight FROM read_parquet('{registry / 'regime_calendar.parquet'}')"
    ).fetchall()
    expected_disagree = [d for d, name, weight in legacy if (name, weight) != _regime_of(regimes, d)]
    c = report.calendar_vs_legacy
    assert c["legacy_days"] == len(legacy) == 9497
    assert c["disagree"] == len(expected_disagree) > 0
    assert c["agree"] + c["disagree"] + c["only_legacy"] == len(legacy)
    assert c["only_derived"] == {"days": 10613 - 9497, "span": ["2026-01-01", "2029-01-20"]}  # after the legacy end
    assert sum(g["days"] for g in c["disagreements"]) == c["disagree"]
    assert c["samples"] and c["samples"][0]["date"] == str(min(expected_disagree))
    assert c["samples"][0]["legacy"][0] != c["samples"][0]["derived"][0]
    # Never a second truth: nothing from the legacy calendar reached the warehouse.
    loaded = {r[0] for r in con.execute("SELECT DISTINCT regime_name FROM regimes.regime_calendar").fetchall()}
    assert not (loaded - set(regimes))


def test_rerun_adds_nothing(con, sample_data: Path):
    _ingest(con, sample_data / "registry")
    before = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("regimes.regime_weights", "regimes.regime_calendar")]

    report, summary = _ingest(con, sample_data / "registry")

    assert report.status == "unchanged"
    assert summary.as_dict()["totals"]["rows_read"] == 0
    assert [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("regimes.regime_weights", "regimes.regime_calendar")] == before
    assert report.calendar_vs_legacy["disagree"] > 0  # the check still reports on a rerun
