"""People: one profile row per known customer and as-of date D (``features.user_profiles``).

The scalar columns come from dbt's ``features.customer_windows`` (RFM over 30/90/365 days, recency, tenure,
price sensitivity, R/F/M scores in 1..5 and the lifecycle stage; their definitions are the column docs of
``dbt_project/models/features/_features.yml``). This module adds what needs state or a model:

- Preference vectors from exponentially decayed interest weights (half-life :data:`HALF_LIFE_DAYS`; the weights of a
  view, an add-to-cart and a purchased line are dbt's ``interest_weights``): ``category_affinity`` (list of
  ``{category, share}``, all categories with weight, shares sum to 1), ``top_category``, ``top_brands`` (top
  :data:`TOP_BRANDS`), ``preferred_price_band``, ``preferred_channel`` (+ share; sessions and orders per channel),
  ``preferred_placement`` (+ share; views), ``hour_profile`` (``{hour, share}`` over the 8 strongest hours),
  ``peak_hour`` and the share of that activity at night (0-5 UTC), morning (6-11), afternoon (12-17), evening
  (18-23).
- ``churn_risk``: probability of no purchase in the next 30 days from a scikit-learn logistic regression
  (see :mod:`ml.profiles.churn`), trained on as-of dates <= D - 30 whose labels are known at D.

The preference vectors are a decayed state (``features.customer_pref_state``), a recurrence over days that a
set-based dbt model over a window of days cannot express: ``state(D) = state(P) * decay^(D-P) + prefs of days
(P, D]`` from the latest earlier state P (within :data:`STATE_LOOKBACK_DAYS`), over dbt's
``features.customer_day_pref``. When no such state exists (first run, or re-running an old day) the state is rebuilt
from ``customer_day_pref``. To keep the state a bounded number of rows per customer (otherwise it densifies with
every stray view and the daily cost grows with history), each day drops weights below :data:`PRUNE_WEIGHT`, keys
below :data:`PRUNE_SHARE` of the customer's total in that dimension and, in the brand and hour dimensions, keys
beyond the strongest :data:`STATE_KEYS_CAP`. Pruning happens on every step, so the two paths agree on every
customer's leading keys and their weights but may differ in the pruned tail. Only the last few states are kept.
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import duckdb
import pandas as pd

from ml.profiles.feature_tables import (
    CUSTOMER_DAY_PREF,
    CUSTOMER_WINDOWS,
    FEATURES,
    require_built,
    single_threaded,
)
from ml.sources.schema import LIFECYCLE_STAGES
from ml.summary import summary
from ml.warehouse import (
    markdown_table,
    replace_partition,
    sql_date,
    table_exists,
    transaction,
    write_partition,
)

HALF_LIFE_DAYS = 60.0
DECAY = 0.5 ** (1.0 / HALF_LIFE_DAYS)
PRUNE_WEIGHT = 0.01
PRUNE_SHARE = 0.02
"""Keys with less than this share of a customer's weight in a dimension are dropped from the state."""
STATE_LOOKBACK_DAYS = 7
STATES_KEPT = 3
MAX_STATE_AGE_DAYS = 400
TOP_BRANDS = 5
STATE_KEYS_CAP = {"brand": 10, "hour": 8}
"""Keys kept per customer in the open-ended or wide dimensions: brands (hundreds per catalogue) and hours (24:
stray visits at new hours would otherwise keep adding rows for weeks; the 8 strongest hours carry the profile)."""
"""Brands kept per customer in the decayed state (the profile shows the top :data:`TOP_BRANDS`)."""
USER_PROFILES = f"{FEATURES}.user_profiles"
PREF_STATE = f"{FEATURES}.customer_pref_state"

CHURN_FEATURES = (
    "tenure_days",
    "recency_days",
    "days_since_visit",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "spend_30d",
    "spend_90d",
    "spend_365d",
    "sessions_30d",
    "views_30d",
    "carts_30d",
    "discount_share_365d",
)


