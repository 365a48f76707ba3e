"""What the messages earned: the shop's answers per campaign, tone and arm, and uplift over the holdout.

Run D measures the messages sent on D (written on D-1): by then the shop's day D is loaded, with every open,
click and purchase of the send day. Each targeted customer is one row, sent (``treatment``: status ``ready``) or
held out (``control``: status ``holdout``, chosen by the playbook just the same, never sent):

- the funnel of the sent ones: open, click and unsubscribe rates and the sales credited to the message (the
  session its click opened; ``marts.fct_message_events``);
- for both arms: whether the customer bought anything that day (``conversion``), and the revenue and margin of
  everything bought that day (``marts.fct_order_items``): margin is after the offer's discount, so a discount
  that only gives money away shows as lost margin.

Uplift is treatment minus control per customer with a 95% bootstrap interval over customers
(:func:`ml.feedback.online.compare_arms`), overall and per campaign.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from ml.feedback.online import RESAMPLES, Metric, compare_arms, metric_value, uplift_values
from ml.marketing.messages import MESSAGE_EVENTS, MESSAGES
from ml.recommend.experiment import CONTROL, TREATMENT
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists

MIN_ARM_CUSTOMERS = 30
"""Fewer customers than this in an arm: no interval (a bootstrap over a handful of customers means nothing)."""
MESSAGE_METRICS = "marketing.message_metrics"
MESSAGE_UPLIFT = "marketing.message_uplift"

FUNNEL: tuple[Metric, ...] = (
    Metric("open_rate", "opened", None, "share of sent messages opened"),
    Metric("click_rate", "clicked", None, "share of sent messages clicked"),
    Metric("unsubscribe_rate", "unsubscribed", None, "share of sent messages that led to an unsubscribe"),
    Metric("credited_revenue", "credited_revenue", None, "sales of the click's session per sent message"),
    Metric("credited_margin", "credited_margin", None, "margin of the click's session per sent message"),
)
OUTCOMES: tuple[Metric, ...] = (
    Metric(
        "conversion", "converted", None, "share of targeted customers who bought anything on the send day"
    ),
    Metric("revenue", "revenue", None, "everything the targeted customer bought on the send day"),
    Metric("margin", "margin", None, "margin (after discounts) of everything bought on the send day"),
)


def read_targeted(con: duckdb.DuckDBPyConnection, send_day: date) -> pd.DataFrame:
    """One row per customer targeted for ``send_day`` (sent or held out) with the funnel and the day's sales."""
    if not table_exists(con, MESSAGES):
        return pd.DataFrame()
    events = (
        f"select message_id, opened, clicked, unsubscribed, credited_revenue, credited_margin from {MESSAGE_EVENTS}"
        if table_exists(con, MESSAGE_EVENTS)
        else "select null::varchar as message_id, false as opened, false as clicked, false as unsubscribed, "
        "0.0 as credited_revenue, 0.0 as credited_margin where false"
    )
    return con.execute(
        f"""
        with events as ({events}),
        sales as (
            select customer_id, count(distinct order_id) as orders, sum(net_amount) as revenue,
                   sum(margin) as margin
            from marts.fct_order_items
            where order_date = $send_day and is_sale
            group by customer_id
        )
        select m.as_of_date, m.send_date, m.customer_id, m.campaign, m.family, m.discount_pct,
               case when m.status = 'ready' then '{TREATMENT}' else '{CONTROL}' end as arm,
               coalesce(e.opened, false)::int as opened, coalesce(e.clicked, false)::int as clicked,
               coalesce(e.unsubscribed, false)::int as unsubscribed,
               coalesce(e.credited_revenue, 0) as credited_revenue,
               coalesce(e.credited_margin, 0) as credited_margin,
               (coalesce(s.orders, 0) > 0)::int as converted,
               coalesce(s.revenue, 0) as revenue, coalesce(s.margin, 0) as margin
        from {MESSAGES} as m
        left join events as e on e.message_id = m.message_id
        left join sales as s on s.customer_id = m.customer_id
        where m.send_date = $send_day and m.status in ('ready', 'holdout')
        order by m.customer_id
        """,
        {"send_day": send_day},
    ).df()


