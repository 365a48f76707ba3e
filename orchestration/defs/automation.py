"""Automation beyond the daily schedule: a sensor for landing drops, declarative automation downstream, alerts.

* ``landing_drop_sensor`` watches the landing zone the way a real upstream drop arrives: when every table of
  the source has a ``date=YYYY-MM-DD`` folder for a day (a complete drop), it launches ``raw_ingest`` for that
  partition. The run key carries a fingerprint of the folder contents, so a late file added to an
  already-ingested day launches the day again (the raw load is idempotent), and an unchanged day never does.
* ``DOWNSTREAM_AUTOMATION``: layers after raw materialise on their own once every upstream partition is
  updated, none is missing or in progress, and every blocking check upstream passed, so nothing runs on an
  incomplete or blocked input.
* ``run_failure_alert_sensor`` appends one JSON line per failed run to ``$DATA_DIR/alerts/run_failures.jsonl``
  (run, job, partition, failing step and its message) and logs it; ops read it or ship it to a pager.
"""

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from ml import settings
from ml.sources.landing import day_dir, landed_days
from ml.sources.schema import TABLES
from orchestration.asset_keys import raw_key
from orchestration.partitions import RESTATED_TAG, RESTATEMENT_REASON_TAG, daily_partitions

raw_ingest = dg.define_asset_job(
    name="raw_ingest",
    selection=dg.AssetSelection.assets(*[raw_key(t) for t in TABLES]),
    partitions_def=daily_partitions,
    description="Load a landed day into the raw layer (and run its checks); started by the landing sensor.",
)

DOWNSTREAM_AUTOMATION = (
    dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()
).with_label("eager once upstream is complete and its blocking checks passed")


def stateful_automation(key: dg.AssetKey) -> dg.AutomationCondition:
    """:data:`DOWNSTREAM_AUTOMATION` for an asset that starts from its own previous day: that dependency has no
    blocking checks to wait for (and before the first partition it does not exist, which would otherwise hold the
    first day back forever)."""
    checks_passed = dg.AutomationCondition.all_deps_blocking_checks_passed().ignore(
        dg.AssetSelection.assets(key)
    )
    return (dg.AutomationCondition.eager() & checks_passed).with_label(
        "eager once upstream is complete and its blocking checks passed (its own previous day aside)"
    )


def drop_signature(landing_root: Path, source: str, tables: tuple[str, ...], day: str) -> str | None:
    """A cheap signature of the files landed for ``day`` (names, sizes, modification times), or None while any
    table is missing: when it is unchanged the content is not read again."""
    digest = hashlib.sha256()
    for table in tables:
        folder = day_dir(landing_root, source, table, day)
        if not folder.is_dir():
            return None
        for f in _landed_files(folder):
            stat = f.stat()
            digest.update(f"{table}/{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def content_hashes(landing_root: Path, source: str, tables: tuple[str, ...], day: str) -> dict[str, str]:
    """Per table, a hash of the bytes of the day's files (names included): what a re-delivery really changed."""
    out = {}
    for table in tables:
        digest = hashlib.sha256()
        for f in _landed_files(day_dir(landing_root, source, table, day)):
            digest.update(f.name.encode())
            with f.open("rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    digest.update(block)
        out[table] = digest.hexdigest()[:16]
    return out


def _landed_files(folder: Path) -> list[Path]:
    return [f for f in sorted(folder.iterdir()) if not f.name.startswith((".", "_"))]


@dg.sensor(
    job=raw_ingest,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Launches raw_ingest for each day whose landing drop is complete (all tables), and again when a "
    "re-delivery changes its content (a content hash per table: the same bytes re-delivered restate nothing); a "
    "restating run is tagged with the tables that changed, and automation re-materialises what is downstream.",
)
def landing_drop_sensor(context: dg.SensorEvaluationContext):
    source = settings.source_settings()
    from ml.sources import get_source

    tables = get_source(source.name, scale=source.scale).tables
    landing_root = settings.landing_root()
    partitions = set(daily_partitions.get_partition_keys())
    seen: dict[str, dict] = json.loads(context.cursor) if context.cursor else {}
    requests = []
    for day in landed_days(landing_root, source.name, tables[0]):
        if day not in partitions:
            continue
        signature = drop_signature(landing_root, source.name, tables, day)
        before = seen.get(day)
        if signature is None or (isinstance(before, dict) and before["signature"] == signature):
            continue
        hashes = content_hashes(landing_root, source.name, tables, day)
        seen[day] = {"signature": signature, "content": hashes}
        if isinstance(before, str):
            # a cursor written before content hashes: that drop was loaded; its content is the baseline now
            continue
        if before and before["content"] == hashes:
            context.log.info(f"{day}: landing files re-delivered with the same content; nothing to restate")
            continue
        fingerprint = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
        tags = {}
        if before:
            changed = sorted(t for t in tables if before["content"].get(t) != hashes[t])
            tags = {
                RESTATED_TAG: "true",
                RESTATEMENT_REASON_TAG: f"landing content changed: {', '.join(changed)}",
            }
        requests.append(dg.RunRequest(run_key=f"landing-{day}-{fingerprint}", partition_key=day, tags=tags))
    context.update_cursor(json.dumps(seen, sort_keys=True))
    if not requests:
        return dg.SkipReason("no new or changed complete landing drops")
    return requests


def _error_chain(error) -> str:
    """The messages of an error and its causes (Dagster wraps the user's exception in its own)."""
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return " <- ".join(m for m in messages if m)


def alerts_path() -> Path:
    return settings.data_dir() / "alerts" / "run_failures.jsonl"


@dg.run_failure_sensor(
    name="run_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes an alert record (failing step and message) for every failed run.",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext):
    steps = [
        {
            "step": e.step_key,
            "message": _error_chain(e.event_specific_data.error if e.event_specific_data else None),
        }
        for e in context.get_step_failure_events()
    ]
    record = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": context.dagster_run.run_id,
        "job": context.dagster_run.job_name,
        "partition": context.dagster_run.tags.get("dagster/partition"),
        "failed_steps": steps,
        "run_message": context.failure_event.message,
    }
    path = alerts_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
    context.log.error(f"run {record['run_id']} of {record['job']} failed: {steps or record['run_message']}")