def update_pref_state(con: duckdb.DuckDBPyConnection, as_of: date, *, rebuild: bool = False) -> dict:
    """Write the decayed preference state for ``as_of`` (see the module docstring). Returns how it was built."""
    previous = None
    if not rebuild and table_exists(con, PREF_STATE):
        previous = con.execute(
            f"select max(as_of_date) from {PREF_STATE} where as_of_date < ? and as_of_date >= ?",
            [as_of, as_of - timedelta(days=STATE_LOOKBACK_DAYS)],
        ).fetchall()[0][0]
    d = sql_date(as_of)
    if previous is not None:
        gap = (as_of - previous).days
        body = f"""
            select customer_id, dimension, key, weight * {DECAY**gap!r} as w
            from {PREF_STATE} where as_of_date = {sql_date(previous)}
            union all
            select customer_id, dimension, key, weight * pow({DECAY!r}, datediff('day', activity_date, {d})) as w
            from {CUSTOMER_DAY_PREF}
            where activity_date > {sql_date(previous)} and activity_date <= {d}"""
    else:
        body = f"""
            select customer_id, dimension, key, weight * pow({DECAY!r}, datediff('day', activity_date, {d})) as w
            from {CUSTOMER_DAY_PREF}
            where activity_date <= {d} and activity_date > {sql_date(as_of - timedelta(days=MAX_STATE_AGE_DAYS))}"""
    # Keys below PRUNE_SHARE of the customer's total in that dimension are dropped, and brands and hours are capped
    # (STATE_KEYS_CAP): otherwise every stray view adds a row that lives for a year, and the state (and the cost
    # of each day) keeps growing with history.
    capped = ", ".join(f"'{dim}'" for dim in STATE_KEYS_CAP)
    cap_cases = " ".join(f"when '{dim}' then {n}" for dim, n in STATE_KEYS_CAP.items())
    # The sums run in a fixed decimal precision: doubles summed by parallel threads change their last digit with
    # the order of the rows, and a key on the pruning boundary would then come and go between two runs.
    sql = f"""
        with summed as (
            select customer_id, dimension, key, sum(cast(w as decimal(38, 12))) as exact_weight
            from ({body}) group by customer_id, dimension, key
            having sum(cast(w as decimal(38, 12))) >= {PRUNE_WEIGHT}
        )
        select {d} as as_of_date, customer_id, dimension, key, cast(exact_weight as double) as weight from summed
        qualify exact_weight >= {PRUNE_SHARE} * sum(exact_weight) over (partition by customer_id, dimension)
            and (dimension not in ({capped})
                 or row_number() over (partition by customer_id, dimension order by exact_weight desc, key)
                    <= case dimension {cap_cases} end)"""
    with transaction(con):
        rows = write_partition(con, PREF_STATE, "as_of_date", as_of, sql)
        # Keep a few recent states for the fast path (never the one just written); older days are rebuilt
        # on demand.
        con.execute(
            f"delete from {PREF_STATE} where as_of_date <> ? "
            f"and as_of_date < (select max(as_of_date) from {PREF_STATE}) - ?",
            [as_of, STATES_KEPT],
        )
    return {"state_rows": rows, "state_built_from": "previous_state" if previous else "rebuild"}


def preference_sql(as_of: date) -> str:
    """Per-customer preference columns from the decayed state of ``as_of``."""
    return f"""
        with s as (select * from {PREF_STATE} where as_of_date = {sql_date(as_of)}),
        sh as (
            select customer_id, dimension, key, weight,
                   weight / sum(weight) over (partition by customer_id, dimension) as share
            from s
        ),
        cat as (
            select customer_id,
                   list({{'category': key, 'share': round(share, 6)}} order by share desc, key) as category_affinity,
                   list(key order by share desc, key)[1] as top_category
            from sh where dimension = 'category' group by customer_id
        ),
        brand as (
            select customer_id,
                   list({{'brand': key, 'share': round(share, 6)}} order by share desc, key)[1:{TOP_BRANDS}]
                       as top_brands
            from sh where dimension = 'brand' group by customer_id
        ),
        simple as (
            select customer_id,
                   list(key order by share desc, key) filter (where dimension = 'price_band')[1]
                       as preferred_price_band,
                   list(key order by share desc, key) filter (where dimension = 'channel')[1] as preferred_channel,
                   max(share) filter (where dimension = 'channel') as preferred_channel_share,
                   list(key order by share desc, key) filter (where dimension = 'placement')[1]
                       as preferred_placement,
                   max(share) filter (where dimension = 'placement') as preferred_placement_share
            from sh where dimension in ('price_band', 'channel', 'placement') group by customer_id
        ),
        hours as (
            select customer_id,
                   list({{'hour': key::integer, 'share': round(share, 6)}} order by key::integer) as hour_profile,
                   list(key::integer order by share desc, key::integer)[1] as peak_hour,
                   coalesce(sum(share) filter (where key::integer < 6), 0) as night_share,
                   coalesce(sum(share) filter (where key::integer between 6 and 11), 0) as morning_share,
                   coalesce(sum(share) filter (where key::integer between 12 and 17), 0) as afternoon_share,
                   coalesce(sum(share) filter (where key::integer >= 18), 0) as evening_share
            from sh where dimension = 'hour' group by customer_id
        ),
        ids as (select distinct customer_id from s)
        select i.customer_id, cat.category_affinity, cat.top_category, brand.top_brands,
               simple.preferred_price_band, simple.preferred_channel, simple.preferred_channel_share,
               simple.preferred_placement, simple.preferred_placement_share,
               hours.hour_profile, hours.peak_hour, hours.night_share, hours.morning_share,
               hours.afternoon_share, hours.evening_share
        from ids as i
        left join cat on i.customer_id = cat.customer_id
        left join brand on i.customer_id = brand.customer_id
        left join simple on i.customer_id = simple.customer_id
        left join hours on i.customer_id = hours.customer_id
    """


