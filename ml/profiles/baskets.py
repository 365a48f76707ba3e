"""Market basket: SKU pairs bought in the same order over the last :data:`WINDOW_DAYS` days
(``features.basket_associations``, one row per directed pair ``antecedent -> consequent`` and as-of date D).

From ``features.basket_pair_day`` (pair counts per day; the diagonal holds single-SKU counts) and
``features.basket_day`` (orders per day), all over the same orders (orders with at most
:data:`ml.profiles.daily.MAX_BASKET_SKUS` distinct SKUs):

- ``support = n(a and b) / N`` (share of orders with both), ``confidence = n(a and b) / n(a)``
  (P(b in basket | a in basket)), ``lift = confidence / (n(b) / N)`` (> 1: bought together more often than
  chance).

Only pairs seen together in at least :data:`MIN_PAIR_ORDERS` orders are kept (rarer pairs give huge, meaningless
lifts), and at most :data:`MAX_CONSEQUENTS` consequents per antecedent (the highest lift).
"""

from __future__ import annotations

import time
from datetime import date

import duckdb

from ml.profiles._db import FEATURES, lit, markdown_table, replace_partition, shift, summary
from ml.profiles.daily import require_aggregates

WINDOW_DAYS = 90
MIN_PAIR_ORDERS = 3
MAX_CONSEQUENTS = 50
BASKET_ASSOCIATIONS = f"{FEATURES}.basket_associations"


def basket_associations(
    con: duckdb.DuckDBPyConnection, as_of: date, *, min_pair_orders: int = MIN_PAIR_ORDERS
) -> dict:
    """Build ``features.basket_associations`` for ``as_of`` (replacing that date) and return its summary."""
    t0 = time.perf_counter()
    require_aggregates(con, as_of)
    window = f"activity_date <= {lit(as_of)} and activity_date > {lit(shift(as_of, -WINDOW_DAYS))}"
    n_orders = con.execute(
        f"select coalesce(sum(n_orders_in_pairs), 0) from {FEATURES}.basket_day where {window}"
    ).fetchall()[0][0]
    select = f"""
        with counts as (
            select sku_a, sku_b, sum(n_orders) as n from {FEATURES}.basket_pair_day where {window}
            group by sku_a, sku_b
        ),
        single as (select sku_a as sku, n from counts where sku_a = sku_b),
        pairs as (select sku_a, sku_b, n from counts where sku_a < sku_b and n >= {int(min_pair_orders)}),
        directed as (
            select sku_a as antecedent, sku_b as consequent, n from pairs
            union all
            select sku_b, sku_a, n from pairs
        ),
        scored as (
            select d.antecedent, d.consequent, d.n::bigint as n_orders_both, sa.n::bigint as n_orders_antecedent,
                   sc.n::bigint as n_orders_consequent,
                   d.n / {max(n_orders, 1)} as support, d.n / sa.n as confidence,
                   (d.n / sa.n) / (sc.n / {max(n_orders, 1)}) as lift
            from directed as d join single as sa on d.antecedent = sa.sku join single as sc on d.consequent = sc.sku
        )
        select {lit(as_of)} as as_of_date, *, {n_orders}::bigint as n_orders_window
        from scored
        qualify row_number() over (partition by antecedent order by lift desc, consequent) <= {MAX_CONSEQUENTS}
    """
    rows = replace_partition(con, BASKET_ASSOCIATIONS, "as_of_date", as_of, select)
    stats = con.execute(
        f"""select count(distinct antecedent), median(lift), max(lift), count(*) filter (where lift > 1)
            from {BASKET_ASSOCIATIONS} where as_of_date = ?""",
        [as_of],
    ).fetchall()[0]
    top = con.execute(
        f"""select antecedent, consequent, n_orders_both, round(support, 5) as support,
                   round(confidence, 3) as confidence, round(lift, 2) as lift
            from {BASKET_ASSOCIATIONS} where as_of_date = ? and antecedent < consequent
            order by n_orders_both desc, lift desc limit 15""",
        [as_of],
    ).df()
    metrics = {
        "directed_pairs": rows,
        "orders_in_window": int(n_orders),
        "antecedents": stats[0],
        "median_lift": stats[1],
        "max_lift": stats[2],
        "pairs_lift_above_1": stats[3],
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return summary(rows, metrics, {"top_pairs": markdown_table(top)})
