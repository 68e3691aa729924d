"""The column catalog: every column name in the warehouse is spelled here, once.

Contracts compose these entries (optionally as `.required()` / `.repeated()`), so a
name always means the same type and the same thing in every table. The user's
migration drifted because `regime_calendar` and `_1m` tables were typed by hand in
several places; here a second spelling cannot exist (tests/data_contracts enforce it).
"""

from __future__ import annotations

from .model import Column, struct

# --- lineage: carried by every loaded row -------------------------------------------
source = Column("source", "STRING", "Where the row came from (databento, yahoo, fred, noaa, cftc, registry, cbi).")
source_file = Column("source_file", "STRING", "Path of the input file the row was read from.")
file_sha256 = Column("file_sha256", "STRING", "SHA-256 of the input file's bytes.")
batch_id = Column("batch_id", "STRING", "Ingest batch (ops.batches) that loaded the row.")
ingested_at = Column("ingested_at", "TIMESTAMP", "When the row was loaded into the warehouse (UTC).")
LINEAGE = (source, source_file, file_sha256, batch_id, ingested_at)

# --- instruments and bars -------------------------------------------------------------
# TIMESTAMP holds microseconds (BigQuery's precision, and DuckDB's TIMESTAMPTZ): Databento's nanosecond
# timestamps are truncated to the microsecond on load, never rounded (ingest/databento_sql.ts_sql).
ts_event = Column("ts_event", "TIMESTAMP", "Databento ts_event: inclusive start of the bar / event time, UTC, to the microsecond (nanoseconds truncated).")
ts_recv = Column("ts_recv", "TIMESTAMP", "Databento ts_recv: capture-server receive time, UTC, to the microsecond (nanoseconds truncated).")
ts_ref = Column("ts_ref", "TIMESTAMP", "Databento ts_ref: the time a statistic refers to, UTC, to the microsecond (nanoseconds truncated).")
symbol = Column("symbol", "STRING", "Instrument symbol: a contract (ESH1, ZLF6) or, in daily series, the series symbol.")
root = Column("root", "STRING", "Product root (ZL, ES, MES, ZS, ZM, CL ...).")
instrument_id = Column("instrument_id", "INT64", "Databento numeric instrument id (venue-assigned).")
publisher_id = Column("publisher_id", "INT64", "Databento publisher id (1 = GLBX.MDP3).")
open = Column("open", "FLOAT64", "Opening price of the bar, in display units.")
high = Column("high", "FLOAT64", "Highest price of the bar, in display units.")
low = Column("low", "FLOAT64", "Lowest price of the bar, in display units.")
close = Column("close", "FLOAT64", "Closing price of the bar, in display units.")
volume = Column("volume", "INT64", "Traded volume in contracts (or shares for Yahoo series).")
raw_symbol = Column("raw_symbol", "STRING", "Venue symbol from the instrument definition.")
instrument_class = Column("instrument_class", "STRING", "Databento instrument class: F future, S future spread, T option spread, M mixed spread, C/P options.")
is_spread = Column("is_spread", "BOOL", "True for calendar/inter-commodity spreads; spreads never reach a price table.")
exchange = Column("exchange", "STRING", "Exchange MIC (XCME, XCBT ...).")
currency = Column("currency", "STRING", "Trading currency.")
security_type = Column("security_type", "STRING", "Security type from the definition (FUT, OOF ...).")
cfi = Column("cfi", "STRING", "ISO 10962 CFI code.")
min_price_increment = Column("min_price_increment", "FLOAT64", "Tick size in display units.")
display_factor = Column("display_factor", "FLOAT64", "Multiplier from the venue price to the display price.")
unit_of_measure = Column("unit_of_measure", "STRING", "Unit of the contract size (IPNT, LBS ...).")
unit_of_measure_qty = Column("unit_of_measure_qty", "FLOAT64", "Contract size in units of measure.")
expiration = Column("expiration", "TIMESTAMP", "Last eligible trade time, UTC.")
activation = Column("activation", "TIMESTAMP", "Time the instrument became tradable, UTC.")
stat_type = Column("stat_type", "INT64", "Databento statistic type (3 settlement price, 9 open interest ...).")
price = Column("price", "FLOAT64", "Price value of the record, in display units; NULL when Databento sent UNDEF.")
quantity = Column("quantity", "INT64", "Quantity value of the record; NULL when Databento sent UNDEF.")
sequence = Column("sequence", "INT64", "Venue message sequence number.")
update_action = Column("update_action", "INT64", "Databento update action (1 new, 2 delete).")
stat_flags = Column("stat_flags", "INT64", "Databento statistic flags bitfield.")

