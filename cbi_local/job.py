"""The main job's steps, shared by `cbi demo`, `cbi run` and every `cbi daemon` cycle.

A step is `(name, fn)` where `fn(ctx)` does one thing and returns its counts (a dict; a
false `ok` marks a problem it found). `run_steps` runs a list of them in order and times
each; a step that raises has the error (credentials redacted) as its result, and only the
steps that depend on it (NEEDS, transitively) are skipped, each saying why: a failed
features step does not keep the validated batches from being pushed and pulled. A step
NEEDS does not name depends on every step before it. A failure that means BigQuery is
unreachable skips every step that needs BigQuery. The entry points differ only in
their inputs and their list: the demo ingests the sample data into an emulator-backed home,
`cbi run` and the daemon ingest the user's inbox and sync with the configured project.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import audit, health, pipeline, warehouse
from .config import Settings


@dataclass
class JobContext:
    settings: Settings
    con: Any = None  # the warehouse connection (opened by init_warehouse unless given)
    bq_client: Any = None  # google.cloud.bigquery.Client (real project or the emulator); see bigquery()
    bq_factory: Callable[[], Any] | None = None  # makes bq_client on first use (default: from settings)
    inputs: list[Path] = field(default_factory=list)  # what ingest_inputs loads
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    progress: Callable[..., None] | None = None  # progress(message[, done, total]) inside a long step
    error: BaseException | None = None  # the first exception a step raised, if any
    errors: list[BaseException] = field(default_factory=list)  # every exception a step raised, in order


class StepFailed(Exception):
    """A step did its part but the job cannot go on (e.g. BigQuery unreachable); keeps the step's counts."""

    def __init__(self, message: str, result: dict[str, Any], offline: bool = False) -> None:
        super().__init__(message)
        self.result, self.offline = result, offline


Step = tuple[str, Callable[[JobContext], dict[str, Any]]]
# progress(step name, steps done, steps total) before each step and once at the end.
OnStep = Callable[[str, int, int], None]


# What each step needs to have succeeded (names absent from a job's list are ignored).
NEEDS: dict[str, tuple[str, ...]] = {
    "warehouse": ("sample data",),
    "ingest": ("warehouse",),
    "legacy migration": ("warehouse",),
    "health": ("warehouse",),
    "coverage": ("warehouse",),
    "features": ("warehouse",),
    "training": ("features",),
    "tables": ("warehouse",),
    "bigquery": (),
    "bigquery layout": ("warehouse", "bigquery"),
    "push": ("bigquery layout",),
    "pull": ("bigquery layout",),
    "parity": ("push", "pull"),
    "audit": ("warehouse", "bigquery layout"),
}
BIGQUERY_STEPS = ("bigquery", "bigquery layout")  # unusable once a step finds BigQuery unreachable


def is_offline(exc: BaseException) -> bool:
    from sync.retry import Offline, is_transient

    return isinstance(exc, Offline) or getattr(exc, "offline", False) or is_transient(exc)


