"""Turn a :class:`~expectations.runner.ValidationOutcome` into a Dagster ``AssetCheckResult``.

The only module of ``expectations/`` that imports Dagster. Metadata shown in the UI:

* ``failed_expectations``: markdown table, one row per failed expectation (rule, column, what was observed);
* ``observed_values``: JSON, per failed expectation the observed value or unexpected count and values;
* ``sample_failing_rows``: markdown, up to five failing rows per failed expectation;
* ``data_docs`` / ``data_docs_url``: the Data Docs page of this validation (when built);
* numbers that plot over partitions: ``rows_validated``, ``expectations_evaluated``, ``expectations_failed``,
  ``success_percent``, ``duration_s``; and ``suite``, ``table``, ``window``, ``blocking``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from expectations.runner import FailedExpectation, ValidationOutcome

_CELL = 60


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _rule_text(failed: FailedExpectation) -> str:
    skip = {"column", "column_list", "condition_parser"}
    parts = []
    for key, value in failed.rule.items():
        if key in skip or value is None:
            continue
        if key == "row_condition" and isinstance(value, dict):
            value = value.get("pass_through_filter", value)
        parts.append(f"{key}={value}")
    return ", ".join(parts)


def failed_expectations_markdown(outcome: ValidationOutcome) -> str:
    if not outcome.failed:
        return "All expectations passed."
    lines = ["| expectation | column | rule | observed |", "|---|---|---|---|"]
    for f in outcome.failed:
        column = f.column or "(table)"
        lines.append(
            f"| {_cell(f.expectation)} | {_cell(column)} | {_cell(_rule_text(f))} | {_cell(f.observed)} |"
        )
    return "\n".join(lines)


def sample_rows_markdown(outcome: ValidationOutcome) -> str:
    blocks = []
    for f in outcome.failed:
        if not f.sample_rows:
            continue
        names = list(f.sample_rows[0])
        lines = [
            f"**{f.expectation}** on `{f.column}`: {f.observed}",
            "",
            "| " + " | ".join(names) + " |",
            "|" + "---|" * len(names),
        ]
        lines += ["| " + " | ".join(_cell(row.get(n)) for n in names) + " |" for row in f.sample_rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "No failing rows."


def observed_values(outcome: ValidationOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, f in enumerate(outcome.failed):
        key = f"{i + 1}. {f.expectation}" + (f" ({f.column})" if f.column else "")
        out[key] = {
            "rule": f.rule,
            "observed_value": f.observed_value,
            "unexpected_count": f.unexpected_count,
            "unexpected_percent": f.unexpected_percent,
            "unexpected_values": f.unexpected_values,
            "exception": f.exception,
        }
    return out


def to_asset_check_result(
    outcome: ValidationOutcome,
    asset_key: dg.AssetKey | str | list[str] | None = None,
    check_name: str | None = None,
) -> dg.AssetCheckResult:
    """The asset-check result of a validation; the check name defaults to ``gx_<suite name>``.

    Severity is ERROR for blocking suites and WARN for the others (declare the check itself with
    ``blocking=SUITES[name].blocking``).
    """
    window = outcome.window_start.isoformat()
    if outcome.window_end != outcome.window_start:
        window += f" .. {outcome.window_end.isoformat()}"
    metadata: dict[str, Any] = {
        "suite": dg.MetadataValue.text(outcome.suite_name),
        "table": dg.MetadataValue.text(outcome.table),
        "window": dg.MetadataValue.text(window),
        "blocking": dg.MetadataValue.bool(outcome.blocking),
        "rows_validated": dg.MetadataValue.int(outcome.row_count),
        "expectations_evaluated": dg.MetadataValue.int(outcome.evaluated),
        "expectations_failed": dg.MetadataValue.int(outcome.unsuccessful),
        "success_percent": dg.MetadataValue.float(round(outcome.success_percent, 2)),
        "duration_s": dg.MetadataValue.float(round(outcome.duration_s, 3)),
        "failed_expectations": dg.MetadataValue.md(failed_expectations_markdown(outcome)),
        "observed_values": dg.MetadataValue.json(observed_values(outcome)),
        "sample_failing_rows": dg.MetadataValue.md(sample_rows_markdown(outcome)),
        "parameters": dg.MetadataValue.json(outcome.parameters),
    }
    if outcome.docs_path:
        metadata["data_docs"] = dg.MetadataValue.path(outcome.docs_path)
        metadata["data_docs_url"] = dg.MetadataValue.url(Path(outcome.docs_path).resolve().as_uri())
    severity = dg.AssetCheckSeverity.ERROR if outcome.blocking else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        passed=outcome.success,
        asset_key=asset_key,
        check_name=check_name or f"gx_{outcome.suite_name}",
        severity=severity,
        metadata=metadata,
    )