# --- daily series ---------------------------------------------------------------------
date = Column("date", "DATE", "Trading/observation date (for futures, the CME session date, not the UTC date).")
roll_from_symbol = Column("roll_from_symbol", "STRING", "On a roll date, the contract the continuous series rolled out of.")
contract_prior_close = Column(
    "contract_prior_close", "FLOAT64",
    "Close of the row's contract on the previous row's session: the previous close, except on a roll date, where it is "
    "the new contract's close the session before it became the front (NULL when that contract had no daily bar of the "
    "same kind that session, and on a Yahoo/Databento stitch).",
)
next_symbol = Column("next_symbol", "STRING", "The outright expiring next after the row's contract that has a daily bar that session (the second contract of the term structure); NULL when none traded.")
next_close = Column("next_close", "FLOAT64", "Daily close of next_symbol that session, by the same daily-bar rule as close; NULL when its bar is of another kind (UTC-day vs session) than the row's.")
source_symbol = Column("source_symbol", "STRING", "The symbol as the upstream source spelled it (ZL=F, ^GSPC, DX-Y.NYB).")
source_name = Column("source_name", "STRING", "The legacy table's own source_name value, kept for audit.")
legacy_table = Column("legacy_table", "STRING", "Legacy BigQuery table the row was migrated from.")
series_id = Column("series_id", "STRING", "FRED series id (DGS10, VIXCLS ...).")
value = Column("value", "FLOAT64", "Observation value; NULL where FRED published a missing observation.")
frequency = Column("frequency", "STRING", "Series frequency from FRED metadata (D, W, M, Q).")
region = Column("region", "STRING", "Weather region (growing area).")
station_id = Column("station_id", "STRING", "Weather station id.")
precip_mm = Column("precip_mm", "FLOAT64", "Daily precipitation, millimetres.")
temp_max = Column("temp_max", "FLOAT64", "Daily maximum temperature, degrees Celsius.")
temp_min = Column("temp_min", "FLOAT64", "Daily minimum temperature, degrees Celsius.")
report_date = Column("report_date", "DATE", "CFTC Commitments of Traders report date (Tuesday positions).")
commodity = Column("commodity", "STRING", "Commodity name as CFTC reports it.")
contract_code = Column("contract_code", "STRING", "CFTC contract market code.")
managed_money_long = Column("managed_money_long", "INT64", "Managed-money long positions, contracts.")
managed_money_short = Column("managed_money_short", "INT64", "Managed-money short positions, contracts.")
managed_money_net = Column("managed_money_net", "INT64", "Managed-money net positions, contracts.")
commercial_long = Column("commercial_long", "INT64", "Commercial (producer/merchant) long positions, contracts.")
commercial_short = Column("commercial_short", "INT64", "Commercial (producer/merchant) short positions, contracts.")
commercial_net = Column("commercial_net", "INT64", "Commercial net positions, contracts.")
open_interest = Column("open_interest", "INT64", "Open interest, contracts.")

# --- regimes --------------------------------------------------------------------------
regime_name = Column("regime_name", "STRING", "Market regime name from the registry (regimes.regime_weights).")
start_date = Column("start_date", "DATE", "First date the regime covers (inclusive).")
end_date = Column("end_date", "DATE", "Last date the regime covers (inclusive).")
regime_weight = Column("regime_weight", "INT64", "Training sample weight of the regime (50-5000).")
description = Column("description", "STRING", "Human description.")

