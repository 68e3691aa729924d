"""FRED CSVs on the real sample series: exact counts, blank -> NULL, frequency from metadata, idempotency."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path


from cbi_local.ingest.core import IngestRun
from cbi_local.ingest.fred import ingest_fred, series_files



def _expected(path: Path) -> tuple[int, int]:
    """(observations, blank values) read straight from the file."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return len(rows), sum(1 for r in rows if r["value"].strip() == "")


def _metadata(folder: Path) -> dict[str, str]:
    with (folder / "metadata.csv").open(newline="") as fh:
        return {r["series_id"]: r["freq"] for r in csv.DictReader(fh)}


def _run(con, paths):
    run = IngestRun(con)
    result = ingest_fred(con, paths, run)
    return result, run.finish()


def test_real_series_load_with_exact_counts_and_blank_values_as_null(con, sample_data: Path):
    folder = sample_data / "fred"
    files = series_files([folder])
    assert {f.stem for f in files} >= {"DGS10", "DGS2", "VIXCLS", "FEDFUNDS", "CPIAUCSL", "USREC", "DTWEXBGS"}
    assert all(f.name != "metadata.csv" for f in files)

    result, summary = _run(con, [folder])

    s = summary.as_dict()
    assert s["balanced"] and not result.errors
    assert s["totals"]["rows_quarantined"] == 0 and s["totals"]["rows_duplicate"] == 0
    got = {
        sid: (n, nulls, freqs)
        for sid, n, nulls, freqs in con.execute(
            "SELECT series_id, count(*), count(*) FILTER (WHERE value IS NULL), list(DISTINCT frequency) "
            "FROM raw_intelligence.fred_economic GROUP BY 1"
        ).fetchall()
    }
    meta = _metadata(folder)
    assert set(got) == {f.stem for f in files}
    for f in files:
        rows, blanks = _expected(f)
        n, nulls, freqs = got[f.stem]
        assert (n, nulls) == (rows, blanks), f.name  # every line loaded; blanks kept as NULL, none invented
        assert s["files"][str(f)]["rows_loaded"] == rows
        # Frequency only where metadata.csv lists the series; otherwise NULL, never guessed.
        assert freqs == [meta.get(f.stem)], f.name
    assert got["DGS10"][1] > 0  # the sample really has missing observations
    assert {sid for sid in got if got[sid][2] != [None]} == set(meta) & set(got)
    # A blank line is a NULL-value row on its real date (DGS10 has no 1980-01-01 observation).
    assert con.execute(
        "SELECT value FROM raw_intelligence.fred_economic WHERE series_id = 'DGS10' AND date = DATE '1980-01-01'"
    ).fetchall() == [(None,)]
    # Lines are numbered as in the file (header = line 1).
    assert con.execute(
        "SELECT value FROM raw_intelligence.fred_economic WHERE series_id = 'DGS10' AND date = DATE '1980-01-02'"
    ).fetchall() == [(10.5,)]


def test_rerun_adds_nothing(con, sample_data: Path):
    _run(con, [sample_data / "fred"])
    before = con.execute("SELECT count(*) FROM raw_intelligence.fred_economic").fetchone()[0]

    result, summary = _run(con, [sample_data / "fred"])

    assert summary.as_dict()["totals"] == {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0, "rows_duplicate": 0}
    assert len(result.unchanged) == len(series_files([sample_data / "fred"]))
    assert con.execute("SELECT count(*) FROM raw_intelligence.fred_economic").fetchone()[0] == before


