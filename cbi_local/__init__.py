"""CBI Local: the DuckDB warehouse, ingest, validation, features and training."""

__version__ = "0.1.0"
