"""The contract model: plain, frozen declarations that every other layer derives from.

Types are BigQuery standard-SQL names because BigQuery is the system of record;
DuckDB and Polars types are derived from them (see `to_duckdb`, `to_polars`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

BQ_TYPES = (
    "STRING",
    "INT64",
    "FLOAT64",
    "NUMERIC",
    "BOOL",
    "DATE",
    "TIMESTAMP",
    "DATETIME",
    "BYTES",
    "STRUCT",
)
Mode = Literal["NULLABLE", "REQUIRED", "REPEATED"]
SyncDirection = Literal["push", "pull", "local"]
Privacy = Literal["public", "private"]
Granularity = Literal["DAY", "MONTH", "YEAR"]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    mode: Mode = "NULLABLE"
    fields: tuple[Column, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in BQ_TYPES:
            raise ValueError(f"column {self.name!r}: unknown BigQuery type {self.type!r}")
        if (self.type == "STRUCT") != bool(self.fields):
            raise ValueError(f"column {self.name!r}: STRUCT needs fields and only STRUCT has them")
        names = [f.name for f in self.fields]
        if len(names) != len(set(names)):
            raise ValueError(f"column {self.name!r}: duplicate nested field names {names}")

    def required(self) -> Column:
        return replace(self, mode="REQUIRED")

    def repeated(self) -> Column:
        return replace(self, mode="REPEATED")


def struct(name: str, description: str, *fields: Column) -> Column:
    return Column(name, "STRUCT", description, fields=tuple(fields))


@dataclass(frozen=True)
class Partition:
    column: str
    granularity: Granularity = "DAY"


@dataclass(frozen=True)
class Rule:
    """A quality rule, declared here and executed by the health checks.

    `kind` names the check; `columns` and `params` parameterise it; a `blocking`
    rule keeps a batch from being pushed, a `warning` only reports.
    """

    kind: str
    columns: tuple[str, ...] = ()
    params: tuple[tuple[str, Any], ...] = ()
    severity: Literal["blocking", "warning"] = "blocking"

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class Source:
    """A source allowed into a table; `only_where` restricts which rows it may supply."""

    name: str
    only_where: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Contract:
    dataset: str
    table: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    partition: Partition | None = None
    clustering: tuple[str, ...] = ()
    sources: tuple[Source, ...] = ()
    rules: tuple[Rule, ...] = ()
    sync: SyncDirection = "push"
    privacy: Privacy = "public"
    # SQL predicate selecting private rows in an otherwise public table (e.g. MES bars).
    private_rows: str | None = None
    # SQL predicate: only these rows may be pushed (research rows stay local).
    push_only_where: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.fqn}: duplicate column names")
        by_name = {c.name: c for c in self.columns}
        for key in self.primary_key:
            if key not in by_name:
                raise ValueError(f"{self.fqn}: primary key column {key!r} is not a column")
        if self.partition:
            col = by_name.get(self.partition.column)
            if col is None or col.type not in ("DATE", "TIMESTAMP", "DATETIME"):
                raise ValueError(f"{self.fqn}: partition column must be a DATE/TIMESTAMP column")
        if len(self.clustering) > 4:
            raise ValueError(f"{self.fqn}: BigQuery allows at most 4 clustering columns")
        for key in self.clustering:
            col = by_name.get(key)
            # BigQuery clusters only on top-level, non-repeated scalar columns.
            if col is None or col.type == "STRUCT" or col.mode == "REPEATED":
                raise ValueError(f"{self.fqn}: clustering column {key!r} must be a top-level scalar")
        for rule in self.rules:
            for col_name in rule.columns:
                if col_name.split(".")[0] not in by_name:
                    raise ValueError(f"{self.fqn}: rule {rule.kind} names unknown column {col_name!r}")

    @property
    def fqn(self) -> str:
        return f"{self.dataset}.{self.table}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.fqn} has no column {name!r}")

    def rules_of(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind]


# A flat view's column for STRUCT field f of column s: "s__f". The double underscore keeps the
# mapping reversible and avoids collisions (regime.name vs a top-level regime_name).
FLAT_SEP = "__"


@dataclass(frozen=True)
class FlatView:
    """A view declared once, beside the contract it reads: that table with every field of a
    (non-repeated) STRUCT as its own column `<struct>__<field>`; other columns keep their names.
    Its columns derive from the source contract (`flat_columns`), never listed by hand."""

    dataset: str
    name: str
    source: str  # dataset.table of the contract it reads
    description: str

    @property
    def fqn(self) -> str:
        return f"{self.dataset}.{self.name}"


def flat_columns(contract: Contract) -> list[tuple[tuple[str, ...], str]]:
    """(path, flat name) per column of a FlatView over `contract`, in contract order."""
    out: list[tuple[tuple[str, ...], str]] = []
    for col in contract.columns:
        if col.type == "STRUCT" and col.mode != "REPEATED":
            out += [((col.name, f.name), f"{col.name}{FLAT_SEP}{f.name}") for f in col.fields]
        else:
            out.append(((col.name,), col.name))
    return out
