"""`cbi demo`: the main job on the real sample data, embedded defaults, nothing to configure.

A warehouse in the demo home, the sample data from CBI_SAMPLE_DATA (default ../shared/data),
and a local BigQuery emulator that this command starts and stops (its data persists under
the demo home, so a second run in the same home is a no-op). Each step returns counts for
the summary; later capabilities add steps to PIPELINE.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import audit, health, pipeline, warehouse
from .config import Settings

SAMPLE_PARTS = ("databento/GLBX.MDP3", "fred", "legacy_bq", "registry")


@dataclass
class DemoContext:
    settings: Settings
    console: Console
    con: Any = None
    bq_client: Any = None
    bq_endpoint: str | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_sample_data(ctx: DemoContext) -> dict[str, Any]:
    root = ctx.settings.sample_data
    missing = [p for p in SAMPLE_PARTS if not (root / p).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"sample data not found at {root} (missing {', '.join(missing)}); "
            "set CBI_SAMPLE_DATA to the shared data directory"
        )
    return {"sample_data": str(root), "files": sum(1 for p in root.rglob("*") if p.is_file())}


def init_warehouse(ctx: DemoContext) -> dict[str, Any]:
    report = warehouse.init(ctx.settings.warehouse_path)
    ctx.con = warehouse.connect(ctx.settings.warehouse_path)
    return {"created_tables": len(report.created_tables), "added_columns": len(report.added_columns)}


def _batch_counts(report: dict[str, Any]) -> dict[str, Any]:
    t = report["batch"]["totals"]
    return {
        "files": len(report["batch"]["files"]),
        "unchanged": len(report["batch"]["unchanged_files"]),
        **{k.removeprefix("rows_"): v for k, v in t.items()},
        "ok": report["ok"],
    }


def ingest_samples(ctx: DemoContext) -> dict[str, Any]:
    root = ctx.settings.sample_data
    report = pipeline.ingest_paths(ctx.con, [root / "databento" / "GLBX.MDP3", root / "fred", root / "registry"])
    return _batch_counts(report)


def migrate_legacy(ctx: DemoContext) -> dict[str, Any]:
    report = pipeline.migrate_legacy_dir(ctx.con, ctx.settings.sample_data / "legacy_bq")
    out = _batch_counts(report)
    out["defects_by_rule"] = {rule: d["rows"] for rule, d in sorted(report["defects_by_rule"].items())}
    return out


def health_checks(ctx: DemoContext) -> dict[str, Any]:
    # A report over every table; not recorded, because on-demand results carry no batch and so
    # would never reach BigQuery (each batch's own gate results are recorded and pushed).
    results = health.run_health(ctx.con, record=False)
    failed = health.failures(results)
    return {
        "checks": len(results),
        "failed": len(failed),
        "warnings": sum(r.status == "warn" for r in results),
        "failed_items": [f"{r.table} {r.rule}: {r.message}" for r in failed],
        "ok": not failed,
    }


def coverage_step(ctx: DemoContext) -> dict[str, Any]:
    from . import coverage

    summary = coverage.report(coverage.coverage(ctx.con))["summary"]
    return {"series": summary["series"], "with_gaps": summary["with_gaps"], "missing_units": summary["missing_units"]}


def features_step(ctx: DemoContext) -> dict[str, Any]:
    from .features.build import build_features

    out: dict[str, Any] = {}
    for source in ("canonical", "yahoo_historical"):
        report = build_features(ctx.con, ["ZL"], source=source)
        out[f"{source}_rows"] = sum(report.rows.values())
        out[f"{source}_changed"] = report.inserted + report.deleted
        out.setdefault("ok", True)
        out["ok"] = out["ok"] and report.ok
    return out


def training_step(ctx: DemoContext) -> dict[str, Any]:
    """A short research run (3 folds, five horizons). The canonical ZL matrix spans only 4 regimes
    and is refused by the 7-regime rule, so the demo trains on the research matrix; a run on the
    same data and seed already recorded is not repeated (the demo is idempotent)."""
    from .training.data import load_frame
    from .training.runs import TrainOptions, train

    opts = TrainOptions(symbol="ZL", matrix_source="yahoo_historical", folds=3)
    fingerprint = load_frame(ctx.con, "ZL", opts.matrix_source, None, None).fingerprint()
    done = ctx.con.execute(
        "SELECT COUNT(DISTINCT run_id) FROM training.model_runs WHERE data_fingerprint = ? AND seed = ? AND is_research",
        [fingerprint, opts.seed],
    ).fetchall()[0][0]
    if done:
        return {"models_trained": 0, "runs_reused": done}
    report = train(ctx.con, ctx.settings.home, opts)
    mape = {h: round(r["metrics"]["mape"], 2) for h, r in report["horizons"].items()}
    return {"models_trained": len(report["horizons"]) * 4, "run": report["run_id"], "mape_pct": mape}


def bigquery_layout(ctx: DemoContext) -> dict[str, Any]:
    from sync.bigquery.layout import ensure_layout

    report = ensure_layout(ctx.bq_client, ctx.settings.bq_project, ctx.settings.bq_location)
    return {"created_datasets": len(report.created_datasets), "created_tables": len(report.created_tables)}


def push_step(ctx: DemoContext) -> dict[str, Any]:
    from sync.push import push

    report = push(ctx.con, ctx.bq_client, ctx.settings)
    pushed = [b for b in report.batches if b.status == "pushed"]
    rows = sum(t.rows for b in pushed for t in b.targets)
    return {"batches_pushed": len(pushed), "rows": rows, "jobs": sum(len(b.jobs) for b in report.batches),
            "ok": report.ok}


def pull_step(ctx: DemoContext) -> dict[str, Any]:
    from sync.pull import pull

    report = pull(ctx.con, ctx.bq_client, ctx.settings)
    return {"tables": len(report.tables), "jobs": report.jobs}


def parity_step(ctx: DemoContext) -> dict[str, Any]:
    """Parity of the tables the warehouse pushes. Pull tables (weather, CFTC) are BigQuery's to fill
    (cloud collectors, none in the demo), so there the local seed from the legacy migration differs."""
    import data_contracts as dc
    from sync.pull import diff

    tables = diff(ctx.con, ctx.bq_client, ctx.settings, [c.fqn for c in dc.CONTRACTS if c.sync == "push"])
    differ = [t.table for t in tables if not t.ok]
    return {"tables": len(tables), "equal": len(tables) - len(differ), "differ": len(differ),
            "partitions": sum(len(t.partitions) for t in tables), "differ_items": differ, "ok": not differ}


def audit_both(ctx: DemoContext) -> dict[str, Any]:
    from sync.bigquery.layout import audit_bigquery

    local = audit.audit_duckdb(ctx.con)
    remote = audit_bigquery(ctx.bq_client, ctx.settings.bq_project, ctx.settings.bq_location)
    drift = [d.message() for d in local.drifts + remote.drifts]
    return {"drift": len(drift), "drift_items": drift, "ok": not drift}


Step = tuple[str, Callable[[DemoContext], dict[str, Any]]]
PIPELINE: list[Step] = [
    ("sample data", check_sample_data),
    ("warehouse", init_warehouse),
    ("ingest", ingest_samples),
    ("legacy migration", migrate_legacy),
    ("health", health_checks),
    ("coverage", coverage_step),
    ("features", features_step),
    ("training", training_step),
    ("bigquery layout", bigquery_layout),
    ("push", push_step),
    ("pull", pull_step),
    ("parity", parity_step),
    ("audit", audit_both),
]


def run_demo(settings: Settings, console: Console, pipeline: list[Step] | None = None) -> dict[str, Any]:
    from sync.emulator import BigQueryEmulator

    ctx = DemoContext(settings=settings, console=console)
    settings.home.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]CBI Local demo[/] · home {settings.home} · sample data {settings.sample_data}")
    started = time.perf_counter()
    steps = pipeline or PIPELINE
    with BigQueryEmulator(project=settings.bq_project, data_dir=settings.home / "bigquery-emulator") as emulator:
        ctx.bq_client = emulator.client()
        ctx.bq_endpoint = emulator.endpoint
        ctx.settings = settings.model_copy(update={"bq_endpoint": emulator.endpoint})
        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=console, transient=True,
        )
        try:
            with progress:
                task = progress.add_task("demo", total=len(steps))
                for name, fn in steps:
                    progress.update(task, description=name)
                    t0 = time.perf_counter()
                    result = fn(ctx)
                    result["seconds"] = round(time.perf_counter() - t0, 2)
                    ctx.results[name] = result
                    progress.advance(task)
        finally:
            if ctx.con is not None:
                ctx.con.close()
            ctx.bq_client.close()
    summary = {
        "ok": all(r.get("ok", True) for r in ctx.results.values()),
        "home": str(settings.home),
        "warehouse": str(settings.warehouse_path),
        "seconds": round(time.perf_counter() - started, 2),
        "steps": ctx.results,
    }
    _print_summary(console, summary)
    return summary


def _print_summary(console: Console, summary: dict[str, Any]) -> None:
    table = Table(title="CBI Local demo summary")
    table.add_column("step")
    table.add_column("result")
    table.add_column("s", justify="right")
    for name, result in summary["steps"].items():
        shown = ", ".join(
            f"{k}={v}" for k, v in result.items()
            if k not in ("seconds", "drift_items", "failed_items", "differ_items", "ok", "defects_by_rule")
        )
        table.add_row(name, shown, f"{result['seconds']:.2f}")
    console.print(table)
    defects = summary["steps"].get("legacy migration", {}).get("defects_by_rule", {})
    if defects:
        console.print("legacy defects caught, by rule: " + ", ".join(f"{k} {v:,}" for k, v in defects.items()), soft_wrap=True)
    for item in summary["steps"].get("health", {}).get("failed_items", []) + summary["steps"].get("audit", {}).get("drift_items", []):
        console.print(f"  ✗ {item}", soft_wrap=True, markup=False)
    bad = [name for name, r in summary["steps"].items() if not r.get("ok", True)]
    verdict = "[green]ok[/]" if summary["ok"] else f"[red]problems in: {', '.join(bad)}[/]"
    console.print(f"{verdict} in {summary['seconds']:.1f}s. Next: `cbi tui --home {summary['home']}`.")
