"""`cbi train`, `cbi train compare`, `cbi train runs` (a sub-app registered on the main app)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .cli_base import HomeOpt, JsonOpt, console, emit_json, err, fail, print_gate, with_warehouse
from .config import settings

train_app = typer.Typer(
    help="LightGBM point + P10/P50/P90 models per horizon on features.daily_ml_matrix (offline, purged "
         "walk-forward CV); `cbi train compare A B` and `cbi train runs` read the recorded runs.",
    invoke_without_command=True,
)
commands = typer.Typer()  # registered by cbi_local/cli.py
commands.add_typer(train_app, name="train")

_RESEARCH = "[bold yellow]RESEARCH[/]"


def _f(v: Any, digits: int = 3) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def _print_report(r: dict[str, Any]) -> None:
    label = _RESEARCH if r["is_research"] else "[green]production[/]"
    console.print(
        f"run {r['run_id']} {label}: {r['symbol']} matrix {r['matrix_source']}, {r['rows']:,} rows "
        f"{r['window'][0]}..{r['window'][1]}, {len(r['regimes'])} regimes, weights {r['weights']}, seed {r['seed']}, "
        f"{len(r['features'])} features, {r['seconds']:.1f}s",
        soft_wrap=True,
    )
    if r["is_research"]:
        console.print(f"  {_RESEARCH}: trained on a non-canonical matrix; recorded with is_research = true, never production.")
    console.print("  regime names, boundaries and weights come from the user's registry, written after the fact (ex "
                  "post): the weights and regime features carry hindsight no live forecast has.", soft_wrap=True)
    folds = Table(title="purged walk-forward folds (embargo = sessions between train end and test start, >= horizon)")
    for col in ("h", "fold", "train", "rows", "embargo", "test", "rows ", "regimes", "label overlap",
                "MAPE % model/base/unw"):
        folds.add_column(col, justify="left" if col in ("h", "fold", "train", "test") else "right")
    for h, hr in r["horizons"].items():
        for f in hr["folds"]:
            m = f["metrics"]
            folds.add_row(h, str(f["fold"]), f"{f['train_start']}..{f['train_end']}", f"{f['n_train']:,}",
                          str(f["gap_sessions"]), f"{f['test_start']}..{f['test_end']}", f"{m['n_test']:,}",
                          str(f["train_regimes"]), str(f["label_overlap_rows"]),
                          f"{_f(m['mape'], 2)} / {_f(m['baseline_mape'], 2)} / {_f(m['unweighted_mape'], 2)}")
    console.print(folds)
    few = sorted({(f["fold"], f["train_regimes"]) for hr in r["horizons"].values() for f in hr["folds"]
                  if f.get("train_regimes_below_minimum")})
    if few:
        from .training.runs import MIN_REGIMES  # the module is loaded already: training just ran

        console.print("  [yellow]note[/]: " + ", ".join(f"fold {n} trains on {k} regimes" for n, k in few)
                      + f", fewer than the window's minimum ({MIN_REGIMES}, rule min_distinct on regimes.regime_calendar): "
                      f"that rule is of the whole window; a fold's own floor is {r['cv']['min_train']} sessions "
                      "(min_train), so the early folds of an expanding walk-forward see fewer regimes. Their test rows "
                      "are in every pooled score.", soft_wrap=True)
    t = Table(title="out-of-fold metrics (all folds' test rows): model beside the naive no-change baseline and the "
                    "unweighted model")
    for col in ("h", "forecast", "MAPE %", "MAE", "R²", "dir. acc.", "pinball P10", "pinball P50", "pinball P90",
                "cover P10-P90"):
        t.add_column(col, justify="left" if col in ("h", "forecast") else "right", no_wrap=True)
    keys = ("mape", "mae", "r2", "directional_accuracy", "pinball_p10", "pinball_p50", "pinball_p90", "coverage_p10_p90")
    for h, hr in r["horizons"].items():
        m = hr["metrics"]
        for i, (name, prefix) in enumerate((("model", ""), ("baseline", "baseline_"), ("unweighted", "unweighted_"))):
            if prefix == "unweighted_" and r["weights"] == "none":
                continue
            cells = (_f(m[prefix + k], 2 if k in ("mape", "mae") else 3) for k in keys)
            t.add_row(h if i == 0 else "", name if i else "[bold]model[/]", *cells, end_section=prefix == "unweighted_")
    console.print(t)
    _print_scoring(r)
    fc = Table(title=f"published forecasts {'(RESEARCH) ' if r['is_research'] else ''}from {r['forecasts'][0]['as_of_date']} "
                     f"(close {r['forecasts'][0]['close']:.2f}); method = model only where it passed the gate"
               if r["forecasts"] else "forecasts")
    for col in ("h", "target date", "method", "P10", "P50", "P90", "point", "model's own P10 / P50 / P90"):
        fc.add_column(col, justify="left" if col in ("h", "target date", "method") else "right")
    for f in r["forecasts"]:
        own = f["by_method"]["model"]
        method = f["method"] if f["method"] == "model" else f"[yellow]{f['method']}[/] (baseline)"
        fc.add_row(f["horizon"], str(f["target_date"]), method, _f(f["p10"], 2), _f(f["p50"], 2), _f(f["p90"], 2),
                   _f(f["point"], 2), f"{_f(own['p10'], 2)} / {_f(own['p50'], 2)} / {_f(own['p90'], 2)}")
    console.print(fc)
    a = r.get("as_of") or {}
    if a.get("skipped"):
        console.print(f"  [yellow]as of {a['date']}[/], not the window's last row {a['last_row']}: skipped "
                      + "; ".join(f"{s['date']} ({escape(s['reason'])})" for s in a["skipped"])
                      + f". Rule: {a['rule']}.", soft_wrap=True)
    if any(f["method"] != "model" for f in r["forecasts"]):
        console.print(f"  the model did not pass the publication gate at {', '.join(f['horizon'] for f in r['forecasts'] if f['method'] != 'model')}: "
                      "the best baseline is published instead (see the scoring table); "
                      f"gate: {r['publication_gate']}", soft_wrap=True)
    top = {h: ", ".join(x["feature"] for x in hr["feature_importance"][:3]) for h, hr in r["horizons"].items()}
    console.print("top features (gain): " + "; ".join(f"{h}: {v}" for h, v in top.items()), soft_wrap=True)
    if r.get("model_path"):
        console.print(
            f"recorded: training.model_runs ({len(r['horizons'])} rows), predictions.zl_forecasts "
            f"({r.get('forecasts_written', 0)} rows), batch {r['batch_id']}; models in {escape(r['model_path'])}",
            soft_wrap=True,
        )
    print_gate(r.get("gate"))


def _p(v: Any) -> str:
    return "—" if v is None else ("<0.001" if v < 0.001 else f"{v:.3f}")


def _print_scoring(r: dict[str, Any]) -> None:
    t = Table(title="scoring on the same test rows (all folds): model beside the baselines",
              caption="QS = quantile score (mean pinball, % of price), lower is better; cover = share inside P10-P90 "
                      "(pooled, then per fold); DM p = one-sided p that the method beats no_change (abs % error) / "
                      "vol_band (quantile loss); * = published; (i) = indicative, few independent windows")
    for col in ("h", "method", "MAPE%", "QS%", "cover", "per fold", "dir. acc. [90% CI]", "DM p nc / vb"):
        t.add_column(col, justify="left" if col in ("h", "method") else "right", no_wrap=True)
    for h, hr in r["horizons"].items():
        sc = hr["scoring"]
        rows = {"model": sc["model"], **sc["baselines"]}
        for i, (name, m) in enumerate(rows.items()):
            label = f"[bold green]{name} *[/]" if name == sc["published"]["method"] else name
            t.add_row(
                (f"{h} (i)" if sc["indicative"] else h) if i == 0 else "", label, _f(m["mape"], 2),
                _f(m["quantile_score"], 3), _f(m["coverage_p10_p90"], 2),
                " ".join(_f(f[name]["coverage_p10_p90"], 2) for f in sc["per_fold"]),
                f"{_f(m['directional_accuracy'], 2)} [{_f(m.get('directional_accuracy_lo'), 2)}, "
                f"{_f(m.get('directional_accuracy_hi'), 2)}]",
                f"{_p(m.get('dm_p_better_no_change'))} / {_p(m.get('dm_p_better_vol_band'))}",
                end_section=i == len(rows) - 1)
    console.print(t)


@train_app.callback()
def train(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Option("--symbol", help="Matrix symbol.")] = "ZL",
    horizons: Annotated[str, typer.Option("--horizons", help="Comma-separated horizons.")] = "1w,1m,3m,6m,12m",
    source: Annotated[str, typer.Option("--source", help="canonical, or yahoo_historical (research: recorded as "
                                                         "is_research, never production).")] = "canonical",
    weights: Annotated[bool, typer.Option("--weights/--no-weights", help="Regime sample weights.")] = True,
    folds: Annotated[int, typer.Option("--folds", help="Walk-forward test folds.")] = 3,
    test_size: Annotated[int | None, typer.Option("--test-size", help="Rows per test fold (default: labelled rows "
                                                                      "// (folds + 2)).")] = None,
    embargo: Annotated[int | None, typer.Option("--embargo", help="Sessions between train and test (default and "
                                                                  "minimum: the horizon).")] = None,
    window: Annotated[str, typer.Option("--window", help="expanding or rolling training window.")] = "expanding",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data: same metrics).")] = 42,
    rounds: Annotated[int | None, typer.Option("--rounds", help="Boosting rounds per model.")] = None,
    start: Annotated[str | None, typer.Option("--start", help="First date of the data window (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last date of the data window (YYYY-MM-DD).")] = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train point + quantile models per horizon, with purged walk-forward CV; record the run and forecasts."""
    if ctx.invoked_subcommand is not None:
        return
    from .training import TrainError, TrainOptions
    from .training import train as run_train
    from .training.model import DEFAULT_ROUNDS

    try:
        opts = TrainOptions(
            symbol=symbol, horizons=[h.strip() for h in horizons.split(",") if h.strip()], matrix_source=source,
            weights=weights, folds=folds, test_size=test_size, embargo=embargo, window=window, seed=seed,
            rounds=rounds or DEFAULT_ROUNDS, start=date.fromisoformat(start) if start else None,
            end=date.fromisoformat(end) if end else None,
        )
    except ValueError as exc:
        fail(f"bad date: {exc}")
    s = settings(home)

    def train_on(con):
        if not as_json:  # said once the warehouse is open, just before the long part
            err.print(f"training {opts.symbol} {','.join(opts.horizons)} on the {source} matrix ...")
        return run_train(con, s.home, opts)

    report = with_warehouse(s, train_on, TrainError, write=True)
    if as_json:
        emit_json(report, ok=not (report.get("gate") and report["gate"]["failed"]))
    else:
        _print_report(report)
    if report.get("gate") and report["gate"]["failed"]:
        raise typer.Exit(1)


