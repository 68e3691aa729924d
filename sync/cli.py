"""`cbi sync push|pull|diff|migrate-schema|views|archive|status` and `cbi daemon [install]`
(`commands`, registered by cbi_local/cli.py)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from cbi_local import warehouse
from cbi_local.cli_base import HomeOpt, JsonOpt, console, emit_json, err, fail
from cbi_local.config import Settings, settings

commands = typer.Typer()  # registered by cbi_local/cli.py
sync_app = typer.Typer(help="BigQuery sync: push validated batches exactly once, pull cloud-written tables, parity diff, status.", no_args_is_help=True)
commands.add_typer(sync_app, name="sync")
daemon_app = typer.Typer(help="Run inbox -> ingest -> push -> pull in a loop; `cbi daemon install` makes it a service.", invoke_without_command=True)
commands.add_typer(daemon_app, name="daemon")

TablesArg = Annotated[list[str] | None, typer.Argument(help="dataset.table names (default: every synced table).")]


@contextlib.contextmanager
def _open(home: Path | None) -> Iterator[tuple[Settings, object]]:
    s = settings(home)
    if not s.warehouse_path.exists():
        fail(f"no warehouse at {s.warehouse_path}: run `cbi init --home {s.home}` first")
    try:
        warehouse.init(s.warehouse_path)  # adds the sync journal's columns/tables to older warehouses
        with warehouse.open_warehouse(s.warehouse_path) as con:
            yield s, con
    except warehouse.WarehouseError as exc:
        fail(str(exc))


def _client(s: Settings):
    from sync.bigquery.client import make_client

    return make_client(s)


def _guard(fn):
    """Run fn, turning sync failures into a clean exit 2 (credentials never printed)."""
    from google.api_core.exceptions import GoogleAPICallError

    from .bigquery.client import NoCredentials
    from .journal import SyncBusy, redact
    from .push import LocationMismatch
    from .retry import Offline

    try:
        return fn()
    except (SyncBusy, Offline, NoCredentials, LocationMismatch, GoogleAPICallError, ValueError, KeyError) as exc:
        fail(redact(str(exc)))


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@sync_app.command("push")
def push_cmd(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (tables, partitions, rows, bytes); change nothing.")] = False,
) -> None:
    """Push validated batches to BigQuery: staged, MERGEd on the key, verified, journaled; exactly once."""
    from . import push as push_mod

    with _open(home) as (s, con):
        report = _guard(lambda: push_mod.push(con, _client(s), s, dry_run=dry_run))
    if as_json:
        emit_json(report.as_dict())
    else:
        if report.error and not report.batches:
            n = len(report.pending)
            console.print(
                f"[red]✗[/] {escape(report.error)}: {n} validated batch{'es' if n != 1 else ''} pending, nothing "
                f"{'planned' if dry_run else 'pushed'}", soft_wrap=True,
            )
        elif not report.batches:
            console.print("nothing to push: no validated batches")
        for change in report.schema_changes:
            console.print(f"  schema: {escape(change)}", soft_wrap=True)
        for b in report.batches:
            d = b.as_dict()
            console.print(f"batch {b.batch_id} ({b.status})")
            for tp in d["targets"]:
                if tp["batch_partitions"] == 0:
                    continue
                sizes = "/".join(f"{c['partition_count']:,}" for c in tp["chunks"])
                est = tp.get("estimated_bytes_processed")
                console.print(
                    f"  {tp['table']}: {tp['batch_partitions']:,} partitions in the batch, {tp['differing_partitions']:,} differ "
                    f"from BigQuery -> {len(tp['chunks'])} chunks ({sizes or 'none'}), {tp['rows']:,} rows, {_human_bytes(tp['bytes'])}"
                    + (f"; BigQuery dry run: {_human_bytes(est)} read per pass (MERGE, verify)" if est is not None else ""),
                    soft_wrap=True,
                )
            if b.error:
                hint = "rerun `cbi sync push`" if b.rerun_helps else "a rerun fails the same way until this is fixed"
                console.print(f"  [red]✗[/] {escape(b.error)} (the batch stays pending; {hint})", soft_wrap=True)
        if report.created_tables:
            console.print(f"created in BigQuery: {len(report.created_datasets)} datasets, {len(report.created_tables)} tables")
    if not report.ok:
        raise typer.Exit(1)


@sync_app.command("pull")
def pull_cmd(
    tables: TablesArg = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    prune: Annotated[bool, typer.Option("--prune", help="Also delete local partitions that BigQuery does not have.")] = False,
) -> None:
    """Download only the partitions of pull tables (weather, CFTC) that differ from BigQuery."""
    from . import pull as pull_mod

    with _open(home) as (s, con):
        report = _guard(lambda: pull_mod.pull(con, _client(s), s, tables or None, prune=prune))
    if as_json:
        emit_json(report.as_dict())
        return
    for t in report.tables:
        if not t.bigquery_table_exists:
            console.print(f"{t.table}: not in BigQuery yet; local data kept")
            continue
        console.print(
            f"{t.table}: {t.partitions_checked} partitions compared, {len(t.downloaded_partitions)} downloaded "
            f"({t.rows_downloaded:,} rows)" + (f": {', '.join(t.downloaded_partitions[:12])}" if t.downloaded_partitions else "")
            + (f"; {len(t.kept_local_only)} local-only partitions kept (--prune deletes)" if t.kept_local_only else ""),
            soft_wrap=True,
        )


@sync_app.command("diff")
def diff_cmd(
    tables: TablesArg = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    all_partitions: Annotated[bool, typer.Option("--all", help="List equal partitions too.")] = False,
) -> None:
    """Per table and partition: equal, differ, missing on either side (fingerprints only); exit 1 on any difference."""
    from . import pull as pull_mod

    with _open(home) as (s, con):
        diffs = _guard(lambda: pull_mod.diff(con, _client(s), s, tables or None))
    ok = all(d.ok for d in diffs)
    if as_json:
        emit_json({"ok": ok, "tables": [d.as_dict(all_partitions) for d in diffs]})
    else:
        for d in diffs:
            x = d.as_dict()
            c = x["counts"]
            mark = "[green]✓[/]" if d.ok else "[red]✗[/]"
            where = "" if d.bigquery_table_exists else " [dim](no BigQuery table)[/]"
            console.print(
                f"{mark} {d.table}{where}: {c['equal']:,} equal, {c['differ']:,} differ, {c['missing_local']:,} missing locally, "
                f"{c['missing_bigquery']:,} missing in BigQuery (rows: local {x['local_rows']:,}, BigQuery {x['bigquery_rows']:,})",
                soft_wrap=True,
            )
            for p in d.partitions:
                if p.status != "equal":
                    console.print(f"    {p.partition}: {p.status} (local {p.local_rows}, BigQuery {p.bigquery_rows})")
    if not ok:
        raise typer.Exit(1)


@sync_app.command("migrate-schema")
def migrate_schema_cmd(
    table: Annotated[str, typer.Argument(help="dataset.table whose contract changed in a way the push refuses.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    do_apply: Annotated[bool, typer.Option("--apply", help="Do it: local ALTERs in one transaction, then BigQuery rebuilt through a verified copy.")] = False,
) -> None:
    """Plan (default) or apply a schema change the push refuses: type changes, dropped columns, REQUIRED; each measured on the rows first."""
    from . import migrate

    try:
        migrate.contract_for(table)  # a wrong name is said before any credential or connection is needed
    except migrate.MigrateError as exc:
        fail(str(exc))
    with _open(home) as (s, con):
        report = _guard(lambda: migrate.migrate(con, _client(s), s, table, apply=do_apply))
    if as_json:
        emit_json(report.as_dict())
    else:
        for t in report.missing_in_bigquery:
            console.print(f"  {t}: not in BigQuery; the next push creates it from the contract")
        for c in report.changes:
            where = "local" if c.engine == "duckdb" else "BigQuery"
            cost = f"; loses {c.loss:,} values" if c.loss else ""
            mark = f" [red]✗ blocked: {escape(c.blocker)}[/]" if c.blocker else ""
            console.print(f"  {where} {c.table}: {escape(c.change)} -> {escape(c.how)}{cost}{mark}", soft_wrap=True)
        if not report.changes:
            console.print(f"{report.table}: the warehouse and BigQuery already match the contract; nothing to migrate")
        elif report.blockers:
            console.print(f"[red]✗[/] {report.table}: {len(report.blockers)} change(s) cannot be applied as the data stands; nothing changed")
        elif not report.applied:
            console.print(f"{report.table}: {len(report.changes)} change(s) planned; nothing changed. Run with --apply to do it "
                          "(BigQuery's copy is verified before the original is dropped)")
        else:
            console.print(f"[green]✓[/] {report.table}: {len(report.changes)} change(s) applied (run {report.run_id})")
            for d in report.parity:
                c = d["counts"]
                console.print(f"  parity {d['table']}: {c['equal']:,} partitions equal, {c['differ'] + c['missing_local'] + c['missing_bigquery']:,} "
                              "differ" + ("" if d["ok"] else " (pending batches push them: `cbi sync push`)"))
    if report.blockers:
        raise typer.Exit(1)


@sync_app.command("views")
def views_cmd(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    print_only: Annotated[bool, typer.Option("--print", help="Print the SQL instead of applying it.")] = False,
) -> None:
    """Create the api views (never exposing private rows) and row access policies for private tables."""
    from . import privacy

    s = settings(home)
    views = {f"api.{v.name}": privacy.view_sql(s.bq_project, v) for v in privacy.API_VIEWS}
    policies = privacy.row_access_policies(s.bq_project)
    if print_only:
        if as_json:
            emit_json({"views": views, "row_access_policies": policies})
            return
        for name, sql in views.items():
            sys.stdout.write(f"-- {name}\nCREATE OR REPLACE VIEW `{s.bq_project}.{name}` AS\n{sql};\n\n")
        for sql in policies:
            sys.stdout.write(sql + ";\n")
        if not policies:
            sys.stdout.write(f"-- no row access policies: set {privacy.OWNERS_ENV} / {privacy.READERS_ENV} (IAM members)\n")
        elif not any("cbi_pusher_all_rows" in p for p in policies):
            sys.stdout.write(f"-- no TRUE-filter policy for the pushing identity: set {privacy.PUSHERS_ENV}, or the next push fails on these tables\n")
        return

    def apply():
        client = _client(s)
        pushers = privacy.pushing_members(client)
        created = privacy.ensure_api_views(client, s.bq_project)
        applied = privacy.apply_policies(client, privacy.row_access_policies(s.bq_project, pushers=pushers))
        return created, applied, pushers

    created, applied, pushers = _guard(apply)
    warning = None
    if applied and not pushers:
        warning = (
            f"row access policies exist but none grants the pushing identity all rows: BigQuery refuses the push's MERGE "
            f"on those tables until {privacy.PUSHERS_ENV} names it (e.g. serviceAccount:pusher@PROJECT.iam.gserviceaccount.com) "
            "and `cbi sync views` runs again"
        )
    if as_json:
        emit_json({"views": created, "row_access_policies": applied, "pushers": pushers, "warning": warning})
    else:
        console.print(f"api views: {', '.join(created)}; row access policies applied: {len(applied)}")
        if warning:
            err.print(f"[yellow]![/] {escape(warning)}", soft_wrap=True)


@sync_app.command("archive")
def archive_cmd(
    home: HomeOpt = None,
    as_json: JsonOpt = False,
    do_apply: Annotated[bool, typer.Option("--apply", help="Do it: copy, verify row counts, then delete (default: --plan, print only).")] = False,
    plan_only: Annotated[bool, typer.Option("--plan", help="Print what would be moved, dropped and kept (the default).")] = False,
) -> None:
    """Legacy cleanup: tables no contract declares, with rows, bytes and a verdict; archive backups and duplicates, drop empty tables."""
    from . import archive

    if do_apply and plan_only:
        fail("--plan and --apply exclude each other")
    s = settings(home)

    def run():
        client = _client(s)
        plan = archive.inventory(client, s)
        return archive.apply(client, s, plan) if do_apply else plan

    try:
        plan = _guard(run)
    except archive.ArchiveError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"applied": do_apply, **plan.as_dict()})
        return
    for e in plan.entries:
        when = e.modified.strftime("%Y-%m-%d") if e.modified else "?"
        console.print(f"  {e.table} ({e.kind.lower()}, {e.location}): {e.rows:,} rows, {_human_bytes(e.bytes)}, modified {when}: "
                      f"{e.verdict}{f' ({e.of})' if e.of else ''}", soft_wrap=True)
    verb = {"move": "moved" if do_apply else "would move", "drop": "dropped" if do_apply else "would drop", "keep": "kept"}
    for a in plan.actions:
        if a.action == "keep":
            continue
        state = "" if not do_apply else (" [green]✓[/] verified" if a.done else f" [yellow]not done[/]: {escape(a.reason)}")
        console.print(f"{verb[a.action]} {a.table}" + (f" -> {a.to}" if a.to else "") + f" ({a.reason}, {a.rows:,} rows){state}", soft_wrap=True)
    c = plan.as_dict()["counts"]
    console.print(f"{c['move']} to archive, {c['drop']} empty to drop, {c['keep']} kept"
                  + ("" if do_apply else "; run with --apply to do it (each copy is verified before its original is deleted)"))
    if plan.dropped_datasets:
        console.print(f"emptied datasets deleted: {', '.join(plan.dropped_datasets)}")


@sync_app.command("status")
def status_cmd(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Pending/pushed/failed batches, last push and pull per table, last error, daemon heartbeat (local only)."""
    from .status import sync_status

    import duckdb

    s = settings(home)
    try:
        with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
            st = sync_status(con)
    except warehouse.WarehouseError as exc:  # missing, locked by a writer: its own message says so
        fail(str(exc))
    except duckdb.Error as exc:  # an old warehouse without the journal's tables or columns
        fail(f"{exc} (run `cbi init` to migrate the warehouse)")
    if as_json:
        emit_json(st)
        return
    b = st["batches"]
    console.print(f"batches: {b['pending']} pending, {b['pushed']} pushed, {b['failed_validation']} failed validation, {b['failed']} failed")
    for p in st["pending"]:
        console.print(f"  pending {p['batch_id']} ({p['rows_loaded'] or 0:,} rows)" + (f" [red]last error: {escape(p['error'])}[/]" if p["error"] else ""), soft_wrap=True)
    for row in st["last_push"]:
        console.print(f"  last push {row['table']}: {row['at']}")
    for row in st["last_pull"]:
        console.print(f"  last pull {row['table']}: {row['at']}")
    if st["last_error"]:
        e = st["last_error"]
        console.print(f"last error ({e['at']}, {e['step']}): {escape(str(e['error']))}", soft_wrap=True)
    by = st["bigquery_bytes"]
    month = by["last_30_days"]
    console.print(
        f"BigQuery bytes, last 30 days: {_human_bytes(month['billed'])} billed, {_human_bytes(month['processed'])} processed "
        f"({month['steps']} journaled query steps)"
    )
    if by["runs"]:
        r = by["runs"][0]
        console.print(f"  last run {r['run_id']}: {_human_bytes(r['billed'])} billed, {_human_bytes(r['processed'])} processed")
    d = st["daemon"]
    console.print(
        "daemon: never ran" if d is None else f"daemon: {d['hostname']} pid {d['pid']}, last heartbeat {d['heartbeat_at']} ({d['age_seconds']}s ago), {d['cycles']} cycles, {d['status']}"
    )


