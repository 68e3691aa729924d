"""`cbi migrate-legacy --from-bigquery PROJECT.DATASET[.TABLE]`: the legacy tables read from BigQuery.

The legacy data the migration maps (`cbi_local.ingest.legacy.LEGACY_TABLES`, e.g.
`forecasting_data_warehouse.soybean_oil_prices`, `market_data.hourly_prices`) lives in the
user's old project. Rather than a second mapping, each mapped table is read and written as the
same `dataset.table.parquet` an export would be, into `<home>/legacy_bq/<project>/`; the parquet
path (`pipeline.migrate_legacy_dir`) then runs on that folder, so precedence, dedup and defect
rules are one code path.

Protocol, per source (a dataset: every table of it the mapping names; a table: that one):
  list    the dataset's tables (one REST call); tables the mapping does not name are reported as
          `unmapped`, never read.
  reuse   a snapshot whose sidecar (`<file>.source.json`) records the table's `modified` time and
          row count as BigQuery reports them now is kept: nothing is read again, and the file's
          identity in ops.file_manifest is unchanged, so the migration skips it as unchanged.
          A table read again whose rows equal the snapshot's (Arrow equality, same order) also
          keeps the file as it is (`unchanged`): the emulator reports the time of the call as
          `modified`, and a real table can be touched without its rows changing.
  read    otherwise the whole table through the BigQuery Storage Read API (Arrow, no query job,
          nothing billed as a query), or, when it cannot be used (sync.bigquery.storage says why),
          `list_rows` through REST (tabledata.list: also no query job). Written to a temporary
          file, then renamed over the snapshot, with the sidecar last: a killed read leaves the
          previous snapshot (or none), never half a file.
Rows are never filtered or changed here; every defect is judged by the migration.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from cbi_local.config import Settings

from .bigquery.storage import read_rows
from .retry import call_deadline, client_retry, with_retries


class LegacySourceError(ValueError):
    """A --from-bigquery source that cannot be read (malformed, missing, not mapped)."""


@dataclass
class Snapshot:
    table: str  # project.dataset.table
    path: str
    rows: int
    read_api: str  # storage | rest | reused
    storage_unavailable: str | None = None
    unchanged: bool = False  # read again, and the same rows as the snapshot: the file was kept


@dataclass
class LegacyDownload:
    folder: str
    snapshots: list[Snapshot] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)  # tables in the sources the mapping does not name

    def as_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "snapshots": [asdict(s) for s in self.snapshots], "unmapped": self.unmapped}


def parse_source(text: str) -> tuple[str, str, str | None]:
    parts = text.strip().split(".")
    if len(parts) not in (2, 3) or not all(parts):
        raise LegacySourceError(f"--from-bigquery {text!r}: expected PROJECT.DATASET or PROJECT.DATASET.TABLE")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def snapshot_folder(settings: Settings, project: str) -> Path:
    return settings.home / "legacy_bq" / project


def _mapped() -> set[str]:
    from cbi_local.ingest.legacy import LEGACY_TABLES

    return {t.name for t in LEGACY_TABLES}


def _source_tables(client: bigquery.Client, project: str, dataset: str, table: str | None) -> list[str]:
    bounded = {"retry": client_retry(), "timeout": call_deadline()}
    if table is not None:
        return [table]
    try:
        listed = with_retries("list legacy tables", lambda: list(client.list_tables(f"{project}.{dataset}", **bounded)))
    except NotFound:
        raise LegacySourceError(f"{project}.{dataset}: no such dataset (or no access to it)") from None
    return sorted(t.table_id for t in listed if t.table_type == "TABLE")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".source.json")


def _write_sidecar(path: Path, meta: dict[str, Any]) -> None:
    side = _sidecar(path)
    side.with_name(side.name + ".partial").write_text(json.dumps(meta, indent=1))
    os.replace(side.with_name(side.name + ".partial"), side)


def _write(path: Path, arrow, meta: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".partial")
    pq.write_table(arrow, tmp)
    os.replace(tmp, path)
    _write_sidecar(path, meta)


def download(client: bigquery.Client, settings: Settings, sources: list[str], progress=None) -> LegacyDownload:
    """Snapshot every mapped legacy table of `sources` as `<dataset>.<table>.parquet` (see the protocol)."""
    say = progress or (lambda *_a, **_k: None)
    parsed = [parse_source(s) for s in sources]
    projects = {p for p, _d, _t in parsed}
    if len(projects) > 1:
        raise LegacySourceError(f"--from-bigquery: one legacy project at a time (got {', '.join(sorted(projects))})")
    project = projects.pop()
    folder = snapshot_folder(settings, project)
    folder.mkdir(parents=True, exist_ok=True)
    report = LegacyDownload(str(folder))
    mapped = _mapped()
    wanted: list[tuple[str, str]] = []
    for proj, dataset, table in parsed:
        for name in _source_tables(client, proj, dataset, table):
            if f"{dataset}.{name}" in mapped:
                wanted.append((dataset, name))
            elif table is not None:
                raise LegacySourceError(f"{proj}.{dataset}.{name}: not a legacy table the migration maps "
                                        f"(mapped: {', '.join(sorted(mapped))})")
            else:
                report.unmapped.append(f"{proj}.{dataset}.{name}")
    for i, (dataset, name) in enumerate(wanted):
        fqn = f"{project}.{dataset}.{name}"
        say(f"reading {fqn}", i, len(wanted))
        try:
            table = client.get_table(fqn, retry=client_retry(), timeout=call_deadline())
        except NotFound:
            raise LegacySourceError(f"{fqn}: no such table (or no access to it)") from None
        path = folder / f"{dataset}.{name}.parquet"
        meta = {"table": fqn, "modified": table.modified.isoformat() if table.modified else None, "num_rows": table.num_rows}
        side = _sidecar(path)
        if path.exists() and side.exists() and {k: json.loads(side.read_text()).get(k) for k in meta} == meta:
            report.snapshots.append(Snapshot(fqn, str(path), int(table.num_rows or 0), "reused"))
            continue
        arrow, why = read_rows(client, settings, project, dataset, name, None)
        snap = Snapshot(fqn, str(path), 0, "storage")
        if arrow is None:
            snap.read_api, snap.storage_unavailable = "rest", why
            arrow = with_retries("read legacy table", lambda t=table: client.list_rows(
                t, retry=client_retry(), timeout=call_deadline()).to_arrow(create_bqstorage_client=False))
        snap.rows = arrow.num_rows
        # BigQuery's `modified` moved (or the emulator's, which reports the time of the call) but the
        # rows may be the same: then the file stays as it is, so its identity does too.
        snap.unchanged = path.exists() and pq.read_table(path).equals(arrow)
        if not snap.unchanged:
            _write(path, arrow, {**meta, "read_api": snap.read_api})
        else:
            _write_sidecar(path, {**meta, "read_api": snap.read_api})
        report.snapshots.append(snap)
    say("legacy tables read", len(wanted), len(wanted))
    return report