# --- features ---------------------------------------------------------------------------
matrix_source = Column("matrix_source", "STRING", "canonical (Databento continuous series) or yahoo_historical (research only, never pushed to the canonical table).")
roll_adjustment = Column(
    "roll_adjustment", "STRING",
    "How the row's returns and targets treat the continuous series' recorded rolls: none (raw front-month closes, a roll "
    "gap included; the default) or ratio (back-adjusted by the new/old close ratio at each roll, so no gap enters them).",
)


def _f(name: str, description: str, type_: str = "FLOAT64") -> Column:
    return Column(name, type_, description)


market_data = struct(
    "market_data",
    "Daily market features of the symbol's session.",
    open, high, low, close, volume,
    _f("vwap", "Volume-weighted average price of the session (from 1h bars; NULL without them)."),
    _f("realized_vol_1h", "Realised volatility of the session's 1h log returns (NULL without 1h bars)."),
    _f("ma_5", "5-session simple moving average of close."),
    _f("ma_21", "21-session simple moving average of close."),
    _f("ma_63", "63-session simple moving average of close."),
    _f("rsi_14", "14-session Wilder RSI of close."),
    _f("volatility_21d", "Annualised std-dev of 21 daily log returns."),
    _f("momentum_21d", "close / close 21 sessions earlier - 1."),
    _f("return_1d", "1-session log return."),
    _f("return_5d", "5-session log return."),
    _f("return_21d", "21-session log return."),
)
pivots = struct(
    "pivots",
    "Floor-trader pivots from the previous session's high, low and close.",
    _f("p", "Pivot point (H + L + C) / 3 of the previous session."),
    _f("r1", "First resistance 2P - L."),
    _f("r2", "Second resistance P + (H - L)."),
    _f("s1", "First support 2P - H."),
    _f("s2", "Second support P - (H - L)."),
    _f("distance_to_p", "(close - P) / P."),
    _f("distance_to_nearest", "Signed relative distance from close to the nearest of P, R1, R2, S1, S2."),
    _f("weekly_p_distance", "(close - weekly P) / weekly P, weekly P from the previous week's H/L/C."),
    _f("is_above_p", "close > P.", "BOOL"),
)
regime = struct(
    "regime",
    "Regime of the date from the registry plus volatility state.",
    _f("name", "Regime name (also top-level regime_name, which BigQuery can cluster on).", "STRING"),
    _f("weight", "Regime training weight.", "INT64"),
    _f("vol_percentile", "Percentile of volatility_21d within its trailing 252-session window."),
    _f("k_vol", "volatility_21d / its trailing 252-session median."),
)
macro = struct(
    "macro",
    "FRED macro values known as of the date (publication lag respected).",
    _f("dollar_index", "Broad trade-weighted dollar index (DTWEXBGS)."),
    _f("dgs10", "10-year Treasury constant-maturity yield (DGS10)."),
    _f("t10y2y", "10y minus 2y Treasury spread (T10Y2Y)."),
    _f("fed_funds", "Effective federal funds rate, monthly (FEDFUNDS)."),
    _f("vix", "CBOE VIX close (VIXCLS)."),
    _f("vix_regime", "VIX bucket: low (<15), normal (15-25), high (25-35), crisis (>35).", "STRING"),
    _f("wti", "WTI spot (DCOILWTICO)."),
    _f("crush_margin", "Board crush margin from ZS, ZM, ZL closes when all exist."),
    _f("dgs2", "2-year Treasury constant-maturity yield (DGS2)."),
    _f("brent", "Brent spot (DCOILBRENTEU)."),
    _f("t10yie", "10-year breakeven inflation rate (T10YIE)."),
)
cross_asset = struct(
    "cross_asset",
    "Related markets from the same matrix source (canonical: continuous series; research: the legacy Yahoo series; never mixed), "
    "as of the date's close.",
    _f("zs_ret_1d", "1-day log return of soybeans (ZS), the matrix source\'s own closes."),
    _f("zs_ret_21d", "21-row log return of soybeans (ZS)."),
    _f("zs_corr_63d", "Correlation of the symbol\'s 1-day log returns with soybeans (ZS)\'s over the last 63 rows (>= 40 pairs)."),
    _f("zm_ret_1d", "1-day log return of soybean meal (ZM), the matrix source\'s own closes."),
    _f("zm_ret_21d", "21-row log return of soybean meal (ZM)."),
    _f("zm_corr_63d", "Correlation of the symbol\'s 1-day log returns with soybean meal (ZM)\'s over the last 63 rows (>= 40 pairs)."),
    _f("cl_ret_1d", "1-day log return of crude oil (CL), the matrix source\'s own closes."),
    _f("cl_ret_21d", "21-row log return of crude oil (CL)."),
    _f("cl_corr_63d", "Correlation of the symbol\'s 1-day log returns with crude oil (CL)\'s over the last 63 rows (>= 40 pairs)."),
    _f("spx_ret_1d", "1-day log return of the S&P 500 (research: SPX; canonical: ES), the matrix source\'s own closes."),
    _f("spx_ret_21d", "21-row log return of the S&P 500 (research: SPX; canonical: ES)."),
    _f("spx_corr_63d", "Correlation of the symbol\'s 1-day log returns with the S&P 500 (research: SPX; canonical: ES)\'s over the last 63 rows (>= 40 pairs)."),
    _f("dxy_ret_1d", "1-day log return of the dollar index (research: DXY; canonical: DX), the matrix source\'s own closes."),
    _f("dxy_ret_21d", "21-row log return of the dollar index (research: DXY; canonical: DX)."),
    _f("dxy_corr_63d", "Correlation of the symbol\'s 1-day log returns with the dollar index (research: DXY; canonical: DX)\'s over the last 63 rows (>= 40 pairs)."),
    _f("oil_share", "ZL x 11 / (ZL x 11 + ZM x 2.2): soybean oil's share of the crush value, same-date closes."),
)
calendar = struct(
    "calendar",
    "The date's place in the year and in the US soybean season (USDA NASS usual dates, most active, national: "
    "planting 1 May - 15 June, harvest 20 September - 10 November).",
    _f("month", "Month of the date (1-12).", "INT64"),
    _f("week_of_year", "ISO week of the date.", "INT64"),
    _f("days_to_planting", "Days until the planting window opens; 0 inside it.", "INT64"),
    _f("days_to_harvest", "Days until the harvest window opens; 0 inside it.", "INT64"),
    _f("in_planting", "The date is inside the planting window.", "BOOL"),
    _f("in_harvest", "The date is inside the harvest window.", "BOOL"),
)
positioning = struct(
    "positioning",
    "CFTC Commitments of Traders for the symbol's contract market (raw_intelligence.cftc_cot), as known on the date: "
    "a report (positions as of a Tuesday, released that Friday, later after a federal holiday) is used from the "
    "Tuesday after; NULL when the market has no report within 21 days.",
    _f("commercial_net_pct_oi", "Commercial net position (long - short) as % of open interest."),
    _f("managed_money_net_pct_oi", "Managed-money net position as % of open interest."),
    _f("commercial_net_change_1w", "Change of commercial_net_pct_oi since the previous report, percentage points."),
    _f("commercial_net_pctile_3y", "Rank of commercial_net_pct_oi among the last 156 reports (3 years) incl. this one, "
                                   "as a share (0-1]; NULL before 52 reports."),
)
term_structure = struct(
    "term_structure",
    "The symbol's futures curve from its Databento outrights, as of the date's close: the front (the continuous series' "
    "contract) against the next expiry trading that session. Every field is NULL unless both have a daily bar of the same "
    "kind that session (one contract only: NULL, with a missing_input warning).",
    _f("second_symbol", "The second contract: the outright expiring next after the front with a daily bar that session.", "STRING"),
    _f("front_minus_second", "Front close minus second close, display units (negative: contango)."),
    _f("front_minus_second_rel", "front close / second close - 1."),
    _f("front_days_to_expiry", "Calendar days from the date to the front's expiration (its instrument definition, "
                               "dim.instruments); NULL without a definition.", "INT64"),
    _f("is_roll_day", "The continuous series rolled into the front on this session (a recorded roll; a Yahoo/Databento "
                      "stitch is none).", "BOOL"),
)
HORIZONS = {"1w": 5, "1m": 21, "3m": 63, "6m": 126, "12m": 252}
TARGETS = tuple(
    Column(f"target_{h}", "FLOAT64", f"Forward log return over {n} sessions (ratio back-adjusted across rolls when "
                                     "roll_adjustment = 'ratio'); NULL until known.") for h, n in HORIZONS.items()
)
FORWARD_CLOSES = tuple(
    Column(f"fwd_close_{h}", "FLOAT64", f"Close {n} sessions ahead (with roll_adjustment = 'ratio': in the row's "
                                       "contract's terms, divided by the roll ratios between); NULL until known.")
    for h, n in HORIZONS.items()
)

