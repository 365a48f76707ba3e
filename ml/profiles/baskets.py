"""Market basket: what ops see of dbt's ``features.basket_associations`` (pairs bought together over 90 days).

The table is a dbt model (``dbt_project/models/features/basket_associations.sql``: support, confidence and lift
per directed pair, over the orders small enough to say what goes together); this module summarises a day of it
for the UI.
"""

from __future__ import annotations

from datetime import date

import duckdb

from ml.profiles.feature_tables import BASKET_ASSOCIATIONS
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists


def basket_summary(con: duckdb.DuckDBPyConnection, as_of: date) -> dict:
    """Directed pairs, orders in the window, antecedents, median and largest lift, pairs with lift above 1, and
    the 15 pairs bought together most often, on ``as_of``."""
    if not table_exists(con, BASKET_ASSOCIATIONS):
        return summary(0)
    stats = con.execute(
        f"""select count(*), coalesce(max(n_orders_window), 0), count(distinct antecedent), median(lift), max(lift),
                   count(*) filter (where lift > 1)
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
        "directed_pairs": stats[0],
        "orders_in_window": int(stats[1]),
        "antecedents": stats[2],
        "median_lift": stats[3],
        "max_lift": stats[4],
        "pairs_lift_above_1": stats[5],
    }
    return summary(stats[0], metrics, {"top_pairs": markdown_table(top)})
