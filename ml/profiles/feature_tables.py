"""The feature layer's tables that dbt builds (``dbt_project/models/features``) and what the profiles read of them.

dbt owns every pure-SQL aggregate and window: the daily slices (``customer_day``, ``customer_day_pref``,
``sku_day``, ``place_day``, ``basket_pair_day``, ``basket_day``), the catalogue as of each day (``product_day``),
the windows the profiles are made of (``customer_windows``, ``item_windows``, ``place_windows``) and the basket
associations. The profile builders of this package add what needs Python (the decayed preference state, the churn
model, text embeddings, empirical-Bayes smoothing, clustering) and read only rows dated on or before their day.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import duckdb

from ml.warehouse import table_exists

FEATURES = "features"
FEATURE_DAYS = f"{FEATURES}.feature_days"
PRODUCT_DAY = f"{FEATURES}.product_day"
CUSTOMER_DAY_PREF = f"{FEATURES}.customer_day_pref"
CUSTOMER_WINDOWS = f"{FEATURES}.customer_windows"
ITEM_WINDOWS = f"{FEATURES}.item_windows"
PLACE_WINDOWS = f"{FEATURES}.place_windows"
BASKET_ASSOCIATIONS = f"{FEATURES}.basket_associations"
LIFECYCLE_FLOWS = f"{FEATURES}.lifecycle_flows"


def built_days(con: duckdb.DuckDBPyConnection) -> list[date]:
    """The days the feature layer has built, in order."""
    if not table_exists(con, FEATURE_DAYS):
        return []
    return [r[0] for r in con.execute(f"select activity_date from {FEATURE_DAYS} order by 1").fetchall()]


def require_built(con: duckdb.DuckDBPyConnection, day: date) -> None:
    """Fail loudly when the feature layer has not built ``day``: a silent gap would read as "no activity"."""
    built = (
        table_exists(con, FEATURE_DAYS)
        and con.execute(f"select count(*) from {FEATURE_DAYS} where activity_date = ?", [day]).fetchall()[0][
            0
        ]
    )
    if not built:
        raise ValueError(
            f"the feature layer has not built {day}: materialise the dbt feature models (group features) for it first"
        )


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run BLAS/OpenMP code (scikit-learn, scipy) on one thread.

    The models here are small (thousands of rows, tens of columns): thread start-up and spin-waiting cost more
    than they save, especially on a shared machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
