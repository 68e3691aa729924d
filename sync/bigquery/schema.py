"""Schema evolution: what it takes to bring an existing BigQuery table to its contract's schema.

Protocol: `evolve(existing, wanted)` compares the table's schema with the contract's
(`to_bigquery.schema`) field by field, nested STRUCT fields included, and returns the merged
schema plus every change, each marked additive or not.

additive (the push applies it with `update_table(table, ["schema"])` before loading, then
          reads the table back and checks the change is there):
          a new NULLABLE or REPEATED column (appended), a new NULLABLE/REPEATED field inside a
          STRUCT (appended to it), a REQUIRED column relaxed to NULLABLE.
not       (the push refuses the table and names each change; it never applies them itself,
additive  because each could lose data or fail on existing rows):
          a type change, a column or field in BigQuery that the contract no longer has, a new
          REQUIRED column or field, NULLABLE tightened to REQUIRED, a mode change to/from REPEATED.

Existing fields keep their order and their descriptions (BigQuery requires an update to keep
every existing field; new ones may only be appended).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from google.cloud import bigquery

from data_contracts.to_bigquery import normalise_type


@dataclass(frozen=True)
class SchemaChange:
    path: str  # column, or column.field for a STRUCT's field
    kind: str  # add_column, add_field, relax_mode | type_change, removed, add_required, tighten_mode, mode_change
    before: str | None
    after: str | None
    additive: bool

    def message(self) -> str:
        if self.kind in ("add_column", "add_field"):
            return f"add {self.path} {self.after}"
        if self.kind == "removed":
            return f"{self.path} ({self.before}) is in BigQuery but not in the contract"
        if self.kind == "add_required":
            return f"add {self.path} {self.after} (REQUIRED: existing rows have no value)"
        return f"{self.path}: {self.before} -> {self.after}"


def _mode(f: bigquery.SchemaField) -> str:
    return (f.mode or "NULLABLE").upper()


def _type(f: bigquery.SchemaField) -> str:
    kind = normalise_type(f.field_type)
    if kind == "STRUCT":
        return "STRUCT<" + ", ".join(f"{s.name} {_type(s)}" for s in f.fields) + ">"
    return kind


def _describe(f: bigquery.SchemaField) -> str:
    return f"{_type(f)} {_mode(f)}"


def _merge_fields(
    existing: list[bigquery.SchemaField] | tuple[bigquery.SchemaField, ...],
    wanted: list[bigquery.SchemaField] | tuple[bigquery.SchemaField, ...],
    prefix: str,
    changes: list[SchemaChange],
) -> list[bigquery.SchemaField]:
    want = {f.name.lower(): f for f in wanted}
    have = {f.name.lower() for f in existing}
    merged: list[bigquery.SchemaField] = []
    for old in existing:
        path = prefix + old.name
        new = want.get(old.name.lower())
        if new is None:
            changes.append(SchemaChange(path, "removed", _describe(old), None, False))
            merged.append(old)
            continue
        old_kind, new_kind = normalise_type(old.field_type), normalise_type(new.field_type)
        if old_kind != new_kind:
            changes.append(SchemaChange(path, "type_change", _describe(old), _describe(new), False))
            merged.append(old)
            continue
        mode = _mode(old)
        if mode != _mode(new):
            if mode == "REQUIRED" and _mode(new) == "NULLABLE":
                changes.append(SchemaChange(path, "relax_mode", mode, "NULLABLE", True))
                mode = "NULLABLE"
            elif mode == "NULLABLE" and _mode(new) == "REQUIRED":
                changes.append(SchemaChange(path, "tighten_mode", mode, "REQUIRED", False))
            else:
                changes.append(SchemaChange(path, "mode_change", mode, _mode(new), False))
        fields = old.fields
        if old_kind == "STRUCT":
            fields = tuple(_merge_fields(old.fields, new.fields, path + ".", changes))
        # The existing field as BigQuery describes it (description, policy tags... kept), with
        # only the mode relaxed and the new STRUCT fields appended.
        api = copy.deepcopy(old.to_api_repr())  # never the table's own field object
        api["mode"] = mode
        if old_kind == "STRUCT":
            api["fields"] = [f.to_api_repr() for f in fields]
        merged.append(bigquery.SchemaField.from_api_repr(api))
    for new in wanted:
        if new.name.lower() in have:
            continue
        path = prefix + new.name
        kind = "add_field" if prefix else "add_column"
        if _mode(new) == "REQUIRED":
            changes.append(SchemaChange(path, "add_required", None, _describe(new), False))
            continue
        changes.append(SchemaChange(path, kind, None, _describe(new), True))
        merged.append(new)
    return merged


def evolve(
    existing: list[bigquery.SchemaField], wanted: list[bigquery.SchemaField]
) -> tuple[list[bigquery.SchemaField], list[SchemaChange]]:
    """The schema to give the table (existing fields plus the additive changes) and every change."""
    changes: list[SchemaChange] = []
    merged = _merge_fields(list(existing), list(wanted), "", changes)
    return merged, changes


def not_applied(read_back: list[bigquery.SchemaField], wanted: list[bigquery.SchemaField]) -> list[SchemaChange]:
    """The additive changes a table read back after update_table still lacks (BigQuery, or an
    emulator, can accept an update and not apply all of it: the emulator drops new STRUCT fields)."""
    return [c for c in evolve(read_back, wanted)[1] if c.additive]
