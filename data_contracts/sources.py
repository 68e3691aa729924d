"""Named sources a contract may allow; the source hierarchy is declared once, here."""

from .model import Source

DATABENTO = Source("databento", note="Canonical for futures prices.")
YAHOO = Source("yahoo", note="Legacy Yahoo-derived prices: bridge/research only.")
# Databento GLBX history starts 2010-06-06; ZL before it is stitched from Yahoo, explicitly.
YAHOO_ZL_BRIDGE = Source(
    "yahoo",
    only_where="root = 'ZL' AND date < DATE '2010-06-06'",
    note="Recorded stitch: ZL before Databento's first GLBX session.",
)
FRED = Source("fred")
NOAA = Source("noaa")
OPEN_METEO = Source("open_meteo")
CFTC = Source("cftc")
REGISTRY = Source("registry", note="registry/regime_weights.yaml is the one source of truth.")
CBI = Source("cbi", note="Derived or produced by CBI Local itself.")
