"""Detection and discovery as a drive holds Databento downloads (issues 17, 18), on the real samples.

Accepted rows are the real DBN samples; the crafted inputs (a symlink loop, a truncated .zst)
exist to be handled or refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cbi_local.ingest import detect
from cbi_local.ingest.core import IngestRun
from cbi_local.ingest.databento import discover, ingest_databento


@pytest.fixture
def glbx(sample_data: Path) -> Path:
    return sample_data / "databento" / "GLBX.MDP3"


def _finish(con, paths) -> dict:
    run = IngestRun(con)
    ingest_databento(con, paths, run)
    summary = run.finish().as_dict()
    t = summary["totals"]
    assert t["rows_read"] == t["rows_loaded"] + t["rows_quarantined"] + t["rows_duplicate"]
    return summary


def test_nested_renamed_and_per_root_folders_are_databento(tmp_path: Path, glbx: Path, sample_data: Path):
    per_root = tmp_path / "databento" / "ZL" / "GLBX-20251118-TAAH7VN45V"
    renamed = tmp_path / "ZL hourly 2020"
    for folder in (per_root, renamed):
        folder.mkdir(parents=True)
        shutil.copy(glbx / "test_data.ohlcv-1h.dbn.zst", folder / "glbx-mdp3-20201228.ohlcv-1h.dbn.zst")
    assert detect.kind_of(tmp_path / "databento") == "databento"
    assert detect.kind_of(renamed) == "databento"
    # An inbox holding Databento, FRED and the registry side by side is split by what each holds.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "fred").symlink_to(sample_data / "fred")
    (inbox / "databento").symlink_to(tmp_path / "databento")
    groups = detect.group_by_kind([inbox])
    assert set(groups) == {"databento", "fred"}
    # A lone file of a schema no table holds is still Databento (recorded as skipped, not refused).
    mbo = tmp_path / "glbx-mdp3-20201228.mbo.dbn.zst"
    shutil.copy(glbx / "test_data.trades.dbn.zst", mbo)
    assert detect.kind_of(mbo) == "databento"
    with pytest.raises(detect.UnknownInput, match="notes.txt"):
        (tmp_path / "notes.txt").write_text("hello\n")
        detect.kind_of(tmp_path / "notes.txt")


def test_symlink_loop_inside_a_batch_folder_is_no_traceback(con, tmp_path: Path, glbx: Path):
    folder = tmp_path / "GLBX-20251118-TAAH7VN45V"
    folder.mkdir()
    shutil.copy(glbx / "test_data.ohlcv-1h.dbn.zst", folder)
    (folder / "a").symlink_to(folder / "b")
    (folder / "b").symlink_to(folder / "a")
    (folder / "up").symlink_to(tmp_path)  # a link back up the tree
    assert detect.kind_of(folder) == "databento"
    assert [f.path.name for f in discover([folder])] == ["test_data.ohlcv-1h.dbn.zst"]
    assert list(detect.walk(folder))  # the walk reports the loop entries instead of raising
    summary = _finish(con, [folder])
    assert summary["totals"]["rows_loaded"] == 4


def test_a_file_in_error_stays_reported_until_it_changes(con, tmp_path: Path, glbx: Path):
    folder = tmp_path / "GLBX-20251118-TAAH7VN45V"
    folder.mkdir()
    shutil.copy(glbx / "test_data.ohlcv-1h.dbn.zst", folder)
    whole = (glbx / "test_data.ohlcv-1m.dbn.zst").read_bytes()
    bad = folder / "glbx-mdp3-20201228.ohlcv-1m.dbn.zst"
    bad.write_bytes(whole[: len(whole) // 2])  # crafted: a truncated zstd stream
    for _ in range(2):
        summary = _finish(con, [folder])
        assert summary["files"][str(bad)]["status"] == "error", summary
    held = con.execute(
        "SELECT status, COUNT(*) FROM monitoring.quarantine WHERE source_file = ? GROUP BY ALL ORDER BY 1", [str(bad)]
    ).fetchall()
    assert held == [("held", 1), ("superseded", 1)]  # one live record per file in error
    bad.write_bytes(whole)  # fixed: it loads, and is no longer reported
    summary = _finish(con, [folder])
    assert summary["files"][str(bad)]["status"] in ("loaded", "replaced") and summary["files"][str(bad)]["rows_loaded"] == 4


def test_a_dbn_file_without_a_schema_in_its_name_says_how_to_proceed(con, tmp_path, sample_data):
    """A live capture is saved under a name of the user's choosing, without a schema: say what it is."""
    capture = tmp_path / "capture-2020-12-28.dbn.zst"
    shutil.copy(sample_data / "databento" / "GLBX.MDP3" / "test_data.ohlcv-1h.dbn.zst", capture)
    assert detect.group_by_kind([capture]) == {"databento": [capture]}  # a DBN file, by its content
    run = IngestRun(con)
    ingest_databento(con, [capture], run)
    [c] = run.finish().as_dict()["files"].values()
    assert c["status"] == "error" and "not a Databento data file name" in c["error"] and "split it per schema" in c["error"]