def _fetch_options(fetch: list[str] | None, inbox: Path | None) -> tuple[str, ...]:
    """`--fetch` of `cbi daemon` and `cbi daemon install`: known sources only, and an inbox to land in."""
    from .daemon import FETCHERS

    chosen = tuple(fetch or ())
    if unknown := [f for f in chosen if f not in FETCHERS]:
        fail(f"--fetch {', '.join(unknown)}: the daemon fetches only {', '.join(FETCHERS)} (a Databento download costs "
             "money: plan it with `cbi fetch plan`, download it yourself)")
    if chosen and inbox is None:
        fail("--fetch needs an inbox to land the files in: pass --inbox DIR or set CBI_INBOX")
    return chosen


@daemon_app.callback()
def daemon_cmd(
    ctx: typer.Context,
    home: HomeOpt = None,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between cycles.")] = 300,
    inbox: Annotated[Path | None, typer.Option("--inbox", help="Inbox folder (default: $CBI_INBOX).")] = None,
    cycles: Annotated[int | None, typer.Option("--cycles", help="Stop after this many cycles (default: run until SIGTERM/SIGINT).")] = None,
    fetch: Annotated[list[str] | None, typer.Option("--fetch", help="Refresh a source into the inbox each --fetch-every hours: fred (FRED_API_KEY).")] = None,
    fetch_every: Annotated[float, typer.Option("--fetch-every", help="Hours between fetches (the first cycle always fetches).")] = 6,
) -> None:
    """Loop: [fetch ->] inbox -> ingest -> health gate -> push -> pull -> heartbeat; single instance; stops cleanly on SIGTERM/SIGINT."""
    if ctx.invoked_subcommand is not None:
        return
    from .daemon import Daemon, inbox_dir
    from .journal import SyncBusy

    s = settings(home)
    if not s.warehouse_path.exists():
        fail(f"no warehouse at {s.warehouse_path}: run `cbi init --home {s.home}` first")
    box = inbox.expanduser().resolve() if inbox else None
    fetch = _fetch_options(fetch, inbox_dir(s, box))
    if "fred" in fetch and not (s.fred_api_key and s.fred_api_key.get_secret_value()):
        fail("--fetch fred needs FRED_API_KEY (free at https://fred.stlouisfed.org/docs/api/api_key.html)")
    if fetch_every <= 0:
        fail("--fetch-every must be a positive number of hours")
    warehouse.init(s.warehouse_path)
    d = Daemon(s, interval=interval, inbox=box, fetch=fetch, fetch_every=fetch_every * 3600)
    d.install_signal_handlers()
    try:
        code = d.run(max_cycles=cycles, log=lambda m: err.print(escape(m), soft_wrap=True))
    except SyncBusy as exc:
        fail(str(exc))
    raise typer.Exit(code)


