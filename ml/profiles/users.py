"""People: one profile row per known customer and as-of date D (``features.user_profiles``).

Everything is computed from the daily aggregates of :mod:`ml.profiles.daily` dated <= D, never from later rows.

Columns, and how they are defined:

- RFM over 30/90/365-day windows (``orders_30d``, ``spend_90d``, ...; a window of n days ends on D inclusive),
  ``recency_days`` (days since the last purchase, looked up within the 365-day window; null when none) and scores
  ``r_score``/``f_score``/``m_score`` in 1..5 among customers who bought in the last 365 days:
  ``ceil(5 * cume_dist)`` of recency (more recent is higher), of ``orders_365d`` and of ``spend_365d``. Ties get
  the same score, so the scores are deterministic. ``rfm_cell`` is the three digits, e.g. ``"545"``.
- ``lifecycle_stage``, the first rule that matches:
    1. ``new``      first seen (sign-up or first activity) within the last 30 days;
    2. ``loyal``    bought in the last 30 days and placed >= 3 orders in the last 90 days;
    3. ``active``   bought in the last 30 days, or visited in the last 7 days;
    4. ``at_risk``  last purchase 31..90 days ago, or never bought but visited in the last 30 days;
    5. ``churned``  everything else (no purchase in 90 days and no visit in 30 days).
- Preference vectors from exponentially decayed interest weights (half-life :data:`HALF_LIFE_DAYS`; a view
  counts 1, an add-to-cart 3, a purchased line 5): ``category_affinity`` (list of ``{category, share}``, all
  categories with weight, shares sum to 1), ``top_category``, ``top_brands`` (top :data:`TOP_BRANDS`),
  ``preferred_price_band``, ``preferred_channel`` (+ share; sessions and orders per channel),
  ``preferred_placement`` (+ share; views), ``hour_profile`` (``{hour, share}`` over the 8 strongest hours),
  ``peak_hour`` and the share of that activity at night (0-5 UTC), morning (6-11), afternoon (12-17), evening
  (18-23).
- Price sensitivity: ``discount_share_365d`` (share of units bought with a discount) and ``relative_price_365d``
  (units-weighted mean of unit price / category median list price; < 1 means cheaper than typical).
- ``churn_risk``: probability of no purchase in the next 30 days from a scikit-learn logistic regression
  (see :mod:`ml.profiles.churn`), trained on as-of dates <= D - 30 whose labels are known at D.

Incremental cost: the scalar windows are running sums: from the stored profile of the latest earlier date P
(within :data:`STATE_LOOKBACK_DAYS`), add the ``features.customer_day`` rows of (P, D] and subtract those that
left each window, so a day reads a few days of aggregates, not the window (integers and cents: exact). Without
such a profile (first run, re-running an old day, ``rebuild_state=True``) they are summed over the window. After
re-aggregating a past day (late data), rebuild from that day on. The preference vectors are a decayed state (``features.customer_pref_state``) updated from the
latest earlier state: ``state(D) = state(P) * decay^(D-P) + prefs of days (P, D]``. When no state of the last
:data:`STATE_LOOKBACK_DAYS` days exists (first run, or re-running an old day) the state is rebuilt from
``features.customer_day_pref``. To keep the state a bounded number of rows per customer (otherwise it densifies
with every stray view and the daily cost grows with history), each day drops weights below
:data:`PRUNE_WEIGHT`, keys below :data:`PRUNE_SHARE` of the customer's total in that dimension (e.g. a category
seen once among hundreds of views) and, in the brand and hour dimensions, keys beyond the strongest
:data:`STATE_KEYS_CAP`. Pruning happens on every step of the fast path, so the two paths agree on every
customer's leading keys and their weights but may differ in the pruned tail. Only the last few states are kept.
"""

from __future__ import annotations

import time
from datetime import date

import duckdb
import pandas as pd

from ml.profiles._db import (
    FEATURES,
    MARTS,
    lit,
    markdown_table,
    replace_partition,
    shift,
    single_threaded,
    summary,
    table_exists,
    transaction,
    write_partition,
)
from ml.profiles.daily import require_aggregates

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
LIFECYCLE_STAGES = ("new", "loyal", "active", "at_risk", "churned")
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


