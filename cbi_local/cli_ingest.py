"""`cbi ingest`, `cbi migrate-legacy`, `cbi build-continuous` (registered on the main app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from . import pipeline, warehouse
from .cli_base import HomeOpt, JsonOpt, console, emit_json, err, fail, print_batch, with_warehouse
from .config import settings
from .ingest.detect import UnknownInput

commands = typer.Typer()  # registered by cbi_local/cli.py


def _run(home: Path | None, as_json: bool, step) -> None:
    s = settings(home)
    bar = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )
    task = bar.add_task("starting", total=None)

    def progress(message: str, done: int | None = None, total: int | None = None) -> None:
        bar.update(task, description=message, completed=done or 0, total=total)

    try:
        with warehouse.open_warehouse(s.warehouse_path) as con, bar:
            report = step(con, progress)
    except (warehouse.WarehouseError, UnknownInput, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        emit_json(report)
    else:
        print_batch(report)
    if not report["ok"]:
        raise typer.Exit(1)


@commands.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Databento files/folders, FRED CSVs/folders, the registry folder.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    forget: Annotated[bool, typer.Option(
        "--forget", help="Instead of loading PATHS, forget those files in error: no longer read or reported until they change.",
    )] = False,
) -> None:
    """Load Databento downloads, FRED series and the regime registry; idempotent, every row accounted."""
    if forget:
        return _forget(home, as_json, [str(p.expanduser().resolve()) for p in paths])
    _run(home, as_json, lambda con, say: pipeline.ingest_paths(con, [p.expanduser() for p in paths], say))


def _forget(home: Path | None, as_json: bool, paths: list[str]) -> None:
    from .ingest.core import forget

    done = with_warehouse(settings(home), lambda con: forget(con, paths), write=True)
    missing = sorted(set(paths) - set(done))
    if as_json:
        emit_json({"forgotten": done, "not_in_error": missing}, ok=not missing)
    else:
        for p in done:
            console.print(f"forgotten: {escape(p)} (read again only once it changes)", soft_wrap=True)
        for p in missing:
            err.print(f"not a file in error, nothing to forget: {escape(p)} (`cbi health` lists the files in error)",
                      soft_wrap=True)
    if missing:
        raise typer.Exit(1)


@commands.command("migrate-legacy")
def migrate_legacy(
    legacy_dir: Annotated[Path | None, typer.Argument(help="Folder of legacy exports named dataset.table.parquet.")] = None,
    from_bigquery: Annotated[list[str] | None, typer.Option(
        "--from-bigquery", help="Read the legacy tables from BigQuery instead: PROJECT.DATASET (its mapped tables) or "
        "PROJECT.DATASET.TABLE; repeatable.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Migrate the legacy BigQuery tables (exports, or read from BigQuery): source precedence, dedup log, defects reported by rule."""
    if (legacy_dir is None) == (not from_bigquery):
        fail("give a folder of legacy exports or --from-bigquery PROJECT.DATASET[.TABLE] (one of the two)")
    s = settings(home)
    downloaded: dict[str, Any] | None = None
    if from_bigquery:
        from google.api_core.exceptions import GoogleAPICallError

        from sync import legacy as legacy_source
        from sync.bigquery.client import NoCredentials, make_client
        from sync.journal import redact
        from sync.retry import Offline

        try:
            for source in from_bigquery:
                legacy_source.parse_source(source)  # a malformed name is said before credentials are needed
            got = legacy_source.download(make_client(s), s, from_bigquery)
        except (legacy_source.LegacySourceError, NoCredentials, Offline, GoogleAPICallError) as exc:
            fail(redact(f"reading the legacy tables from BigQuery: {exc}"))
        downloaded = got.as_dict()
        legacy_dir = Path(got.folder)
    folder = legacy_dir.expanduser()

    def step(con, say):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder of legacy exports")
        report = pipeline.migrate_legacy_dir(con, folder, say)
        if downloaded is not None:
            report["from_bigquery"] = downloaded
        return report

    if as_json:
        _run(home, True, step)
        return
    report = with_warehouse(s, lambda con: step(con, None), FileNotFoundError, write=True)
    if downloaded is not None:
        for snap in downloaded["snapshots"]:
            how = {"reused": "unchanged in BigQuery, snapshot reused", "storage": "read through the Storage Read API",
                   "rest": f"read through REST (Storage Read API: {snap['storage_unavailable']})"}[snap["read_api"]]
            console.print(f"{snap['table']}: {snap['rows']:,} rows, {escape(how)}", soft_wrap=True)
        if downloaded["unmapped"]:
            console.print(f"not mapped, not read: {', '.join(downloaded['unmapped'])}", soft_wrap=True)
    print_batch(report)
    console.print("defects by rule:")
    for rule, d in sorted(report["defects_by_rule"].items()):
        console.print(f"  {rule}: {d['rows']:,} rows in {', '.join(d['tables'])}", soft_wrap=True)
    console.print(f"dedup conflicts logged: {report['dedup_conflicts']:,} (monitoring.dedup_conflicts)")
    if not report["ok"]:
        raise typer.Exit(1)


@commands.command("build-continuous")
def build_continuous_cmd(
    root: Annotated[list[str] | None, typer.Option("--root", help="Only this root (repeatable).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild market_data.futures_continuous_1d (volume roll, CME trade dates, ZL Yahoo stitch)."""
    from .continuous import build_continuous

    s = settings(home)
    report = with_warehouse(s, lambda con: build_continuous(con, root or None), KeyError, write=True)
    if as_json:
        emit_json(report.as_dict())
    else:
        console.print(report.summary(), soft_wrap=True, markup=False)
