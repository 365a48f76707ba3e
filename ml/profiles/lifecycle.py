"""People: what ops see of dbt's ``features.lifecycle_flows`` (customers moving between lifecycle stages)."""

from __future__ import annotations

from datetime import date

import duckdb

from ml.profiles.feature_tables import LIFECYCLE_FLOWS
from ml.sources.schema import LIFECYCLE_STAGES
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists

NOT_KNOWN = "not_known"
"""The from-stage of a customer first seen on the day."""


def lifecycle_flows_summary(con: duckdb.DuckDBPyConnection, as_of: date) -> dict:
    """Customers that changed stage since the day before (and their share), the newly known ones, the moves into
    at-risk and churned, and the from x to matrix, on ``as_of``."""
    if not table_exists(con, LIFECYCLE_FLOWS):
        return summary(0)
    flows = con.execute(
        f"select from_stage, to_stage, customers from {LIFECYCLE_FLOWS} where as_of_date = ?", [as_of]
    ).df()
    if flows.empty:
        return summary(0)
    known = flows[flows["from_stage"] != NOT_KNOWN]
    moved = known[known["from_stage"] != known["to_stage"]]
    into = moved.groupby("to_stage")["customers"].sum()
    matrix = flows.pivot_table(
        index="from_stage", columns="to_stage", values="customers", aggfunc="sum", fill_value=0
    )
    order = [s for s in (*LIFECYCLE_STAGES, NOT_KNOWN) if s in matrix.index]
    matrix = matrix.reindex(index=order, columns=[s for s in LIFECYCLE_STAGES if s in matrix.columns])
    return summary(
        int(flows["customers"].sum()),
        metrics={
            "customers_moved": int(moved["customers"].sum()),
            "share_moved": float(moved["customers"].sum() / max(int(known["customers"].sum()), 1)),
            "customers_newly_known": int(flows.loc[flows["from_stage"] == NOT_KNOWN, "customers"].sum()),
            "moved_to_at_risk": int(into.get("at_risk", 0)),
            "moved_to_churned": int(into.get("churned", 0)),
        },
        markdown={"flows": markdown_table(matrix.reset_index().rename(columns={"from_stage": "from \\ to"}))},
    )