def user_profiles(con: duckdb.DuckDBPyConnection, as_of: date, *, rebuild_state: bool = False) -> dict:
    """Build ``features.user_profiles`` for ``as_of`` (replacing that date) and return its summary.

    Needs the feature layer built for ``as_of`` (and, for complete windows and the churn model's snapshots of
    ``as_of - 30`` and ``as_of - 60``, the days before it).
    """
    from ml.profiles.churn import fit_and_score_churn

    t0 = time.perf_counter()
    require_built(con, as_of)
    state_info = update_pref_state(con, as_of, rebuild=rebuild_state)
    current = con.execute(f"select * from {CUSTOMER_WINDOWS} where as_of_date = ?", [as_of]).df()
    with single_threaded():
        churn_scores, churn_metrics = fit_and_score_churn(con, as_of, current)
    con.register("_churn_scores", churn_scores)
    try:
        select = f"""
            with prefs as ({preference_sql(as_of)})
            select w.*, p.* exclude (customer_id), c.churn_risk
            from {CUSTOMER_WINDOWS} as w
            left join prefs as p on w.customer_id = p.customer_id
            left join _churn_scores as c on w.customer_id = c.customer_id
            where w.as_of_date = {sql_date(as_of)}
        """
        rows = replace_partition(con, USER_PROFILES, "as_of_date", as_of, select)
    finally:
        con.unregister("_churn_scores")
    return summary(rows, _metrics(con, as_of, churn_metrics, state_info, t0), _markdown(con, as_of))


def _metrics(con: duckdb.DuckDBPyConnection, as_of: date, churn: dict, state_info: dict, t0: float) -> dict:
    row = con.execute(
        f"""select count(*), count(*) filter (where orders_30d > 0), count(*) filter (where orders_365d > 0),
                   avg(spend_365d) filter (where orders_365d > 0), avg(discount_share_365d),
                   avg(churn_risk), count(category_affinity)
            from {USER_PROFILES} where as_of_date = ?""",
        [as_of],
    ).fetchall()[0]
    stages = dict(
        con.execute(
            f"select lifecycle_stage, count(*) from {USER_PROFILES} where as_of_date = ? group by 1", [as_of]
        ).fetchall()
    )
    n = max(row[0], 1)
    metrics = {
        "customers": row[0],
        "buyers_30d": row[1],
        "buyers_365d": row[2],
        "mean_spend_365d_buyers": row[3],
        "mean_discount_share_365d": row[4],
        "mean_churn_risk": row[5],
        "customers_with_affinity": row[6],
        **{f"share_{s}": stages.get(s, 0) / n for s in LIFECYCLE_STAGES},
        **churn,
        "pref_state_rows": state_info["state_rows"],
        "pref_state_rebuilt": int(state_info["state_built_from"] == "rebuild"),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    return metrics


def _markdown(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, str]:
    stages = con.execute(
        f"""select lifecycle_stage, count(*) as customers,
                   round(100.0 * count(*) / sum(count(*)) over (), 1) as pct,
                   round(avg(spend_365d), 2) as mean_spend_365d, round(avg(churn_risk), 3) as mean_churn_risk
            from {USER_PROFILES} where as_of_date = ? group by 1 order by customers desc""",
        [as_of],
    ).df()
    rfm = con.execute(
        f"""select r_score, count(*) as customers, round(avg(recency_days), 1) as mean_recency_days,
                   round(avg(orders_365d), 2) as mean_orders_365d, round(avg(spend_365d), 2) as mean_spend_365d
            from {USER_PROFILES} where as_of_date = ? and r_score is not null group by 1 order by 1""",
        [as_of],
    ).df()
    top_cat = con.execute(
        f"""select coalesce(top_category, '(none)') as top_category, count(*) as customers
            from {USER_PROFILES} where as_of_date = ? group by 1 order by 2 desc limit 10""",
        [as_of],
    ).df()
    return {
        "lifecycle_stages": markdown_table(stages),
        "recency_scores": markdown_table(rfm),
        "top_categories": markdown_table(top_cat),
    }


def load_user_profiles(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    """The stored profiles of ``as_of`` as a DataFrame (empty when not built)."""
    if not table_exists(con, USER_PROFILES):
        return pd.DataFrame()
    return con.execute(
        f"select * from {USER_PROFILES} where as_of_date = ? order by customer_id", [as_of]
    ).df()
