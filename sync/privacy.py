"""Privacy in BigQuery: api views that never expose private rows, row access policies.

* Private rows (a contract's `private_rows`, e.g. MES bars) are pushed only to the private
  twin `<table>_private` (sync.push.targets); the public table never receives them.
* `api` views are generated from the contracts: their columns are the contract's columns
  (lineage left out), and every source with `private_rows` is filtered with
  `NOT COALESCE((private_rows), FALSE)` even though the public table should hold none
  (defence in depth: a view must not depend on how its table was filled).
* Row access policies: the private twin is readable only by the configured owners;
  the public table of a contract with `private_rows` gets a policy that shows readers
  only non-private rows.
* Once a table has any row access policy, BigQuery shows an identity only the rows of the
  policies granted to it, and DML (the push's MERGE) needs the running identity to hold a
  policy with filter TRUE. So every table that gets a policy also gets `cbi_pusher_all_rows`
  (FILTER USING (TRUE)) for the pushing identity: CBI_PUSH_MEMBERS (IAM members), else the
  service account of the push's own credentials when it has one. With neither, `cbi sync views`
  says that the next push would fail on those tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.cloud import bigquery

import data_contracts as dc
from cbi_local.config import Settings, current
from data_contracts.model import Contract

from .fingerprint import VOLATILE, bq_quote, bq_table
from .push import targets
from .retry import call_deadline, client_retry, with_retries

OWNERS_ENV = "CBI_PRIVATE_OWNERS"  # comma-separated IAM members, e.g. user:me@example.com
READERS_ENV = "CBI_PUBLIC_READERS"
PUSHERS_ENV = "CBI_PUSH_MEMBERS"  # the identity (or identities) that run `cbi sync push`
LINEAGE_HIDDEN = (*VOLATILE, "source_file")


@dataclass(frozen=True)
class ApiView:
    name: str
    description: str
    source: str  # dataset.table of the contract
    where: str | None = None
    join_regime: bool = False


API_VIEWS = (
    ApiView(
        "vw_zl_dashboard",
        "ZL front-month daily bars with the training regime of the day (public rows only).",
        "market_data.futures_continuous_1d",
        where="root = 'ZL'",
        join_regime=True,
    ),
    ApiView(
        "vw_futures_continuous_public",
        "Front-month daily bars of every public root (private roots such as MES never appear).",
        "market_data.futures_continuous_1d",
    ),
)


def _private_filter(contract: Contract, alias: str) -> str | None:
    if not contract.private_rows:
        return None
    # The predicate is contract SQL over bare column names; qualify nothing, it runs in a
    # subquery over the one table.
    return f"NOT COALESCE(({contract.private_rows}), FALSE)"


def view_sql(project: str, view: ApiView) -> str:
    c = dc.get(view.source)
    cols = [n for n in c.column_names if n not in LINEAGE_HIDDEN]
    filters = [f for f in (_private_filter(c, "b"), view.where) if f]
    where = " AND ".join(f"({f})" for f in filters) or "TRUE"
    inner = f"SELECT {', '.join(bq_quote(n) for n in cols)} FROM {bq_table(project, c.dataset, c.table)} WHERE {where}"
    if not view.join_regime:
        return inner
    cal = dc.get("regimes.regime_calendar")
    return (
        f"SELECT b.*, r.{bq_quote('regime_name')}, r.{bq_quote('regime_weight')} FROM ({inner}) AS b "
        f"LEFT JOIN {bq_table(project, cal.dataset, cal.table)} AS r ON r.{bq_quote('date')} = b.{bq_quote('date')}"
    )


def ensure_api_views(client: bigquery.Client, project: str) -> list[str]:
    """Create or replace every api view; returns their names. Every call is under the sync's
    bounded retries (sync.retry), like every other sync call."""
    from google.api_core.exceptions import NotFound

    from data_contracts import to_bigquery

    bounded = {"retry": client_retry(), "timeout": call_deadline()}
    needed = {v.source for v in API_VIEWS} | ({"regimes.regime_calendar"} if any(v.join_regime for v in API_VIEWS) else set())
    for ds_name in sorted({"api"} | {n.split(".")[0] for n in needed}):
        ds = bigquery.Dataset(f"{project}.{ds_name}")
        ds.location = client.location or dc.LOCATION
        ds.description = dc.DATASETS[ds_name]
        with_retries(f"create dataset {ds_name}", lambda ds=ds: client.create_dataset(ds, exists_ok=True, **bounded))
    for fqn in sorted(needed):

        def ensure_table(fqn: str = fqn) -> None:
            try:
                client.get_table(f"{project}.{fqn}", **bounded)
            except NotFound:
                client.create_table(to_bigquery.table(dc.get(fqn), project), exists_ok=True, **bounded)

        with_retries(f"ensure {fqn}", ensure_table)
    out = []
    for view in API_VIEWS:
        v = bigquery.Table(f"{project}.api.{view.name}")
        v.view_query = view_sql(project, view)
        v.description = view.description

        def replace(v: bigquery.Table = v) -> None:
            client.delete_table(v.reference, not_found_ok=True, **bounded)
            client.create_table(v, exists_ok=True, **bounded)

        with_retries(f"create view api.{view.name}", replace)
        out.append(f"api.{view.name}")
    return out


def _members(env: str) -> list[str]:
    """The IAM members a CBI_* setting lists (comma-separated), read through the settings."""
    return Settings.members(getattr(current(), env.removeprefix("CBI_").lower()))


def _grant(members: list[str]) -> str:
    return ", ".join('"' + m.replace('"', "") + '"' for m in members)


def pushing_members(client: bigquery.Client | None = None) -> list[str]:
    """The identities that run the push: CBI_PUSH_MEMBERS, else the client's service account."""
    members = _members(PUSHERS_ENV)
    if members or client is None:
        return members
    email = getattr(getattr(client, "_credentials", None), "service_account_email", None)
    return [f"serviceAccount:{email}"] if isinstance(email, str) and "@" in email else []