def run_steps(ctx: JobContext, steps: list[Step], on_step: OnStep | None = None,
              should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run `steps` in order; returns {"ok", "seconds", "steps", ["failed_step", "failed_steps", "stopped"]}.

    ctx.error is the first exception raised (the daemon's back-off reads it)."""
    say = on_step or (lambda *_: None)
    started = time.perf_counter()
    out: dict[str, Any] = {"ok": True, "steps": ctx.results}
    failed: set[str] = set()  # failed or skipped: what depends on them is skipped too
    for i, (name, fn) in enumerate(steps):
        if should_stop and should_stop():
            out["stopped"] = name
            break
        needs = NEEDS.get(name, tuple(n for n, _ in steps[:i]))
        blocked = [n for n in needs if n in failed]
        if blocked:
            failed.add(name)
            ctx.results[name] = {"skipped": f"needs {', '.join(blocked)}, which did not succeed", "seconds": 0.0}
            continue
        say(name, i, len(steps))
        warehouse.note_activity(ctx.settings.home, f"{name} (step {i + 1} of {len(steps)})")
        t0 = time.perf_counter()
        try:
            result = fn(ctx)
        except Exception as exc:  # noqa: BLE001 - recorded as the step's failure; the caller decides the exit code
            from sync.journal import redact  # credential material never reaches a summary

            ctx.error = ctx.error or exc
            ctx.errors.append(exc)
            result = dict(exc.result) if isinstance(exc, StepFailed) else {}
            result.update(ok=False, error=redact(str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"))
            out.setdefault("failed_step", name)
            out.setdefault("failed_steps", []).append(name)
            failed.add(name)
            if is_offline(exc):
                failed.update(BIGQUERY_STEPS)
        result["seconds"] = round(time.perf_counter() - t0, 2)
        ctx.results[name] = result
    say("done", len(steps), len(steps))
    out["changes"] = changes(ctx.results)
    out["changed"] = any(out["changes"].values())
    out["ok"] = all(r.get("ok", True) for r in ctx.results.values())
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def changes(results: dict[str, dict[str, Any]]) -> dict[str, int]:
    """What a job changed, from its steps' counts: all zero means a rerun found nothing to do."""
    def total(key: str, *names: str) -> int:
        return sum(int(results.get(n, {}).get(key) or 0) for n in names)

    features = results.get("features", {})
    return {
        "tables_created": total("created_tables", "warehouse", "bigquery layout"),
        "rows_read": total("read", "ingest", "legacy migration"),
        "feature_rows_changed": sum(int(v or 0) for k, v in features.items() if k.endswith("changed")),
        "models_trained": total("models_trained", "training"),
        "bigquery_jobs": total("jobs", "push", "pull"),
    }


@contextlib.contextmanager
def step_progress(console: Any, title: str, ctx: JobContext) -> Iterator[OnStep]:
    """A progress bar over the job's steps, and a second one for what a long step reports
    through ctx.progress (files hashed, ...). Transient: the summary replaces them."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console, transient=True)
    with progress:
        task = progress.add_task(title)
        detail = progress.add_task("", total=None, visible=False)

        def on_step(name: str, done: int, total: int) -> None:
            progress.update(task, description=f"{title}: {name}", completed=done, total=total)
            progress.update(detail, visible=False)

        def on_detail(message: str, done: int | None = None, total: int | None = None) -> None:
            progress.update(detail, description=f"  {message}", completed=done or 0, total=total, visible=True)

        ctx.progress = on_detail
        yield on_step


# --- local steps ---------------------------------------------------------------------------


def init_warehouse(ctx: JobContext) -> dict[str, Any]:
    report = warehouse.init(ctx.settings.warehouse_path)
    if ctx.con is None:
        ctx.con = warehouse.connect(ctx.settings.warehouse_path)
    return {"created_tables": len(report.created_tables), "added_columns": len(report.added_columns)}


def batch_counts(report: dict[str, Any]) -> dict[str, Any]:
    t = report["batch"]["totals"]
    return {
        "batch_id": report["batch"]["batch_id"],
        "status": report["batch"]["status"],
        "files": len(report["batch"]["files"]),
        "unchanged": len(report["batch"]["unchanged_files"]),
        **{k.removeprefix("rows_"): v for k, v in t.items()},
        "ok": report["ok"],
    }


def ingest_inputs(ctx: JobContext) -> dict[str, Any]:
    """Ingest ctx.inputs (Databento, FRED, the registry; detected per path) as one batch."""
    if not ctx.inputs:
        return {"files": 0, "note": "nothing to ingest"}
    out = batch_counts(pipeline.ingest_paths(ctx.con, ctx.inputs, ctx.progress))
    out["inputs"] = len(ctx.inputs)
    return out


def health_checks(ctx: JobContext) -> dict[str, Any]:
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


def coverage_step(ctx: JobContext) -> dict[str, Any]:
    from . import coverage

    summary = coverage.report(coverage.coverage(ctx.con))["summary"]
    return {"series": summary["series"], "with_gaps": summary["with_gaps"], "missing_units": summary["missing_units"]}


def tables_step(ctx: JobContext) -> dict[str, Any]:
    """Rows per table (COUNT(*) from DuckDB metadata) and the rows held in quarantine, by rule."""
    from . import quarantine

    rows = {i.contract.fqn: i.rows for i in warehouse.table_infos(ctx.con) if i.rows}
    held: dict[str, int] = {}
    for q in quarantine.summary(ctx.con, "held"):
        held[q["rule"]] = held.get(q["rule"], 0) + q["rows"]
    return {"tables": len(rows), "rows": sum(rows.values()), "quarantined": sum(held.values()),
            "rows_by_table": rows, "quarantined_by_rule": dict(sorted(held.items()))}


def build_matrix(ctx: JobContext, source: str, symbols: list[str] | None) -> dict[str, Any]:
    """Build features.daily_ml_matrix for one matrix source (a diff: unchanged rows stay)."""
    from .features.build import build_features

    report = build_features(ctx.con, symbols, source=source, roll_adjustment=ctx.settings.roll_adjustment)
    return {"symbols": report.symbols, "rows": sum(report.rows.values()), "changed": report.inserted + report.deleted,
            "ok": report.ok}


def canonical_symbols(ctx: JobContext) -> list[str]:
    """Roots of the canonical continuous series: what `cbi run` builds and trains."""
    import data_contracts as dc
    from data_contracts.to_duckdb import table_ref

    ref = table_ref(dc.get("market_data.futures_continuous_1d"))
    return [r[0] for r in ctx.con.execute(f"SELECT DISTINCT root FROM {ref} ORDER BY 1").fetchall()]


def features_canonical(ctx: JobContext) -> dict[str, Any]:
    symbols = canonical_symbols(ctx)
    if not symbols:
        return {"symbols": [], "rows": 0, "changed": 0, "note": "no canonical continuous series yet"}
    return build_matrix(ctx, "canonical", symbols)


def train_if_new(ctx: JobContext, opts: Any) -> dict[str, Any]:
    """Train `opts` unless a run on the same data fingerprint and seed is recorded already.

    A matrix the training rules refuse (too few regimes, no known targets) is reported as
    skipped with the reason: that is the data's state, not a failure of the job."""
    from .training.data import DataError, load_frame
    from .training.runs import TrainError, train

    try:
        fingerprint = load_frame(ctx.con, opts.symbol, opts.matrix_source, opts.start, opts.end).fingerprint()
    except DataError as exc:
        return {"models_trained": 0, "skipped": str(exc)}
    done = ctx.con.execute(
        "SELECT COUNT(DISTINCT run_id) FROM training.model_runs "
        "WHERE data_fingerprint = ? AND seed = ? AND symbol = ? AND matrix_source = ?",
        [fingerprint, opts.seed, opts.symbol, opts.matrix_source],
    ).fetchall()[0][0]
    if done:
        return {"models_trained": 0, "runs_reused": done}
    try:
        report = train(ctx.con, ctx.settings.home, opts)
    except TrainError as exc:
        return {"models_trained": 0, "skipped": str(exc)}
    mape = {h: round(r["metrics"]["mape"], 2) for h, r in report["horizons"].items()}
    # as_of: the row the forecasts are made from (the last with a real volume, publish.as_of)
    return {"models_trained": len(report["horizons"]) * 4, "run": report["run_id"], "mape_pct": mape,
            "as_of": report["as_of"]["date"]}


def training_canonical(ctx: JobContext) -> dict[str, Any]:
    """Production training per canonical symbol whose matrix changed since its last run."""
    from .training.runs import TrainOptions

    out: dict[str, Any] = {"models_trained": 0, "runs": [], "skipped": {}}
    for symbol in canonical_symbols(ctx):
        r = train_if_new(ctx, TrainOptions(symbol=symbol, matrix_source="canonical"))
        out["models_trained"] += r["models_trained"]
        if "run" in r:
            out["runs"].append(r["run"])
            out.setdefault("as_of", {})[symbol] = r["as_of"]
        if "skipped" in r:
            out["skipped"][symbol] = r["skipped"]
    return out


# --- BigQuery steps ------------------------------------------------------------------------


def bigquery(ctx: JobContext) -> Any:
    """The BigQuery client, made on first use (so local steps run even when BigQuery cannot)."""
    if ctx.bq_client is None:
        if ctx.bq_factory is None:
            from sync.bigquery.client import make_client

            ctx.bq_client = make_client(ctx.settings)
        else:
            ctx.bq_client = ctx.bq_factory()
    return ctx.bq_client


def bigquery_layout(ctx: JobContext) -> dict[str, Any]:
    from sync.bigquery.layout import ensure_layout

    report = ensure_layout(bigquery(ctx), ctx.settings.bq_project, ctx.settings.bq_location)
    return {"created_datasets": len(report.created_datasets), "created_tables": len(report.created_tables)}


def push_step(ctx: JobContext) -> dict[str, Any]:
    from sync.push import push

    report = push(ctx.con, bigquery(ctx), ctx.settings)
    pushed = [b for b in report.batches if b.status == "pushed"]
    rows = sum(t.rows for b in pushed for t in b.targets)
    out = {"batches_pushed": len(pushed), "rows": rows, "jobs": sum(len(b.jobs) for b in report.batches),
           "pushed_ids": [b.batch_id for b in pushed], "ok": report.ok}
    if not report.ok:
        # Pending batches stay 'validated' and go with the next push; pulling now would be pointless.
        error = report.error or next(b.error for b in report.batches if b.error)
        raise StepFailed(error, out, offline=report.offline)
    return out


def pull_step(ctx: JobContext) -> dict[str, Any]:
    from sync.pull import pull

    report = pull(ctx.con, bigquery(ctx), ctx.settings)
    return {"tables": len(report.tables), "jobs": report.jobs,
            "partitions": {t.table: t.downloaded_partitions for t in report.tables}}


def parity_step(ctx: JobContext, only_pushed_now: bool = False) -> dict[str, Any]:
    """Parity of the tables the warehouse pushes (`only_pushed_now`: only the partitions this job's push
    wrote, as its journal's plan entries list them, so a run that pushed one day reads and bills one
    partition per table, and a run that pushed nothing scans nothing). Pull tables (weather, CFTC) are
    BigQuery's to fill (cloud collectors), so there a local seed from the legacy migration may differ."""
    import data_contracts as dc
    from sync.pull import diff
    from sync.push import PRIVATE_SUFFIX, pushed_partitions

    names = [c.fqn for c in dc.CONTRACTS if c.sync == "push"]
    partitions: dict[str, list[int]] | None = None
    if only_pushed_now:
        partitions = pushed_partitions(ctx.con, ctx.results.get("push", {}).get("pushed_ids", []))
        names = [n for n in names if any(t.removesuffix(PRIVATE_SUFFIX) == n for t in partitions)]
        if not names:
            return {"tables": 0, "equal": 0, "differ": 0, "partitions": 0,
                    "note": "nothing pushed now, nothing scanned (`cbi sync diff --all` checks every table)"}
    tables = diff(ctx.con, bigquery(ctx), ctx.settings, names, partitions=partitions)
    differ = [t.table for t in tables if not t.ok]
    return {"tables": len(tables), "equal": len(tables) - len(differ), "differ": len(differ),
            "partitions": sum(len(t.partitions) for t in tables), "differ_items": differ, "ok": not differ}


def audit_both(ctx: JobContext) -> dict[str, Any]:
    from sync.bigquery.layout import audit_bigquery

    local = audit.audit_duckdb(ctx.con)
    remote = audit_bigquery(bigquery(ctx), ctx.settings.bq_project, ctx.settings.bq_location)
    drift = [d.message() for d in local.drifts + remote.drifts]
    return {"drift": len(drift), "drift_items": drift, "ok": not drift}


# --- the summary ---------------------------------------------------------------------------

HIDDEN = ("batch_id", "rows_by_table", "quarantined_by_rule", "seconds", "drift_items", "failed_items", "differ_items", "ok", "defects_by_rule", "pushed_ids", "partitions",
          "error", "skipped", "runs")


def print_summary(console: Any, title: str, summary: dict[str, Any], next_hint: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("step")
    table.add_column("result")
    table.add_column("s", justify="right")
    for name, result in summary["steps"].items():
        shown = ", ".join(f"{k}={v}" for k, v in result.items() if k not in HIDDEN)
        if result.get("error"):
            shown = f"[red]{result['error']}[/]" if not shown else f"{shown}, [red]{result['error']}[/]"
        table.add_row(name, shown, f"{result['seconds']:.2f}")
    console.print(table)
    steps = summary["steps"]
    counts = steps.get("tables", {})
    if counts.get("rows_by_table"):
        per = Table(title="rows per table (warehouse)", show_edge=False)
        per.add_column("table", no_wrap=True)
        per.add_column("rows", justify="right", no_wrap=True)
        for name, n in counts["rows_by_table"].items():
            per.add_row(name, f"{n:,}")
        console.print(per)
    if counts.get("quarantined_by_rule"):
        console.print("held in quarantine, by rule: " + ", ".join(f"{k} {v:,}" for k, v in counts["quarantined_by_rule"].items()),
                      soft_wrap=True)
    defects = next((r["defects_by_rule"] for r in steps.values() if r.get("defects_by_rule")), {})
    if defects:
        console.print("legacy defects caught, by rule: " + ", ".join(f"{k} {v:,}" for k, v in defects.items()), soft_wrap=True)
    for name, r in steps.items():
        skipped = r.get("skipped")
        for what, why in (skipped.items() if isinstance(skipped, dict) else ([(name, skipped)] if skipped else [])):
            console.print(f"  – {name} skipped for {what}: {why}", soft_wrap=True, markup=False)
    for r in steps.values():
        for item in r.get("failed_items", []) + r.get("drift_items", []):
            console.print(f"  ✗ {item}", soft_wrap=True, markup=False)
    if not summary.get("changed", True):
        console.print("Nothing changed: every input file was already loaded, no feature row or model changed, "
                      "and BigQuery needed no job (the same inputs give the same warehouse).", soft_wrap=True)
    bad = [name for name, r in steps.items() if not r.get("ok", True)]
    verdict = "[green]ok[/]" if summary["ok"] else f"[red]problems in: {', '.join(bad)}[/]"
    console.print(f"{verdict} in {summary['seconds']:.1f}s. {next_hint}")
