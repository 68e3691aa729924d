"""The BigQuery destination: client, layout (datasets/tables from contracts), audit."""