# --- training and predictions -----------------------------------------------------------
run_id = Column("run_id", "STRING", "Training run id.")
created_at = Column("created_at", "TIMESTAMP", "When the record was created (UTC).")
horizon = Column("horizon", "STRING", "Forecast horizon label (1w, 1m, 3m, 6m, 12m).")
is_research = Column("is_research", "BOOL", "True when trained on a non-canonical (research) matrix.")
params = Column("params", "STRING", "Model parameters as JSON.")
train_start = Column("train_start", "DATE", "First date of the training window.")
train_end = Column("train_end", "DATE", "Last date of the training window.")
test_start = Column("test_start", "DATE", "First date of the test window.")
test_end = Column("test_end", "DATE", "Last date of the test window.")
feature_names = Column("feature_names", "STRING", "Feature columns the model used.", mode="REPEATED")
_METRICS = (
    _f("mae", "Mean absolute error of the forecast price."),
    _f("mape", "Mean absolute percentage error of the forecast price, in percent."),
    _f("r2", "R squared of the log-return forecast."),
    _f("directional_accuracy", "Share of test rows whose forecast sign matches the realised return."),
    _f("pinball_p10", "Pinball loss of the 0.1 quantile."),
    _f("pinball_p50", "Pinball loss of the 0.5 quantile."),
    _f("pinball_p90", "Pinball loss of the 0.9 quantile."),
    _f("coverage_p10_p90", "Share of realised values inside P10-P90."),
    _f("baseline_mae", "MAE of the naive no-change forecast."),
    _f("baseline_mape", "MAPE of the naive no-change forecast, in percent."),
    _f("unweighted_mae", "MAE of the same model trained without regime weights."),
    _f("unweighted_mape", "MAPE of the same model trained without regime weights."),
    *(
        _f(f"{model}_{metric}", f"{label} of the {who}.")
        for model, who in (("baseline", "naive no-change forecast"), ("unweighted", "same model without regime weights"))
        for metric, label in (
            ("r2", "R squared"), ("directional_accuracy", "Directional accuracy"), ("pinball_p10", "P10 pinball loss"),
            ("pinball_p50", "P50 pinball loss"), ("pinball_p90", "P90 pinball loss"), ("coverage_p10_p90", "P10-P90 coverage"),
        )
    ),
    _f("n_test", "Test rows.", "INT64"),
)
fold_metrics = struct(
    "fold_metrics",
    "Per-fold metrics of the purged walk-forward CV.",
    _f("fold", "Fold number, in time order.", "INT64"),
    train_start, train_end, test_start, test_end,
    *_METRICS,
).repeated()
metrics = struct("metrics", "Metrics over all folds.", *_METRICS)
feature_importance = struct(
    "feature_importance",
    "Gain importance per feature.",
    _f("feature", "Feature name.", "STRING"),
    _f("gain", "Total gain."),
).repeated()
git_commit = Column("git_commit", "STRING", "Git commit of the code that trained the run.")
data_fingerprint = Column("data_fingerprint", "STRING", "Hash of the training rows.")
model_path = Column("model_path", "STRING", "Model files under the warehouse home.")
seed = Column("seed", "INT64", "Random seed.")
method = Column(
    "method", "STRING",
    "What made the published forecast: model (the run's LightGBM models) or the baseline published because "
    "the model did not beat it on the test rows (no_change, drift, vol_band).",
)
scores = struct(
    "scores",
    "Every method's scores on the same test rows, one entry per (fold, method); fold NULL = all folds pooled.",
    _f("fold", "Fold number, in time order; NULL for all folds pooled.", "INT64"),
    _f("method", "model, no_change, drift or vol_band.", "STRING"),
    _f("n_test", "Test rows.", "INT64"),
    _f("mae", "Mean absolute error of the point price."),
    _f("mape", "Mean absolute percentage error of the point price, in percent."),
    _f("directional_accuracy", "Share of test rows whose forecast sign matches the realised return."),
    _f("directional_accuracy_lo", "Lower end of the 90% moving-block bootstrap interval (blocks of the horizon)."),
    _f("directional_accuracy_hi", "Upper end of the 90% moving-block bootstrap interval (blocks of the horizon)."),
    _f("pinball_p10", "Pinball loss of the 0.1 quantile price."),
    _f("pinball_p50", "Pinball loss of the 0.5 quantile price."),
    _f("pinball_p90", "Pinball loss of the 0.9 quantile price."),
    _f("quantile_score", "Mean pinball loss of P10/P50/P90 in percent of the as-of close."),
    _f("coverage_p10_p90", "Share of realised closes inside P10-P90."),
    _f("dm_stat_no_change", "Diebold-Mariano statistic (HLN, Newey-West h-1 lags) on absolute % error against no_change; negative: this method is better."),
    _f("dm_p_value_no_change", "Two-sided p-value of dm_stat_no_change (Student t, T-1 df)."),
    _f("dm_p_better_no_change", "One-sided p-value: this method's absolute % error is lower than no_change's."),
    _f("dm_stat_vol_band", "Diebold-Mariano statistic (HLN) on the per-row quantile loss against vol_band."),
    _f("dm_p_value_vol_band", "Two-sided p-value of dm_stat_vol_band."),
    _f("dm_p_better_vol_band", "One-sided p-value: this method's quantile loss is lower than vol_band's."),
    _f("published", "True for the method published to predictions.zl_forecasts for the horizon.", "BOOL"),
).repeated()
as_of_date = Column("as_of_date", "DATE", "Last date of data the forecast was made from.")
target_date = Column("target_date", "DATE", "Session date the forecast is for.")
p10 = Column("p10", "FLOAT64", "10th percentile forecast price.")
p50 = Column("p50", "FLOAT64", "Median forecast price.")
p90 = Column("p90", "FLOAT64", "90th percentile forecast price.")
point = Column("point", "FLOAT64", "Point forecast price of the published method (`method`: the model or a baseline).")