def row_access_policies(
    project: str, owners: list[str] | None = None, readers: list[str] | None = None, pushers: list[str] | None = None
) -> list[str]:
    """CREATE OR REPLACE ROW ACCESS POLICY statements for every contract with private rows, and a
    TRUE-filter policy for the pushing identity on every table that gets one."""
    owners = owners if owners is not None else _members(OWNERS_ENV)
    readers = readers if readers is not None else _members(READERS_ENV)
    pushers = pushers if pushers is not None else _members(PUSHERS_ENV)
    out = []
    for c in dc.CONTRACTS:
        if c.sync != "push" or not (c.private_rows or c.privacy == "private"):
            continue
        for t in targets(c):
            ref = bq_table(project, c.dataset, t.table)
            mine = []
            if t.private and owners:
                mine.append(f"CREATE OR REPLACE ROW ACCESS POLICY cbi_owner_only ON {ref} GRANT TO ({_grant(owners)}) FILTER USING (TRUE)")
            if not t.private and readers and c.private_rows:
                mine.append(
                    f"CREATE OR REPLACE ROW ACCESS POLICY cbi_public_rows ON {ref} GRANT TO ({_grant(readers)}) "
                    f"FILTER USING ({_private_filter(c, 't')})"
                )
            if mine and pushers:
                mine.append(f"CREATE OR REPLACE ROW ACCESS POLICY cbi_pusher_all_rows ON {ref} GRANT TO ({_grant(pushers)}) FILTER USING (TRUE)")
            out += mine
    return out


def apply_policies(client: bigquery.Client, statements: list[str]) -> list[str]:
    """Run the row access policy DDL (bounded retries); tables that do not exist yet (no private
    rows pushed) are skipped."""
    from google.api_core.exceptions import NotFound

    applied = []
    for sql in statements:

        def run(sql: str = sql) -> None:
            job = client.query(sql, retry=client_retry(), job_retry=None, timeout=call_deadline())
            job.result(timeout=call_deadline() * 5, retry=client_retry(), job_retry=None)

        try:
            with_retries("row access policy", run)
            applied.append(sql)
        except NotFound:
            continue
    return applied
