"""Sync: BigQuery is the system of record; push validated batches, pull authoritative tables."""
