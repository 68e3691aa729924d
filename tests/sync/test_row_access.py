"""Row access policies and the pushing identity.

BigQuery shows an identity only the rows its policies grant once a table has any row access
policy, and the push's MERGE needs a TRUE-filter policy for the identity running it. The
emulator enforces policies on reads for its identity (`user:local-bigquery@localhost`), so the
test shows both sides: reader policies alone hide every row from the pusher (its plan and
verify would see an empty table); `cbi sync views` with CBI_PUSH_MEMBERS grants it all rows
and the pusher sees BigQuery equal to the warehouse again.
"""

from __future__ import annotations

import json

import data_contracts as dc
from cbi_local import warehouse
from sync import privacy
from sync.bigquery.client import make_client
from sync.pull import diff
from sync.push import push

from .conftest import copy_home, count, local_count, run_cli

EMULATOR_IDENTITY = "user:local-bigquery@localhost"
BARS = "market_data.databento_futures_ohlcv_1h"


def test_views_grant_the_pushing_identity_all_rows(sample_template, tmp_path, make_settings, client):
    assert dc.get(BARS).private_rows
    s = make_settings(copy_home(sample_template, tmp_path / "home"))
    with warehouse.open_warehouse(s.warehouse_path) as con:
        assert push(con, make_client(s), s).ok
    local = local_count(s.home, BARS)
    assert count(client, BARS) == local > 0

    readers_only = run_cli(s, "sync", "views", "--json", CBI_PUBLIC_READERS="group:analysts@example.com")
    assert readers_only.returncode == 0, readers_only.stderr
    out = json.loads(readers_only.stdout)
    assert out["pushers"] == [] and "CBI_PUSH_MEMBERS" in out["warning"]
    assert count(client, BARS) == 0  # the pusher is not granted: it sees no row (its MERGE would be refused)

    granted = run_cli(s, "sync", "views", "--json", CBI_PUBLIC_READERS="group:analysts@example.com", CBI_PUSH_MEMBERS=EMULATOR_IDENTITY)
    assert granted.returncode == 0, granted.stderr
    out = json.loads(granted.stdout)
    assert out["pushers"] == [EMULATOR_IDENTITY] and out["warning"] is None
    mine = [q for q in out["row_access_policies"] if f"{BARS}`" in q]
    assert any("cbi_pusher_all_rows" in q and "FILTER USING (TRUE)" in q and EMULATOR_IDENTITY in q for q in mine)
    assert count(client, BARS) == local
    with warehouse.open_warehouse(s.warehouse_path) as con:
        (d,) = diff(con, make_client(s), s, [BARS])
    assert d.ok, d.as_dict()["counts"]


def test_policy_ddl_names_the_pusher_only_where_a_table_gets_a_policy():
    none = privacy.row_access_policies("p", owners=[], readers=[], pushers=["serviceAccount:pusher@p.iam.gserviceaccount.com"])
    assert none == []  # no policy on a table: every identity sees every row, nothing to grant
    ddl = privacy.row_access_policies("p", owners=[], readers=["group:analysts@example.com"], pushers=["serviceAccount:pusher@p.iam.gserviceaccount.com"])
    readers = [q for q in ddl if "cbi_public_rows" in q]
    pushers = [q for q in ddl if "cbi_pusher_all_rows" in q]
    assert readers and len(pushers) == len(readers)
    assert all('"serviceAccount:pusher@p.iam.gserviceaccount.com"' in q and q.endswith("FILTER USING (TRUE)") for q in pushers)
