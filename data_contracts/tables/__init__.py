"""One module per BigQuery dataset; each exposes CONTRACTS."""
