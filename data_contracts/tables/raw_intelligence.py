"""raw_intelligence: macro, weather and positioning inputs."""

from .. import columns as c
from .. import rules as r
from ..sources import FRED, NOAA, OPEN_METEO, CFTC
from ..model import Contract, Partition

fred_economic = Contract(
    dataset="raw_intelligence",
    table="fred_economic",
    description="FRED observations (blank CSV values are FRED's missing observations, kept as NULL).",
    columns=(c.series_id.required(), c.date.required(), c.value, c.frequency, *c.LINEAGE),
    primary_key=("series_id", "date"),
    partition=Partition("date", "YEAR"),
    clustering=("series_id",),
    sources=(FRED,),
    rules=(r.not_null("series_id", "date"), r.finite("value"), r.unique_key(), r.freshness("date", max_age_days=45)),
)

# Weather and CFTC are collected by scheduled cloud jobs: BigQuery holds the truth and
# the Mac pulls (legacy exports seed both sides once).
weather_daily = Contract(
    dataset="raw_intelligence",
    table="weather_daily",
    description="Daily weather per station in the soybean growing regions (NOAA / Open-Meteo).",
    columns=(c.date.required(), c.region, c.station_id.required(), c.precip_mm, c.temp_max, c.temp_min, c.source_name, *c.LINEAGE),
    primary_key=("station_id", "date"),
    partition=Partition("date", "YEAR"),
    clustering=("region", "station_id"),
    sources=(NOAA, OPEN_METEO),
    rules=(
        r.not_null("date", "station_id"),
        r.unique_key(),
        r.value_range("temp_max", -60, 60),
        r.value_range("temp_min", -70, 50),
        r.value_range("precip_mm", 0, 1000),
        r.freshness("date", max_age_days=14),
    ),
    sync="pull",
)

cftc_cot = Contract(
    dataset="raw_intelligence",
    table="cftc_cot",
    description="CFTC Commitments of Traders (disaggregated) positions per contract market.",
    columns=(
        c.report_date.required(), c.commodity, c.contract_code.required(), c.managed_money_long,
        c.managed_money_short, c.managed_money_net, c.commercial_long, c.commercial_short, c.commercial_net,
        c.open_interest, c.source_name, *c.LINEAGE,
    ),
    primary_key=("contract_code", "report_date"),
    partition=Partition("report_date", "YEAR"),
    clustering=("contract_code",),
    sources=(CFTC,),
    rules=(
        r.not_null("report_date", "contract_code", "open_interest"),
        r.unique_key(),
        r.non_negative("managed_money_long", "managed_money_short", "commercial_long", "commercial_short", "open_interest"),
        # The legacy export carried managed_money_* as all-zero placeholders: nets are checked too.
        r.no_placeholders(
            "managed_money_long", "managed_money_short", "managed_money_net",
            "commercial_long", "commercial_short", "commercial_net",
        ),
        r.freshness("report_date", max_age_days=14),
    ),
    sync="pull",
)

CONTRACTS = (fred_economic, weather_daily, cftc_cot)
