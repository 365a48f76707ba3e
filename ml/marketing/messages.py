"""The day's messages (``marketing.messages``): targeted, written, checked, split into treatment and control.

For day D (written after D's run, sent by the shop on D+1 like D's lists): the playbook selects customers from
D's profiles (:mod:`ml.marketing.targeting`); opt-outs and the
frequency cap remove some; each remaining customer's fact sheet features the first in-stock products of D's
served list (a customer without one gets no message: nothing true to say); the template family is drawn
family and the offer level (the arm) are drawn from the serving policy's probabilities for the customer's context
by a hash of the day and the customer (:mod:`ml.marketing.bandit`; uniform until a learnt policy is adopted by
:mod:`ml.marketing.policy`), the probability recorded as the message's propensity with the policy's version; the
grounding checker reads the words. Status:

- ``ready``: grounded, in the treatment arm: exported for the shop to send;
- ``holdout``: grounded, in the control arm (a fixed hashed :data:`CONTROL_SHARE` of customers, salt
  :data:`SPLIT_SALT`, independent of the lists' split): written but not sent, so uplift is measured against
  customers the playbook selected just the same;
- ``blocked``: the checker found a fact the sheet does not support; never sent, kept with its failures.

Re-running D replaces D's rows; the cap counts only earlier days' ``ready`` and ``holdout`` messages, so a
re-run never sends twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ml.marketing.bandit import (
    ARMS,
    FixedArm,
    LinearThompson,
    UniformArms,
    allowed_arms,
    context_matrix,
    draw_arms,
    prior_policy,
    split_arm,
)
from ml.marketing.facts import (
    FactSheet,
    customer_facts,
    featured_products,
    product_facts,
    served_lists,
)
from ml.marketing.grounding import Catalogue, check
from ml.marketing.targeting import (
    CAMPAIGNS,
    MarketingSettings,
    apply_caps_and_opt_outs,
    assign_campaigns,
)
from ml.marketing.writer import write
from ml.profiles.users import USER_PROFILES
from ml.recommend.experiment import CONTROL, arms
from ml.summary import summary
from ml.warehouse import markdown_table, replace_partition, table_exists

MESSAGES = "marketing.messages"
MESSAGE_EVENTS = "marts.fct_message_events"
CONTROL_SHARE = 0.10
SPLIT_SALT = "messages-v1"
DEFAULT_SEND_HOUR = 10


def opted_out(con: duckdb.DuckDBPyConnection, day: date) -> set[str]:
    """Customers who unsubscribed from a message delivered on or before ``day`` (the shop's message events)."""
    if not table_exists(con, MESSAGE_EVENTS):
        return set()
    rows = con.execute(
        f"select distinct customer_id from {MESSAGE_EVENTS} where unsubscribed and send_date <= ?", [day]
    ).fetchall()
    return {str(r[0]) for r in rows}


def capped_customers(con: duckdb.DuckDBPyConnection, day: date, cap_days: int) -> set[str]:
    """Customers sent a message (``ready``) or held out (``holdout``: the control arm is capped like the treatment
    arm, so both arms are drawn from the same customers) on any of the ``cap_days - 1`` days before ``day``: at
    most one message in any ``cap_days`` consecutive days. ``day`` itself is not counted, so a re-run of a day
    replaces its own messages instead of capping them."""
    if not table_exists(con, MESSAGES):
        return set()
    rows = con.execute(
        f"select distinct customer_id from {MESSAGES} where status in ('ready', 'holdout') "
        "and as_of_date >= ? and as_of_date < ?",
        [day - timedelta(days=cap_days - 1), day],
    ).fetchall()
    return {str(r[0]) for r in rows}


def message_id(day: date, customer_id: str) -> str:
    return hashlib.sha256(f"{day.isoformat()}:{customer_id}".encode()).hexdigest()[:16]


def messages_day(
    con: duckdb.DuckDBPyConnection,
    day: date,
    settings: MarketingSettings | None = None,
    policy: LinearThompson | FixedArm | UniformArms | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """D's messages (one row per targeted customer with something to feature) and the funnel counts. The arms
    are drawn from ``policy`` (the uniform prior when none is given)."""
    settings = settings or MarketingSettings()
    policy = policy or prior_policy()
    if not table_exists(con, USER_PROFILES):
        return pd.DataFrame(columns=MESSAGE_COLUMNS), {"profiled": 0}
    profiles = customer_facts(con, day)
    targets = assign_campaigns(profiles, settings)
    funnel = {"profiled": len(profiles), "targeted": len(targets)}
    targets, removed = apply_caps_and_opt_outs(
        targets, capped_customers(con, day, settings.cap_days), opted_out(con, day)
    )
    funnel |= removed
    products = product_facts(con, day)
    featured = featured_products(served_lists(con, day), products, settings.featured_items)
    has_products = targets["customer_id"].isin(featured.keys())
    funnel["nothing_to_feature"] = int((~has_products).sum())
    targets = targets[has_products]
    catalogue = Catalogue.from_products(products)
    profile = profiles.set_index("customer_id")
    currency = str(products["currency"].mode().iat[0]) if len(products) else "GBP"
    send_day = day + timedelta(days=1)
    sheets = [
        _sheet(profile.loc[t.customer_id], t.customer_id, send_day, currency, featured[t.customer_id])
        for t in targets.itertuples(index=False)
    ]
    context = context_matrix(
        pd.DataFrame(
            {
                "campaign": targets["campaign"].to_numpy(),
                "orders_365d": [s.orders_365d for s in sheets],
                "spend_365d": [s.spend_365d for s in sheets],
                "recency_days": [s.recency_days for s in sheets],
                "discount_share_365d": [s.discount_share_365d for s in sheets],
            }
        )
    )
    allowed = (
        np.vstack([allowed_arms(c) for c in targets["campaign"]])
        if len(targets)
        else np.empty((0, len(ARMS)))
    )
    probabilities = policy.action_probabilities(context, allowed, seed=day.toordinal())
    drawn = draw_arms(probabilities, targets["customer_id"], day)
    rows = []
    for i, (target, arm, sheet) in enumerate(
        zip(
            targets.itertuples(index=False),
            arms(targets["customer_id"], CONTROL_SHARE, SPLIT_SALT),
            sheets,
            strict=True,
        )
    ):
        facts = profile.loc[target.customer_id]
        family, level = split_arm(ARMS[drawn[i]])
        sheet = replace(sheet, offer=settings.offer(target.campaign, send_day, level))
        message = write(sheet, target.campaign, family)
        failures = check(message.subject, message.body, sheet, catalogue)
        status = "blocked" if failures else ("holdout" if arm == CONTROL else "ready")
        rows.append(
            {
                "as_of_date": day,
                "message_id": message_id(day, target.customer_id),
                "send_date": send_day,
                "customer_id": target.customer_id,
                "campaign": target.campaign,
                "rule": target.rule,
                "arm": arm,
                "family": family,
                "offer_level": level,
                "propensity": float(probabilities[i, drawn[i]]),
                "policy_version": policy.version,
                "offer_kind": sheet.offer.kind,
                "discount_pct": sheet.offer.discount_pct,
                "offer_expires": sheet.offer.expires,
                "channel": "push" if facts["preferred_channel"] == "app" else "email",
                "send_hour": _fact(facts["peak_hour"], int, DEFAULT_SEND_HOUR),
                "subject": message.subject,
                "body": message.body,
                "featured_skus": [p.sku for p in sheet.products],
                "facts": sheet.to_json(),
                "status": status,
                "grounding_failures": "; ".join(failures),
            }
        )
    frame = pd.DataFrame(rows, columns=MESSAGE_COLUMNS)
    return frame, funnel


def _sheet(facts: pd.Series, customer_id: str, send_day: date, currency: str, products) -> FactSheet:
    """The customer's fact sheet, before an offer is chosen."""
    return FactSheet(
        customer_id=customer_id,
        send_date=send_day,
        lifecycle_stage=str(facts["lifecycle_stage"]),
        segment=_fact(facts["segment"], str),
        top_category=_fact(facts["top_category"], str),
        orders_365d=_fact(facts["orders_365d"], int, 0),
        spend_365d=_fact(facts["spend_365d"], lambda v: round(float(v), 2), 0.0),
        recency_days=_fact(facts["recency_days"], int),
        discount_share_365d=_fact(facts["discount_share_365d"], lambda v: round(float(v), 4)),
        currency=currency,
        products=products,
    )


MESSAGE_COLUMNS = [
    "as_of_date",
    "message_id",
    "send_date",
    "customer_id",
    "campaign",
    "rule",
    "arm",
    "family",
    "offer_level",
    "propensity",
    "policy_version",
    "offer_kind",
    "discount_pct",
    "offer_expires",
    "channel",
    "send_hour",
    "subject",
    "body",
    "featured_skus",
    "facts",
    "status",
    "grounding_failures",
]


def _fact(value, convert, missing=None):
    """A profile value converted for the fact sheet, or ``missing`` where the profile has none."""
    return missing if value is None or pd.isna(value) else convert(value)


def messages_summary(messages: pd.DataFrame, funnel: dict[str, int]) -> dict:
    """Funnel counts, the grounding pass rate, messages per campaign and family, samples and blocked examples."""
    written = len(messages)
    status = messages["status"].value_counts() if written else pd.Series(dtype=int)
    blocked = int(status.get("blocked", 0))
    metrics = {
        **funnel,
        "written": written,
        "ready": int(status.get("ready", 0)),
        "holdout": int(status.get("holdout", 0)),
        "blocked": blocked,
        "grounding_pass_rate": (written - blocked) / written if written else float("nan"),
    }
    for campaign in CAMPAIGNS:
        metrics[f"ready_{campaign}"] = int(
            ((messages["campaign"] == campaign) & (messages["status"] == "ready")).sum() if written else 0
        )
    ready = messages[messages["status"] == "ready"] if written else messages
    for arm_name in ARMS:
        family, level = split_arm(arm_name)
        chosen = (ready["family"] == family) & (ready["offer_level"] == level) if len(ready) else []
        metrics[f"arm_share_{family}_{level}"] = float(np.mean(chosen)) if len(ready) else float("nan")
    markdown = {}
    if written:
        by = (
            messages.groupby(["campaign", "family", "offer_level", "status"])
            .size()
            .rename("messages")
            .reset_index()
        )
        markdown["by_campaign_and_family"] = markdown_table(by)
        samples = messages[messages["status"] != "blocked"].groupby("campaign").head(1)
        markdown["sample_messages"] = markdown_table(
            samples[
                [
                    "customer_id",
                    "campaign",
                    "rule",
                    "family",
                    "offer_level",
                    "propensity",
                    "subject",
                    "body",
                    "facts",
                ]
            ].assign(body=lambda f: f["body"].str.replace("\n", " / ")),
            max_cell_chars=400,
        )
        bad = messages[messages["status"] == "blocked"].head(5)
        if len(bad):
            markdown["blocked_examples"] = markdown_table(
                bad[["customer_id", "subject", "grounding_failures"]],
                max_cell_chars=400,
            )
    return summary(written, metrics, markdown)


def export_frame(messages: pd.DataFrame) -> pd.DataFrame:
    """What the shop and the read API get: the ``ready`` messages, without the fact sheet's internals."""
    ready = messages[messages["status"] == "ready"]
    return ready.drop(columns=["grounding_failures", "status"]).reset_index(drop=True)


def store_messages(con: duckdb.DuckDBPyConnection, day: date, messages: pd.DataFrame) -> int:
    """Replace ``day``'s rows of :data:`MESSAGES` (a day with none deletes what an earlier run wrote)."""
    if messages.empty:
        if table_exists(con, MESSAGES):
            con.execute(f"delete from {MESSAGES} where as_of_date = ?", [day])
        return 0
    return replace_partition(con, MESSAGES, "as_of_date", day, messages)
