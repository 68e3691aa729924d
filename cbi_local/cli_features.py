"""`cbi features build` and `cbi features export` (a sub-app registered on the main app)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .cli_base import HomeOpt, JsonOpt, console, emit_json, print_gate, with_warehouse
from .config import settings

features_app = typer.Typer(
    help="The daily ML matrix (features.daily_ml_matrix): build it from the warehouse, export it flat.",
    no_args_is_help=True,
)
commands = typer.Typer()  # registered by cbi_local/cli.py
commands.add_typer(features_app, name="features")

SymbolsOpt = Annotated[
    str | None, typer.Option("--symbols", help="Comma-separated symbols (canonical: continuous roots; default all; "
                                               "yahoo_historical: default ZL).")
]


@features_app.command("build")
def build(
    symbols: SymbolsOpt = None,
    source: Annotated[str, typer.Option("--source", help="canonical (futures_continuous_1d) or yahoo_historical "
                                                         "(research only, never pushed).")] = "canonical",
    roll_adjustment: Annotated[str | None, typer.Option(
        "--roll-adjustment", help="Returns and targets across recorded rolls: none (raw front-month closes) or ratio "
                                  "(back-adjusted by the new/old close ratio at each roll). Default: CBI_ROLL_ADJUSTMENT, "
                                  "else none.")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build features.daily_ml_matrix for the symbols; replaces their (symbol, matrix_source) slice."""
    from .features import FeaturesError, build_features

    s = settings(home)
    syms = [x for x in symbols.split(",") if x.strip()] if symbols else None
    adjust = roll_adjustment or s.roll_adjustment
    report = with_warehouse(s, lambda con: build_features(con, syms, source, roll_adjustment=adjust), FeaturesError,
                            write=True)
    if as_json:
        emit_json(report.as_dict())
    else:
        console.print(
            f"features.daily_ml_matrix ({report.matrix_source}): +{report.inserted} -{report.deleted} "
            f"={report.unchanged} in {report.seconds.get('total', 0):.2f}s"
            + (f" (batch {report.batch_id})" if report.batch_id else " (nothing changed)"),
            soft_wrap=True,
        )
        for sym, n in report.rows.items():
            first, last = report.date_range[sym]
            console.print(f"  {sym}: {n:,} rows {first} .. {last}")
        if report.roll_adjustment == "ratio":
            rolled = ", ".join(f"{sym} {r['recorded']}" + (f" ({r['unadjustable']} unadjustable)" if r["unadjustable"] else "")
                               for sym, r in report.rolls.items())
            console.print(f"  returns and targets ratio back-adjusted at the recorded rolls: {rolled or 'none'}")
        if report.warnings:
            t = Table(title="missing inputs (NULL, never filled)")
            for col in ("symbol", "field", "NULL rows", "dates", "reason"):
                t.add_column(col)
            for w in report.warnings:
                dates = f"{w['first']} .. {w['last']}" if w["first"] else ""
                t.add_row(w["symbol"], w["field"], f"{w['null_rows']:,} / {w['rows']:,}", dates, escape(w["reason"]))
            console.print(t)
        print_gate(report.gate)
    if not report.ok:
        raise typer.Exit(1)


@features_app.command("export")
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="Output format (parquet).")] = "parquet",
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default: <home>/exports/"
                                                         "daily_ml_flat[_<source>].parquet).")] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only this matrix_source.")] = None,
    symbols: SymbolsOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the flat matrix (features.vw_daily_ml_flat: one column per STRUCT field) for training elsewhere."""
    from .features import export

    s = settings(home)
    syms = [x.strip().upper() for x in symbols.split(",") if x.strip()] if symbols else None
    target = (out or s.home / "exports" / f"daily_ml_flat{'_' + source if source else ''}.{fmt}").expanduser()
    result = with_warehouse(s, lambda con: export(con, target, fmt, source, syms), ValueError)
    if as_json:
        emit_json(result)
    else:
        console.print(f"wrote {result['rows']:,} rows x {len(result['columns'])} columns to {escape(result['path'])}")
