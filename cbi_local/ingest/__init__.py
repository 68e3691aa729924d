"""Ingest: Databento, FRED, the regime registry and legacy BigQuery exports into the warehouse."""