# --- monitoring and ops ------------------------------------------------------------------
check_id = Column("check_id", "STRING", "Health check result id.")
checked_at = Column("checked_at", "TIMESTAMP", "When the check ran (UTC).")
rule = Column("rule", "STRING", "Quality rule kind that was evaluated or failed.")
table_name = Column("table_name", "STRING", "Fully qualified table (dataset.table).")
rule_columns = Column("rule_columns", "STRING", "Columns the rule looked at, comma separated.")
status = Column("status", "STRING", "Lifecycle status of the record (see the table's description for values).")
severity = Column("severity", "STRING", "blocking or warning.")
measured_value = Column("measured_value", "FLOAT64", "What the check measured (e.g. offending row count).")
threshold = Column("threshold", "STRING", "What the measurement was compared against.")
sample_keys = Column("sample_keys", "STRING", "JSON sample of offending keys/rows.")
engine = Column("engine", "STRING", "Where the check ran: duckdb or bigquery.")
message = Column("message", "STRING", "Human-readable explanation.")
quarantine_id = Column("quarantine_id", "STRING", "Quarantine entry id.")
quarantined_at = Column("quarantined_at", "TIMESTAMP", "When the row was quarantined (UTC).")
record_number = Column("record_number", "INT64", "1-based line/record number within the source file.")
reason = Column("reason", "STRING", "Why the row broke the rule, naming the value.")
payload = Column("payload", "STRING", "The offending input row as JSON, kept so nothing is lost.")
resolved_at = Column("resolved_at", "TIMESTAMP", "When a quarantine entry was released or dropped.")
conflict_id = Column("conflict_id", "STRING", "Dedup conflict id.")
key_values = Column("key_values", "STRING", "Primary key of the conflicting rows as JSON.")
kept_source = Column("kept_source", "STRING", "Source whose row was kept (higher precedence).")
dropped_source = Column("dropped_source", "STRING", "Source whose row was not loaded.")
kept_payload = Column("kept_payload", "STRING", "Kept row as JSON.")
dropped_payload = Column("dropped_payload", "STRING", "Dropped row as JSON.")
kind = Column("kind", "STRING", "What produced the batch: ingest, migrate, features, train, health.")
rows_read = Column("rows_read", "INT64", "Input rows read.")
rows_loaded = Column("rows_loaded", "INT64", "Rows loaded into target tables.")
rows_quarantined = Column("rows_quarantined", "INT64", "Rows sent to monitoring.quarantine.")
rows_duplicate = Column("rows_duplicate", "INT64", "Rows skipped because they were already loaded.")
table_names = Column("table_names", "STRING", "Tables the batch wrote.", mode="REPEATED")
pushed_at = Column("pushed_at", "TIMESTAMP", "When BigQuery confirmed the batch (UTC).")
error = Column("error", "STRING", "Last error, credentials redacted.")
path = Column("path", "STRING", "Absolute path of the input file.")
size_bytes = Column("size_bytes", "INT64", "File size in bytes.")
file_mtime = Column("file_mtime", "TIMESTAMP", "File modification time (UTC).")
record_schema = Column("record_schema", "STRING", "Record schema of the file (ohlcv-1h, definition, fred_csv, legacy_parquet ...).")
encoding = Column("encoding", "STRING", "File encoding: dbn, json, csv, parquet, yaml.")
sync_id = Column("sync_id", "STRING", "Sync journal entry id.")
step = Column("step", "STRING", "Journaled sync step (stage, load, merge, verify, drop_staging, mark_pushed, pull).")
job_id = Column("job_id", "STRING", "BigQuery job id.")
partition_count = Column("partition_count", "INT64", "Partitions the job touched.")
row_count = Column("row_count", "INT64", "Rows the step moved.")
byte_count = Column("byte_count", "INT64", "Bytes the step moved.")
bytes_billed = Column("bytes_billed", "INT64", "Bytes BigQuery billed for the step's query jobs (their total_bytes_billed, summed).")
bytes_processed = Column("bytes_processed", "INT64", "Bytes BigQuery processed for the step's query jobs (total_bytes_processed, summed).")
started_at = Column("started_at", "TIMESTAMP", "When the step started (UTC).")
finished_at = Column("finished_at", "TIMESTAMP", "When the step finished (UTC).")

# --- sync (owned by the sync engineer: journal detail, daemon heartbeat) -----------------
sync_run_id = Column("sync_run_id", "STRING", "One sync invocation (push or pull); BigQuery job ids start with it.")
chunk_index = Column("chunk_index", "INT64", "0-based chunk of a table's partitions (each chunk touches at most 4,000 partitions).")
detail = Column("detail", "STRING", "JSON detail of the step (plan chunks, staged fingerprint, staging object).")
hostname = Column("hostname", "STRING", "Host the process ran on.")
process_id = Column("process_id", "INT64", "Operating-system process id.")
heartbeat_at = Column("heartbeat_at", "TIMESTAMP", "Last sign of life (UTC).")
cycle_count = Column("cycle_count", "INT64", "Daemon cycles completed since it started.")
