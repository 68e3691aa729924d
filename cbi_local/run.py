"""`cbi run`: the main job on the user's configuration, by hand or as each daemon cycle.

Inputs are the paths given, else the top-level entries of the inbox (`--inbox` or
CBI_INBOX: Databento batch folders, FRED CSVs, the registry folder, as `cbi ingest`
detects them). BigQuery is the configured project (CBI_BQ_PROJECT, CBI_BQ_LOCATION,
credentials from ADC), or CBI_BQ_ENDPOINT for an emulator. The steps are the demo's
without the sample-data ones: ingest -> health -> coverage -> features (canonical) ->
training (canonical, only when a matrix changed) -> BigQuery layout -> push -> pull ->
parity (of the tables this run pushed to). `cbi daemon` runs CYCLE of them each cycle (the
report-only steps, health, coverage and parity, are left to `cbi run`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import job
from .config import Settings
from .job import JobContext, Step

LOCAL: list[Step] = [
    ("warehouse", job.init_warehouse),
    ("ingest", job.ingest_inputs),
    ("health", job.health_checks),
    ("coverage", job.coverage_step),
    ("features", job.features_canonical),
    ("training", job.training_canonical),
    ("tables", job.tables_step),
]


def connect_bigquery(ctx: JobContext) -> dict[str, Any]:
    job.bigquery(ctx)  # missing credentials stop the job here, with what to do about them
    s = ctx.settings
    return {"project": s.bq_project, "location": s.bq_location, "endpoint": s.bq_endpoint or "bigquery.googleapis.com"}


SYNC: list[Step] = [
    ("bigquery", connect_bigquery),
    ("bigquery layout", job.bigquery_layout),
    ("push", job.push_step),
    ("pull", job.pull_step),
    # Parity of what this run pushed, not of every table: a run that pushed nothing bills nothing.
    ("parity", lambda ctx: job.parity_step(ctx, only_pushed_now=True)),
]
CYCLE = ("ingest", "features", "training", "push", "pull")


def steps(push: bool = True, train: bool = True) -> list[Step]:
    chosen = LOCAL + (SYNC if push else [])
    return [s for s in chosen if train or s[0] != "training"]


def cycle_steps(train: bool = True) -> list[Step]:
    """What one daemon cycle runs: the same step functions as `cbi run`."""
    return [s for s in steps(push=True, train=train) if s[0] in CYCLE]


def inbox_inputs(inbox: Path) -> list[Path]:
    """Top-level entries of the inbox ("._*" and other hidden files are never data)."""
    return sorted(p for p in inbox.iterdir() if not p.name.startswith("."))


def run_job(settings: Settings, console: Any, paths: list[Path], push: bool = True,
            train: bool = True) -> tuple[dict[str, Any], BaseException | None]:
    """Run the main job; returns (summary, the exception to report or None): one that means the job
    could not run (the warehouse, no BigQuery credentials: exit 2) before any other a step raised."""
    settings.home.mkdir(parents=True, exist_ok=True)
    ctx = JobContext(settings=settings, inputs=list(paths))
    try:
        with job.step_progress(console, "run", ctx) as bar:
            summary = job.run_steps(ctx, steps(push, train), bar)
    finally:
        if ctx.con is not None:
            ctx.con.close()
        if ctx.bq_client is not None:
            ctx.bq_client.close()
    summary.update(home=str(settings.home), warehouse=str(settings.warehouse_path),
                   inputs=[str(p) for p in paths], bigquery=None if not push else settings.bq_project)
    from sync.bigquery.client import NoCredentials

    from . import warehouse

    could_not_run = next((e for e in ctx.errors if isinstance(e, (warehouse.WarehouseError, NoCredentials))), None)
    return summary, could_not_run or ctx.error