def message_metrics(rows: pd.DataFrame) -> pd.DataFrame:
    """Per campaign, family and arm: customers, the funnel (sent arm) and the outcomes (both arms)."""
    keys = ["campaign", "family", "arm"]
    records = []
    for key, group in rows.groupby(keys, sort=True):
        record = dict(zip(keys, key, strict=True)) | {"customers": int(group["customer_id"].nunique())}
        sent = key[2] == TREATMENT
        for metric in FUNNEL:
            record[metric.name] = metric_value(group, metric) if sent else float("nan")
        for metric in OUTCOMES:
            record[metric.name] = metric_value(group, metric)
        records.append(record)
    return pd.DataFrame(records)


def message_uplift(
    rows: pd.DataFrame, seed: int, resamples: int = RESAMPLES, min_arm_customers: int = MIN_ARM_CUSTOMERS
) -> pd.DataFrame:
    """Sent minus held out, for every outcome, over all campaigns (``campaign = 'all'``) and per campaign; the
    interval is left empty where an arm has fewer than ``min_arm_customers`` customers."""
    records = []
    scopes = [("all", rows), *rows.groupby("campaign", sort=True)]
    for campaign, group in scopes:
        treatment, control = group[group["arm"] == TREATMENT], group[group["arm"] == CONTROL]
        for metric in OUTCOMES:
            record = {"campaign": campaign} | compare_arms(treatment, control, metric, seed, resamples)
            if min(record["treatment_customers"], record["control_customers"]) < min_arm_customers:
                record["ci_low"] = record["ci_high"] = float("nan")
            records.append(record)
    return pd.DataFrame(records)


def message_metrics_day(
    con: duckdb.DuckDBPyConnection,
    day: date,
    resamples: int = RESAMPLES,
    min_arm_customers: int = MIN_ARM_CUSTOMERS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of :data:`MESSAGE_METRICS` and :data:`MESSAGE_UPLIFT` that run ``day`` measures: the messages
    sent on ``day`` (``as_of_date`` is the send day). Empty when none were."""
    rows = read_targeted(con, day)
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    as_of = pd.Timestamp(day).date()
    metrics = message_metrics(rows)
    uplift = message_uplift(
        rows, seed=day.toordinal(), resamples=resamples, min_arm_customers=min_arm_customers
    )
    metrics.insert(0, "as_of_date", as_of)
    uplift.insert(0, "as_of_date", as_of)
    return metrics, uplift


def message_metrics_summary(metrics: pd.DataFrame, uplift: pd.DataFrame) -> dict:
    """For the UI: arm shares, the funnel and every outcome's uplift with its interval (they plot over
    partitions), and both tables."""
    if metrics.empty:
        return summary(0)
    sent = metrics[metrics["arm"] == TREATMENT]
    values: dict[str, float | int | str] = {
        "send_date": str(metrics["as_of_date"].iloc[0]),
        "customers_sent": int(sent["customers"].sum()),
        "customers_held_out": int(metrics.loc[metrics["arm"] == CONTROL, "customers"].sum()),
    }
    weights = sent["customers"] / max(int(sent["customers"].sum()), 1)
    for metric in FUNNEL:
        values[metric.name] = float((sent[metric.name] * weights).sum()) if len(sent) else float("nan")
    for family, share in sent.groupby("family")["customers"].sum().items():
        values[f"share_{family}"] = float(share / max(int(sent["customers"].sum()), 1))
    values |= uplift_values(
        uplift[uplift["campaign"] == "all"], lambda row: row["metric"], ("sent", "held_out")
    )
    shown = uplift[["campaign", "metric", "treatment", "control", "difference", "ci_low", "ci_high"]]
    return summary(
        len(metrics),
        metrics=values,
        markdown={
            "uplift (sent - held out, 95% bootstrap interval over customers)": markdown_table(
                shown, float_digits=4
            ),
            "by campaign, family and arm": markdown_table(
                metrics.drop(columns=["as_of_date"]), float_digits=4
            ),
        },
    )
