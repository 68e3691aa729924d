"""`cbi demo`: the main job on the real sample data, embedded defaults, nothing to configure.

A warehouse in the demo home, the sample data from CBI_SAMPLE_DATA (default ../shared/data),
and a local BigQuery emulator that this command starts and stops (its data persists under
the demo home, so a second run in the same home is a no-op). The steps are the main job's
(`cbi_local.job`), plus the sample-data checks, the legacy migration and a research run.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

from . import job, pipeline
from .config import Settings
from .job import JobContext, Step

SAMPLE_PARTS = ("databento/GLBX.MDP3", "fred", "legacy_bq", "registry")


def check_sample_data(ctx: JobContext) -> dict[str, Any]:
    root = ctx.settings.sample_data
    missing = [p for p in SAMPLE_PARTS if not (root / p).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"sample data not found at {root} (missing {', '.join(missing)}); "
            "set CBI_SAMPLE_DATA to the shared data directory"
        )
    ctx.inputs = [root / "databento" / "GLBX.MDP3", root / "fred", root / "registry"]
    return {"sample_data": str(root), "files": sum(1 for p in root.rglob("*") if p.is_file())}


def migrate_legacy(ctx: JobContext) -> dict[str, Any]:
    report = pipeline.migrate_legacy_dir(ctx.con, ctx.settings.sample_data / "legacy_bq", ctx.progress)
    out = job.batch_counts(report)
    out["defects_by_rule"] = {rule: d["rows"] for rule, d in sorted(report["defects_by_rule"].items())}
    return out


def features_step(ctx: JobContext) -> dict[str, Any]:
    """ZL from the canonical series and the Yahoo research matrix (the sample holds no Databento ZL)."""
    out: dict[str, Any] = {"ok": True}
    for source in ("canonical", "yahoo_historical"):
        r = job.build_matrix(ctx, source, ["ZL"])
        out[f"{source}_rows"], out[f"{source}_changed"] = r["rows"], r["changed"]
        out["ok"] = out["ok"] and r["ok"]
    return out


def training_step(ctx: JobContext) -> dict[str, Any]:
    """A short research run (3 folds, five horizons). The canonical ZL matrix spans only 4 regimes
    and is refused by the 7-regime rule, so the demo trains on the research matrix; a run on the
    same data and seed already recorded is not repeated (the demo is idempotent)."""
    from .training.runs import TrainOptions

    return job.train_if_new(ctx, TrainOptions(symbol="ZL", matrix_source="yahoo_historical", folds=3))


PIPELINE: list[Step] = [
    ("sample data", check_sample_data),
    ("warehouse", job.init_warehouse),
    ("ingest", job.ingest_inputs),
    ("legacy migration", migrate_legacy),
    ("health", job.health_checks),
    ("coverage", job.coverage_step),
    ("features", features_step),
    ("training", training_step),
    ("tables", job.tables_step),
    ("bigquery layout", job.bigquery_layout),
    ("push", job.push_step),
    ("pull", job.pull_step),
    ("parity", job.parity_step),
    ("audit", job.audit_both),
]


def run_demo(settings: Settings, console: Console, pipeline: list[Step] | None = None) -> dict[str, Any]:
    """Run the demo; raises what stopped it when it could not run (e.g. no sample data)."""
    from sync.emulator import BigQueryEmulator

    settings.home.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]CBI Local demo[/] · home {settings.home} · sample data {settings.sample_data}")
    with BigQueryEmulator(project=settings.bq_project, data_dir=settings.home / "bigquery-emulator") as emulator:
        ctx = JobContext(settings=settings.model_copy(update={"bq_endpoint": emulator.endpoint}))
        ctx.bq_client = emulator.client()
        try:
            with job.step_progress(console, "demo", ctx) as on_step:
                summary = job.run_steps(ctx, pipeline or PIPELINE, on_step)
        finally:
            if ctx.con is not None:
                ctx.con.close()
            ctx.bq_client.close()
    if isinstance(ctx.error, FileNotFoundError):
        raise ctx.error
    summary.update(home=str(settings.home), warehouse=str(settings.warehouse_path))
    job.print_summary(console, "CBI Local demo summary", summary, f"Next: `cbi tui --home {settings.home}`.")
    return summary
