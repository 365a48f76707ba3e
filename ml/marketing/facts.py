"""Fact sheets: everything a message may state about a customer and the products it features.

A message is written from its fact sheet and checked against it (:mod:`ml.marketing.grounding`): a number, a
name or a date that is not on the sheet is not allowed in the message. The sheet is also what the message
records as the reason it was sent.

Customer facts come from ``features.user_profiles`` (lifecycle stage, recency, orders and spend over 365 days,
R/F/M scores, the share of units bought on discount, top category, peak hour, preferred channel) and
``features.customer_segments``; product facts from ``marts.dim_products`` (title, category, list price), the
day's promotions (``stg_promotions``: the best discount in the product's category for every channel or email)
and the latest stock snapshot (``marts.fct_inventory_daily``, summed over warehouses). The products a message
may feature are the customer's served list of the day (``outputs.recommendations``), in stock.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date

import duckdb
import pandas as pd

from ml.profiles.segments import CUSTOMER_SEGMENTS
from ml.profiles.users import USER_PROFILES
from ml.recommend.daily import LISTS
from ml.warehouse import table_exists

CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}


@dataclass(frozen=True)
class ProductFact:
    sku: str
    title: str
    category: str
    price: float
    promo_discount_pct: int
    """The day's category promotion in whole percent (0 when none)."""
    on_hand: int


@dataclass(frozen=True)
class Offer:
    kind: str
    """``none``, ``member_perk`` (free delivery, no discount) or ``percent_off``."""
    discount_pct: int = 0
    """Whole percent off the list price (``percent_off`` only)."""
    expires: date | None = None

    def price_after(self, price: float) -> float:
        return round(price * (1 - self.discount_pct / 100), 2)


@dataclass(frozen=True)
class FactSheet:
    customer_id: str
    send_date: date
    lifecycle_stage: str
    segment: str | None
    top_category: str | None
    orders_365d: int
    spend_365d: float
    recency_days: int | None
    discount_share_365d: float | None
    currency: str
    products: tuple[ProductFact, ...]
    offer: Offer = field(default_factory=lambda: Offer("none"))

    @property
    def symbol(self) -> str:
        return CURRENCY_SYMBOLS.get(self.currency, self.currency + " ")

    def to_json(self) -> str:
        """The sheet as the message's record of why it was sent and what it could say."""

        def default(value):
            return value.isoformat() if isinstance(value, date) else str(value)

        return json.dumps(asdict(self), default=default, sort_keys=True)


def customer_facts(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """One row per customer profiled on ``day``, with the segment label when segments were built."""
    segments = (
        f"left join {CUSTOMER_SEGMENTS} as s on s.customer_id = p.customer_id and s.as_of_date = p.as_of_date"
        if table_exists(con, CUSTOMER_SEGMENTS)
        else "left join (select null::varchar as customer_id, null::varchar as segment) as s on false"
    )
    return con.execute(
        f"""
        select p.customer_id, p.lifecycle_stage, p.recency_days, p.orders_365d, p.spend_365d,
               p.r_score, p.f_score, p.m_score, p.discount_share_365d, p.top_category, p.peak_hour,
               p.preferred_channel, s.segment
        from {USER_PROFILES} as p
        {segments}
        where p.as_of_date = ?
        order by p.customer_id
        """,
        [day],
    ).df()


def product_facts(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Per product: title, category, list price, currency, the day's promotion (whole percent) and units on hand
    at the latest snapshot on or before ``day`` (0 when the source keeps no stock)."""
    promotions = (
        """select category, max(discount_pct) as discount_pct from staging.stg_promotions
           where active_date = $day and channel in ('all', 'email') group by category"""
        if table_exists(con, "staging.stg_promotions")
        else "select null::varchar as category, null::double as discount_pct where false"
    )
    stock = (
        """select sku, sum(on_hand) as on_hand from marts.fct_inventory_daily
           where snapshot_date = (select max(snapshot_date) from marts.fct_inventory_daily
                                  where snapshot_date <= $day)
           group by sku"""
        if table_exists(con, "marts.fct_inventory_daily")
        else "select null::varchar as sku, null::bigint as on_hand where false"
    )
    return con.execute(
        f"""
        with promotions as ({promotions}), stock as ({stock})
        select d.sku, d.title, d.category, d.price, coalesce(d.currency, 'GBP') as currency,
               cast(round(100 * coalesce(pr.discount_pct, 0)) as integer) as promo_discount_pct,
               cast(coalesce(st.on_hand, 0) as bigint) as on_hand
        from marts.dim_products as d
        left join promotions as pr on pr.category = d.category
        left join stock as st on st.sku = d.sku
        order by d.sku
        """,
        {"day": day},
    ).df()


def served_lists(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """``customer_id, rank, sku`` of the lists published for ``day`` (empty when none were)."""
    if not table_exists(con, LISTS):
        return pd.DataFrame(columns=["customer_id", "rank", "sku"])
    return con.execute(
        f"select customer_id, rank, sku from {LISTS} where as_of_date = ? order by customer_id, rank", [day]
    ).df()


def featured_products(
    lists: pd.DataFrame, products: pd.DataFrame, count: int
) -> dict[str, tuple[ProductFact, ...]]:
    """Per customer: the first ``count`` products of the served list that are in stock (a message must not push
    what the shop cannot deliver)."""
    in_stock = products[products["on_hand"] > 0].set_index("sku")
    rows = lists[lists["sku"].isin(in_stock.index)].sort_values(["customer_id", "rank"])
    rows = rows.groupby("customer_id", sort=True).head(count)
    out: dict[str, tuple[ProductFact, ...]] = {}
    for customer, group in rows.groupby("customer_id", sort=True):
        out[str(customer)] = tuple(
            ProductFact(
                sku=str(sku),
                title=str(in_stock.at[sku, "title"]),
                category=str(in_stock.at[sku, "category"]),
                price=round(float(in_stock.at[sku, "price"]), 2),
                promo_discount_pct=int(in_stock.at[sku, "promo_discount_pct"]),
                on_hand=int(in_stock.at[sku, "on_hand"]),
            )
            for sku in group["sku"]
        )
    return out
