"""Polars schemas derived from a contract."""

from __future__ import annotations

import polars as pl

from .model import Column, Contract

_SCALAR: dict[str, pl.DataType] = {
    "STRING": pl.String(),
    "INT64": pl.Int64(),
    "FLOAT64": pl.Float64(),
    "NUMERIC": pl.Decimal(38, 9),
    "BOOL": pl.Boolean(),
    "DATE": pl.Date(),
    "TIMESTAMP": pl.Datetime("us", "UTC"),
    "DATETIME": pl.Datetime("us"),
    "BYTES": pl.Binary(),
}


def dtype(col: Column) -> pl.DataType:
    if col.type == "STRUCT":
        base: pl.DataType = pl.Struct([pl.Field(f.name, dtype(f)) for f in col.fields])
    else:
        base = _SCALAR[col.type]
    return pl.List(base) if col.mode == "REPEATED" else base


def schema(contract: Contract) -> pl.Schema:
    return pl.Schema({c.name: dtype(c) for c in contract.columns})