def test_a_changed_file_replaces_only_its_own_rows(con, tmp_path: Path, sample_data: Path):
    folder = tmp_path / "fred"
    folder.mkdir()
    for name in ("VIXCLS.csv", "FEDFUNDS.csv", "metadata.csv"):
        shutil.copy(sample_data / "fred" / name, folder / name)
    # An older download of the same series: the real file without its last 30 observations.
    lines = (sample_data / "fred" / "VIXCLS.csv").read_text().splitlines(keepends=True)
    (folder / "VIXCLS.csv").write_text("".join(lines[:-30]))
    _run(con, [folder])
    shutil.copy(sample_data / "fred" / "VIXCLS.csv", folder / "VIXCLS.csv")  # the newer download

    _, summary = _run(con, [folder])

    counts = dict(con.execute("SELECT series_id, count(*) FROM raw_intelligence.fred_economic GROUP BY 1").fetchall())
    assert counts == {"VIXCLS": _expected(folder / "VIXCLS.csv")[0], "FEDFUNDS": _expected(folder / "FEDFUNDS.csv")[0]}
    assert summary.as_dict()["files"][str((folder / "VIXCLS.csv").resolve())]["status"] == "replaced"
    assert str((folder / "FEDFUNDS.csv").resolve()) in summary.unchanged


def test_unreadable_inputs_are_rejected_and_accounted(con, tmp_path: Path, sample_data: Path):
    folder = tmp_path / "fred"
    folder.mkdir()
    shutil.copy(sample_data / "fred" / "FEDFUNDS.csv", folder / "FEDFUNDS.csv")
    (folder / "NOTFRED.csv").write_text("observation_date;DGS10\n2020-01-02;1.88\n")  # not the date,value format
    good = (sample_data / "fred" / "USREC.csv").read_text()
    (folder / "USREC.csv").write_text(good + "2026-01-01,n/a\n")  # one value that is not a number

    result, summary = _run(con, [folder])

    assert list(result.errors) == [str((folder / "NOTFRED.csv").resolve())]
    s = summary.as_dict()
    assert s["balanced"]
    usrec = s["files"][str((folder / "USREC.csv").resolve())]
    assert (usrec["rows_read"], usrec["rows_quarantined"]) == (_expected(sample_data / "fred" / "USREC.csv")[0] + 1, 1)
    rule, reason = con.execute("SELECT rule, reason FROM monitoring.quarantine WHERE record_number IS NOT NULL").fetchone()
    assert rule == "bad_type" and "n/a" in reason
    assert con.execute("SELECT count(*) FROM monitoring.quarantine WHERE rule = 'parse_error'").fetchone()[0] == 1
    assert "NOTFRED" not in {r[0] for r in con.execute("SELECT DISTINCT series_id FROM raw_intelligence.fred_economic").fetchall()}


def test_non_numbers_and_non_finite_values_are_quarantined_by_name(con, tmp_path: Path, sample_data: Path):
    """FRED CSVs are text: 'abc' does not cast (bad_type); NaN, inf, -Infinity and 1e999 cast to a DOUBLE
    that is no observation (rule finite). The good rows load and the counts add up."""
    folder = tmp_path / "fred"
    folder.mkdir()
    good = (sample_data / "fred" / "DGS10.csv").read_text()
    bad = ["2031-01-02,abc", "2031-01-03,NaN", "2031-01-06,inf", "2031-01-07,-Infinity", "2031-01-08,1e999"]
    (folder / "DGS10.csv").write_text(good.rstrip("\n") + "\n" + "\n".join(bad) + "\n")
    rows, _ = _expected(sample_data / "fred" / "DGS10.csv")

    _, summary = _run(con, [folder])

    s = summary.as_dict()
    assert s["balanced"]
    assert (s["totals"]["rows_read"], s["totals"]["rows_loaded"], s["totals"]["rows_quarantined"]) == (rows + 5, rows, 5)
    got = con.execute("SELECT rule, reason FROM monitoring.quarantine ORDER BY record_number").fetchall()
    assert [r for r, _ in got] == ["bad_type", "finite", "finite", "finite", "finite"]
    assert "value=nan is not a finite number" in got[1][1]
    assert con.execute(
        "SELECT count(*) FROM raw_intelligence.fred_economic WHERE NOT (abs(value) < 'inf'::DOUBLE)"
    ).fetchone()[0] == 0
