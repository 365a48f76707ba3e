"""Per-day summaries of dbt's feedback marts (``marts.fct_impressions``, ``marts.fct_lost_sales``) for the UI.

Figures are per placement and arm of its experiment (:mod:`ml.recommend.experiment`), so treatment and control plot side by
side over partitions. They describe the day; uplift with intervals is the job of the online metrics.
"""

from __future__ import annotations

from datetime import date

import duckdb

from ml.feedback.online import RECOMMENDER_PLACEMENT
from ml.sources.schema import EXPERIMENT_ARMS
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists

IMPRESSIONS = "marts.fct_impressions"
LOST_SALES = "marts.fct_lost_sales"


def impressions_summary(con: duckdb.DuckDBPyConnection, as_of: date) -> dict:
    """Impressions of ``as_of`` by placement and arm: exposed customers, click-through and add-to-cart rates, and
    the units and revenue credited per exposed customer. The recommender's lists (``for_you``) keep plain names
    (``ctr_treatment``); another placement's are prefixed with it (``category_page_ctr_treatment``)."""
    if not table_exists(con, IMPRESSIONS):
        return summary(0)
    by_arm = con.execute(
        f"""
        select
            placement,
            arm,
            count(*) as impressions,
            count(distinct customer_id) as exposed_customers,
            avg(case when clicked then 1.0 else 0.0 end) as ctr,
            avg(case when carted then 1.0 else 0.0 end) as cart_rate,
            sum(purchased_units) / count(distinct customer_id) as units_per_exposed,
            sum(revenue) / count(distinct customer_id) as revenue_per_exposed
        from {IMPRESSIONS}
        where impression_date = ?
        group by placement, arm
        order by placement, arm
        """,
        [as_of],
    ).df()
    if by_arm.empty:
        return summary(0)
    metrics: dict[str, float | int] = {}
    for placement in sorted(set(by_arm["placement"]) | {RECOMMENDER_PLACEMENT}):
        prefix = "" if placement == RECOMMENDER_PLACEMENT else f"{placement}_"
        for arm in EXPERIMENT_ARMS:
            row = by_arm[(by_arm["placement"] == placement) & (by_arm["arm"] == arm)]
            for column in (
                "exposed_customers",
                "ctr",
                "cart_rate",
                "units_per_exposed",
                "revenue_per_exposed",
            ):
                value = row[column].iloc[0] if len(row) else float("nan")
                metrics[f"{prefix}{column}_{arm}"] = (
                    int(value) if column == "exposed_customers" and len(row) else float(value)
                )
    return summary(
        int(by_arm["impressions"].sum()),
        metrics=metrics,
        markdown={"by_placement_and_arm": markdown_table(by_arm, float_digits=4)},
    )


def lost_sales_summary(con: duckdb.DuckDBPyConnection, as_of: date) -> dict:
    """Units the stock could not serve on ``as_of``, by reason, and the SKUs that lost the most."""
    if not table_exists(con, LOST_SALES):
        return summary(0)
    rows = con.execute(
        f"select sku, warehouse_id, reason, lost_units from {LOST_SALES} where lost_date = ?", [as_of]
    ).df()
    if rows.empty:
        return summary(0, metrics={"lost_units": 0})
    by_reason = rows.groupby("reason")["lost_units"].sum()
    top = rows.groupby("sku", as_index=False)["lost_units"].sum().nlargest(10, "lost_units")
    return summary(
        len(rows),
        metrics={
            "lost_units": int(rows["lost_units"].sum()),
            **{f"lost_units_{reason}": int(units) for reason, units in by_reason.items()},
            "skus_with_lost_sales": int(rows["sku"].nunique()),
        },
        markdown={"top_skus": markdown_table(top)},
    )
