"""features.daily_ml_matrix: market, pivots, regime and macro STRUCTs plus forward targets.

`build_features(con, symbols, source)` builds one (symbols, matrix_source) slice; `export`
writes the flat matrix (the columns of the contract's view `vw_daily_ml_flat`) to Parquet.
See build.py for the rules.
"""

from .build import SOURCES, FeaturesError, FeaturesReport, build_features
from .export import FLAT_VIEW, export, flat_columns, flat_select_sql

__all__ = [
    "SOURCES", "FLAT_VIEW", "FeaturesError", "FeaturesReport", "build_features", "export",
    "flat_columns", "flat_select_sql",
]
