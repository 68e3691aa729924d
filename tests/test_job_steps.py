"""`job.run_steps`: independent steps run independently, dependants of a failure are skipped and say why.

The steps here are plain functions standing in for the job's steps (no data is involved: the
subject is the scheduling); the real steps' own behaviour is tested with them elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from cbi_local import job
from cbi_local.config import Settings
from sync.retry import Offline


def _ctx(tmp_path: Path) -> job.JobContext:
    return job.JobContext(settings=Settings(home=tmp_path))


def _ran(log: list[str], name: str, fail: BaseException | None = None):
    def step(ctx):
        log.append(name)
        if fail is not None:
            raise fail
        return {"ok": True}
    return name, step


def test_a_failed_features_step_does_not_stop_push_and_pull(tmp_path: Path):
    log: list[str] = []
    names = ["warehouse", "ingest", "features", "training", "bigquery", "bigquery layout", "push", "pull", "parity"]
    steps = [_ran(log, n, RuntimeError("zero-size array") if n == "features" else None) for n in names]
    ctx = _ctx(tmp_path)
    out = job.run_steps(ctx, steps)
    assert log == ["warehouse", "ingest", "features", "bigquery", "bigquery layout", "push", "pull", "parity"]
    assert not out["ok"] and out["failed_steps"] == ["features"]
    assert out["steps"]["features"]["error"] == "RuntimeError: zero-size array"
    assert out["steps"]["training"]["skipped"] == "needs features, which did not succeed"
    assert isinstance(ctx.error, RuntimeError)


def test_bigquery_unreachable_skips_every_step_that_needs_it_but_not_the_local_ones(tmp_path: Path):
    log: list[str] = []
    names = ["warehouse", "ingest", "bigquery", "bigquery layout", "push", "pull", "parity", "tables"]
    steps = [_ran(log, n, Offline("BigQuery unreachable") if n == "push" else None) for n in names]
    out = job.run_steps(_ctx(tmp_path), steps)
    assert log == ["warehouse", "ingest", "bigquery", "bigquery layout", "push", "tables"]
    assert out["steps"]["pull"]["skipped"].startswith("needs bigquery layout")
    assert out["steps"]["parity"]["skipped"].startswith("needs push, pull")


def test_a_step_no_dependency_names_waits_for_everything_before_it(tmp_path: Path):
    log: list[str] = []
    steps = [_ran(log, "warehouse", RuntimeError("disk full")), _ran(log, "something new")]
    out = job.run_steps(_ctx(tmp_path), steps)
    assert log == ["warehouse"] and out["steps"]["something new"]["skipped"].startswith("needs warehouse")


def test_a_could_not_run_error_is_the_one_cbi_run_reports_even_after_another_failure(tmp_path: Path, monkeypatch):
    """features fails first, then BigQuery has no credentials: `cbi run` must still exit 2 with what to do."""
    from cbi_local import run as run_mod
    from sync.bigquery.client import NoCredentials

    def features(ctx):
        raise RuntimeError("zero-size array")

    def bigquery(ctx):
        raise NoCredentials("no Google credentials for BigQuery project 'p': run `gcloud auth ...`")

    steps = [("features", features), ("bigquery", bigquery), ("bigquery layout", lambda ctx: {"ok": True}),
             ("push", lambda ctx: {"ok": True})]
    monkeypatch.setattr(run_mod, "steps", lambda push, train: steps)
    import io

    from rich.console import Console

    summary, error = run_mod.run_job(Settings(home=tmp_path), Console(file=io.StringIO()), [], push=True)
    assert isinstance(error, NoCredentials) and summary["failed_steps"] == ["features", "bigquery"]
    assert summary["steps"]["push"]["skipped"].startswith("needs bigquery layout")