# Window sums kept per customer: (profile column, customer_day column, window in days, SQL type).
WINDOW_SUMS: tuple[tuple[str, str, int, str], ...] = (
    ("orders_30d", "n_orders", 30, "bigint"),
    ("orders_90d", "n_orders", 90, "bigint"),
    ("orders_365d", "n_orders", 365, "bigint"),
    ("spend_30d", "spend", 30, "decimal(18, 2)"),
    ("spend_90d", "spend", 90, "decimal(18, 2)"),
    ("spend_365d", "spend", 365, "decimal(18, 2)"),
    ("units_365d", "units", 365, "bigint"),
    ("sessions_30d", "n_sessions", 30, "bigint"),
    ("views_30d", "n_views", 30, "bigint"),
    ("carts_30d", "n_carts", 30, "bigint"),
    ("discounted_units_365d", "discounted_units", 365, "bigint"),
    ("rel_price_units_365d", "rel_price_units", 365, "double"),
    ("rel_price_known_units_365d", "rel_price_known_units", 365, "bigint"),
)
_DAY_COLUMNS = tuple(dict.fromkeys(col for _, col, _, _ in WINDOW_SUMS))


def _scalar_select(as_of: date, window_relation: str) -> str:
    """Final scalar columns from a relation with first_seen/last purchase/last visit dates and the window sums."""
    d = lit(as_of)
    sums = ", ".join(f"coalesce(w.{name}, 0)::{sql_type} as {name}" for name, _, _, sql_type in WINDOW_SUMS)
    return f"""
        select {d} as as_of_date, w.customer_id, w.first_seen_date,
               datediff('day', w.first_seen_date, {d}) as tenure_days,
               w.last_purchase_date, datediff('day', w.last_purchase_date, {d}) as recency_days,
               w.last_visit_date, datediff('day', w.last_visit_date, {d}) as days_since_visit,
               {sums},
               case when w.units_365d > 0 then w.discounted_units_365d / w.units_365d end as discount_share_365d,
               case when w.rel_price_known_units_365d > 0
                    then w.rel_price_units_365d / w.rel_price_known_units_365d end as relative_price_365d
        from ({window_relation}) as w
    """


def scalar_profiles_sql(as_of: date) -> str:
    """RFM windows, recency and tenure for every customer known on ``as_of``, summed over the window's
    ``customer_day`` rows (the rebuild path; cost grows with the window until it is full)."""
    d, year_ago = lit(as_of), lit(shift(as_of, -365))
    sums = ", ".join(
        f"sum({col}) filter (where activity_date > {lit(shift(as_of, -w))}) as {name}"
        for name, col, w, _ in WINDOW_SUMS
    )
    relation = f"""
        with seen as (
            select customer_id, min(first_seen_date) as first_seen_date from (
                select customer_id, first_seen_date from {MARTS}.dim_customers
                where first_seen_date <= {d} and customer_id is not null
                union all
                select customer_id, min(activity_date) from {FEATURES}.customer_day
                where activity_date <= {d} and activity_date > {year_ago} group by customer_id
            ) group by customer_id
        ),
        win as (
            select customer_id,
                   max(activity_date) filter (where n_orders > 0) as last_purchase_date,
                   max(activity_date) filter (where n_sessions > 0 or n_orders > 0) as last_visit_date,
                   {sums}
            from {FEATURES}.customer_day
            where activity_date <= {d} and activity_date > {year_ago}
            group by customer_id
        )
        select s.customer_id, s.first_seen_date, w.* exclude (customer_id)
        from seen as s left join win as w on s.customer_id = w.customer_id
    """
    return _scalar_select(as_of, relation)


