"""dim: reference dimensions."""

from .. import columns as c
from .. import rules as r
from ..sources import DATABENTO
from ..model import Contract

instruments = Contract(
    dataset="dim",
    table="instruments",
    description="Instrument definitions from Databento `definition` records; is_spread drives spread quarantine.",
    columns=(
        c.instrument_id.required(), c.raw_symbol.required(), c.root, c.instrument_class, c.is_spread,
        c.exchange, c.currency, c.security_type, c.cfi, c.min_price_increment, c.display_factor,
        c.unit_of_measure, c.unit_of_measure_qty, c.expiration, c.activation, c.ts_recv, *c.LINEAGE,
    ),
    primary_key=("instrument_id", "raw_symbol"),
    clustering=("root",),
    sources=(DATABENTO,),
    rules=(r.not_null("instrument_id", "raw_symbol", "instrument_class"), r.unique_key()),
)

CONTRACTS = (instruments,)
