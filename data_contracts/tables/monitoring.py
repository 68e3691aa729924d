"""monitoring: health history, quarantine, dedup log."""

from .. import columns as c
from .. import rules as r
from ..sources import CBI
from ..model import Contract, Partition


health_checks = Contract(
    dataset="monitoring",
    table="health_checks",
    description="History of quality-rule results; status is pass, fail or warn.",
    columns=(
        c.check_id.required(), c.checked_at.required(), c.rule.required(), c.table_name.required(), c.rule_columns,
        c.status.required(), c.severity, c.measured_value, c.threshold, c.sample_keys, c.batch_id, c.engine, c.message,
    ),
    primary_key=("check_id",),
    partition=Partition("checked_at", "MONTH"),
    clustering=("table_name", "rule"),
    sources=(CBI,),
    rules=(r.unique_key(),),
)

quarantine = Contract(
    dataset="monitoring",
    table="quarantine",
    description="Rows that broke a rule, with the rule and the full payload; status is held, released or dropped.",
    columns=(
        c.quarantine_id.required(), c.quarantined_at.required(), c.batch_id, c.table_name, c.source_file,
        c.file_sha256, c.record_number, c.rule.required(), c.reason, c.payload, c.status.required(), c.resolved_at,
    ),
    primary_key=("quarantine_id",),
    partition=Partition("quarantined_at", "MONTH"),
    clustering=("table_name", "rule"),
    sources=(CBI,),
    rules=(r.unique_key(),),
    sync="local",
)

dedup_conflicts = Contract(
    dataset="monitoring",
    table="dedup_conflicts",
    description="Rows that shared a key with a higher-precedence source's row: which was kept and why.",
    columns=(
        c.conflict_id.required(), c.created_at.required(), c.table_name.required(), c.key_values, c.kept_source,
        c.dropped_source, c.kept_payload, c.dropped_payload, c.reason, c.batch_id,
    ),
    primary_key=("conflict_id",),
    partition=Partition("created_at", "MONTH"),
    clustering=("table_name",),
    sources=(CBI,),
    rules=(r.unique_key(),),
    sync="local",
)

CONTRACTS = (health_checks, quarantine, dedup_conflicts)