def incremental_scalar_profiles_sql(as_of: date, previous: date) -> str:
    """The same columns as :func:`scalar_profiles_sql`, from the stored profiles of ``previous`` (< as_of):
    each window sum adds the days ``(previous, as_of]`` and subtracts the days that left the window. Reads
    ``as_of - previous`` days of ``customer_day`` per window instead of the whole window, so the cost does not
    grow with history. Sums of integers and of cents are exact, so both paths give identical numbers."""
    d, p = lit(as_of), lit(previous)
    day_sums = ", ".join(f"sum({col}) as {col}" for col in _DAY_COLUMNS)

    def days(lo: date, hi: date) -> str:
        return f"activity_date > {lit(lo)} and activity_date <= {lit(hi)}"

    dropped = "\n".join(
        f""", dropped_{w} as (
            select customer_id, {day_sums} from {FEATURES}.customer_day
            where {days(shift(previous, -w), shift(as_of, -w))} group by customer_id
        )"""
        for w in (30, 90, 365)
    )
    sums = ", ".join(
        f"coalesce(p.{name}, 0) + coalesce(a.{col}, 0) - coalesce(d{w}.{col}, 0) as {name}"
        for name, col, w, _ in WINDOW_SUMS
    )
    year_ago = lit(shift(as_of, -365))
    relation = f"""
        with prev as (select * from {USER_PROFILES} where as_of_date = {p}),
        added as (
            select customer_id, min(activity_date) as first_activity,
                   max(activity_date) filter (where n_orders > 0) as last_purchase_date,
                   max(activity_date) filter (where n_sessions > 0 or n_orders > 0) as last_visit_date,
                   {day_sums}
            from {FEATURES}.customer_day where {days(previous, as_of)} group by customer_id
        ),
        new_seen as (
            select customer_id, min(first_seen_date) as first_seen_date from {MARTS}.dim_customers
            where first_seen_date > {p} and first_seen_date <= {d} and customer_id is not null
            group by customer_id
        )
        {dropped},
        ids as (select customer_id from prev union select customer_id from added union select customer_id from new_seen)
        select i.customer_id,
               least(p.first_seen_date, n.first_seen_date, a.first_activity) as first_seen_date,
               coalesce(a.last_purchase_date,
                        case when p.last_purchase_date > {year_ago} then p.last_purchase_date end)
                   as last_purchase_date,
               coalesce(a.last_visit_date, case when p.last_visit_date > {year_ago} then p.last_visit_date end)
                   as last_visit_date,
               {sums}
        from ids as i
        left join prev as p on i.customer_id = p.customer_id
        left join added as a on i.customer_id = a.customer_id
        left join new_seen as n on i.customer_id = n.customer_id
        left join dropped_30 as d30 on i.customer_id = d30.customer_id
        left join dropped_90 as d90 on i.customer_id = d90.customer_id
        left join dropped_365 as d365 on i.customer_id = d365.customer_id
    """
    return _scalar_select(as_of, relation)


def previous_profile_date(con: duckdb.DuckDBPyConnection, as_of: date) -> date | None:
    """The latest stored profile date in ``[as_of - STATE_LOOKBACK_DAYS, as_of)``, if any."""
    if not table_exists(con, USER_PROFILES):
        return None
    return con.execute(
        f"select max(as_of_date) from {USER_PROFILES} where as_of_date < ? and as_of_date >= ?",
        [as_of, shift(as_of, -STATE_LOOKBACK_DAYS)],
    ).fetchall()[0][0]