@train_app.command("compare")
def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="Run id (or unique prefix, or latest/previous).")],
    run_b: Annotated[str, typer.Argument(help="Run id (or unique prefix, or latest/previous).")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Metric deltas B - A per horizon (ΔMAPE < 0: B is better)."""
    from .training import TrainError, compare

    result = with_warehouse(settings(home), lambda con: compare(con, run_a, run_b), TrainError)
    if as_json:
        emit_json(result)
        return
    for side in ("a", "b"):
        i = result[f"{side}_info"]
        label = _RESEARCH if i["is_research"] else "[green]production[/]"
        console.print(f"{side.upper()}: {result['run_' + side]} {label} {i['symbol']} {i['matrix_source']} seed {i['seed']} "
                      f"git {str(i['git_commit'])[:12]} data {str(i['data_fingerprint'])[:12]}", soft_wrap=True)
    for note in result["notes"]:
        console.print(f"  [yellow]![/] {escape(note)}")
    t = Table(title="B - A (green: B better)")
    t.add_column("metric")
    hs = list(result["horizons"])
    for h in hs:
        t.add_column(f"{h} A → B (Δ)", justify="right")
    metrics = list(next(iter(result["horizons"].values()))["metrics"]) if hs else []
    for k in metrics:
        cells = []
        for h in hs:
            m = result["horizons"][h]["metrics"][k]
            d = "—" if m["delta"] is None else f"{m['delta']:+.3f}"
            colour = {True: "green", False: "red"}.get(m["b_better"])
            cells.append(f"{_f(m['a'])} → {_f(m['b'])} ({f'[{colour}]{d}[/]' if colour else d})")
        t.add_row(k, *cells)
    console.print(t)
    scored = [h for h in hs if result["horizons"][h].get("scoring")]
    if not scored:
        return
    s = Table(title="scores on each run's test rows: the model beside the baselines (green: B better; "
                    "QS = quantile score, % of price)")
    s.add_column("method / score")
    for h in scored:
        s.add_column(f"{h} A → B (Δ)", justify="right")
    pub = [f"{' → '.join(result['horizons'][h]['scoring']['published'])}" for h in scored]
    s.add_row("published", *pub, end_section=True)
    for k in next(iter(result["horizons"][h]["scoring"]["methods"] for h in scored)):
        cells = []
        for h in scored:
            m = result["horizons"][h]["scoring"]["methods"][k]
            d = "—" if m["delta"] is None else f"{m['delta']:+.3f}"
            colour = {True: "green", False: "red"}.get(m["b_better"])
            cells.append(f"{_f(m['a'])} → {_f(m['b'])} ({f'[{colour}]{d}[/]' if colour else d})")
        s.add_row(k, *cells)
    console.print(s)


@train_app.command("runs")
def runs_cmd(
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most recent runs.")] = 20,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Recorded runs, newest first, with MAPE per horizon beside the naive baseline's."""
    from .training import list_runs

    rows = with_warehouse(settings(home), lambda con: list_runs(con, symbol.upper() if symbol else None, limit))
    if as_json:
        emit_json(rows)
        return
    t = Table(title="training runs: per horizon MAPE % model / no-change, quantile score % model / vol band, and "
                    "the published method")
    for col in ("run", "created", "symbol", "matrix", "kind", "seed", "by horizon"):
        t.add_column(col)
    for r in rows:
        cells = []
        for h in r["horizons"]:
            cell = f"{h} MAPE {_f(r['mape'].get(h), 2)}/{_f(r['baseline_mape'].get(h), 2)}"
            sc = r["scores"].get(h)
            if sc:
                cell += (f" QS {_f(sc['model']['quantile_score'], 2)}/{_f(sc['vol_band']['quantile_score'], 2)}"
                         f" → {r['published'][h]}")
            cells.append(cell)
        t.add_row(r["run_id"], str(r["created_at"])[:19], r["symbol"], r["matrix_source"],
                  _RESEARCH if r["is_research"] else "production", str(r["seed"]), "\n".join(cells))
    console.print(t)