@daemon_app.command("install")
def daemon_install(
    home: HomeOpt = None,
    interval: Annotated[int, typer.Option("--interval", help="Seconds between cycles.")] = 300,
    inbox: Annotated[Path | None, typer.Option("--inbox", help="Inbox folder (default: $CBI_INBOX).")] = None,
    print_only: Annotated[bool, typer.Option("--print", help="Print the service definition instead of writing it.")] = False,
    kind: Annotated[str, typer.Option("--kind", help="launchd (macOS), systemd (Linux) or both (with --print).")] = "",
    fetch: Annotated[list[str] | None, typer.Option("--fetch", help="Pass --fetch to the service's daemon: fred.")] = None,
    fetch_every: Annotated[float, typer.Option("--fetch-every", help="Hours between fetches.")] = 6,
) -> None:
    """Emit a macOS launchd plist (and a systemd user unit) that runs `cbi daemon`."""
    from .daemon import inbox_dir, launchd_plist, service_paths, systemd_unit

    s = settings(home)
    box = inbox_dir(s, inbox.expanduser().resolve() if inbox else None)
    chosen = kind or ("launchd" if print_only or sys.platform == "darwin" else "systemd")
    if chosen not in ("launchd", "systemd", "both"):
        fail(f"--kind must be launchd, systemd or both, not {chosen!r}")
    fetch = _fetch_options(fetch, box)
    every = fetch_every if fetch else None
    texts = {"launchd": launchd_plist(s, interval, box, fetch, every), "systemd": systemd_unit(s, interval, box, fetch, every)}
    kinds = ["launchd", "systemd"] if chosen == "both" else [chosen]
    if print_only:
        for k in kinds:
            if len(kinds) > 1:
                sys.stdout.write(f"# --- {k}: {service_paths()[k]} ---\n")
            sys.stdout.write(texts[k])
        return
    for k in kinds:
        path = service_paths()[k]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(texts[k])
        hint = (f"launchctl bootstrap gui/$(id -u) {path}" if k == "launchd"
                else "systemctl --user daemon-reload && systemctl --user enable --now cbi-daemon")
        console.print(f"wrote {path}; start it with: {hint}", soft_wrap=True)
        if "fred" in fetch:
            console.print("the service needs FRED_API_KEY in its environment (never written into the file): "
                          + ("`launchctl setenv FRED_API_KEY ...` before starting it" if k == "launchd"
                             else "`systemctl --user set-environment FRED_API_KEY=...`"), soft_wrap=True)