def update_pref_state(con: duckdb.DuckDBPyConnection, as_of: date, *, rebuild: bool = False) -> dict:
    """Write the decayed preference state for ``as_of`` (see the module docstring). Returns how it was built."""
    previous = None
    if not rebuild and table_exists(con, PREF_STATE):
        previous = con.execute(
            f"select max(as_of_date) from {PREF_STATE} where as_of_date < ? and as_of_date >= ?",
            [as_of, shift(as_of, -STATE_LOOKBACK_DAYS)],
        ).fetchall()[0][0]
    d = lit(as_of)
    if previous is not None:
        gap = (as_of - previous).days
        body = f"""
            select customer_id, dimension, key, weight * {DECAY**gap!r} as w
            from {PREF_STATE} where as_of_date = {lit(previous)}
            union all
            select customer_id, dimension, key, weight * pow({DECAY!r}, datediff('day', activity_date, {d})) as w
            from {FEATURES}.customer_day_pref
            where activity_date > {lit(previous)} and activity_date <= {d}"""
    else:
        body = f"""
            select customer_id, dimension, key, weight * pow({DECAY!r}, datediff('day', activity_date, {d})) as w
            from {FEATURES}.customer_day_pref
            where activity_date <= {d} and activity_date > {lit(shift(as_of, -MAX_STATE_AGE_DAYS))}"""
    # Keys below PRUNE_SHARE of the customer's total in that dimension are dropped, and brands and hours are capped
    # (STATE_KEYS_CAP): otherwise every stray view adds a row that lives for a year, and the state (and the cost
    # of each day) keeps growing with history.
    capped = ", ".join(f"'{dim}'" for dim in STATE_KEYS_CAP)
    cap_cases = " ".join(f"when '{dim}' then {n}" for dim, n in STATE_KEYS_CAP.items())
    sql = f"""
        with summed as (
            select customer_id, dimension, key, sum(w) as weight
            from ({body}) group by customer_id, dimension, key having sum(w) >= {PRUNE_WEIGHT}
        )
        select {d} as as_of_date, customer_id, dimension, key, weight from summed
        qualify weight >= {PRUNE_SHARE} * sum(weight) over (partition by customer_id, dimension)
            and (dimension not in ({capped})
                 or row_number() over (partition by customer_id, dimension order by weight desc, key)
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
        with s as (select * from {PREF_STATE} where as_of_date = {lit(as_of)}),
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


_LIFECYCLE_SQL = """
    case when tenure_days < 30 then 'new'
         when recency_days <= 29 and orders_90d >= 3 then 'loyal'
         when recency_days <= 29 or days_since_visit <= 6 then 'active'
         when recency_days between 30 and 89 then 'at_risk'
         when last_purchase_date is null and days_since_visit <= 29 then 'at_risk'
         else 'churned' end
"""


def user_profiles(con: duckdb.DuckDBPyConnection, as_of: date, *, rebuild_state: bool = False) -> dict:
    """Build ``features.user_profiles`` for ``as_of`` (replacing that date) and return its summary.

    Needs :func:`ml.profiles.daily.update_daily_aggregates` for ``as_of`` (and, for complete windows, the days
    before it). The churn model reads the profiles of ``as_of - 30`` and ``as_of - 60`` when they are stored
    and otherwise recomputes their scalar columns from the aggregates.
    """
    from ml.profiles.churn import fit_and_score_churn

    t0 = time.perf_counter()
    require_aggregates(con, as_of)
    state_info = update_pref_state(con, as_of, rebuild=rebuild_state)
    previous = None if rebuild_state else previous_profile_date(con, as_of)
    scalars = incremental_scalar_profiles_sql(as_of, previous) if previous else scalar_profiles_sql(as_of)
    con.execute(f"create or replace temp table _scalars as {scalars}")
    state_info["scalars_built_from"] = "previous_profiles" if previous else "rebuild"
    current = con.execute("select * from _scalars").df()
    with single_threaded():
        churn_scores, churn_metrics = fit_and_score_churn(con, as_of, current)
    con.register("_churn_scores", churn_scores)
    try:
        select = f"""
            with prefs as ({preference_sql(as_of)}),
            scored as (
                select s.*,
                       case when s.orders_365d > 0 then ceil(5 * cume_dist() over (
                           partition by s.orders_365d > 0 order by s.recency_days desc)) end::integer as r_score,
                       case when s.orders_365d > 0 then ceil(5 * cume_dist() over (
                           partition by s.orders_365d > 0 order by s.orders_365d)) end::integer as f_score,
                       case when s.orders_365d > 0 then ceil(5 * cume_dist() over (
                           partition by s.orders_365d > 0 order by s.spend_365d)) end::integer as m_score
                from _scalars as s
            )
            select s.*, concat(s.r_score, s.f_score, s.m_score) as rfm_cell,
                   {_LIFECYCLE_SQL} as lifecycle_stage,
                   p.* exclude (customer_id), c.churn_risk
            from scored as s
            left join prefs as p on s.customer_id = p.customer_id
            left join _churn_scores as c on s.customer_id = c.customer_id
        """
        rows = replace_partition(con, USER_PROFILES, "as_of_date", as_of, select)
    finally:
        con.unregister("_churn_scores")
        con.execute("drop table if exists _scalars")
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
        "scalars_rebuilt": int(state_info["scalars_built_from"] == "rebuild"),
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
