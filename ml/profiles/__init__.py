"""People, goods and place: point-in-time profiles as daily tables in schema ``features``.

Every builder is a plain function ``f(con, as_of) -> dict`` on a DuckDB connection. It reads the dbt marts
(``marts.*``) and the daily aggregates (``features.*_day``) dated on or before ``as_of`` only, replaces the rows
of ``as_of`` in its output table in one transaction (idempotent per date), and returns a summary dict that a
Dagster asset attaches as metadata::

    {"row_count": int,
     "metrics": {name: number or None},     # plot over partitions
     "markdown": {name: markdown table}}    # distributions for the UI

Public API (call in this order for a date; each later step needs the earlier ones of the same date):

- :func:`update_daily_aggregates(con, day) <ml.profiles.daily.update_daily_aggregates>` -> ``features.customer_day``,
  ``customer_day_pref``, ``sku_day``, ``place_day``, ``basket_pair_day``, ``basket_day``, ``aggregate_days``
  (returns ``{"rows": {...}, "seconds": s}``). Every later builder fails when the day is not aggregated.
- :func:`user_profiles(con, as_of, rebuild_state=False) <ml.profiles.users.user_profiles>` ->
  ``features.user_profiles`` (RFM, lifecycle, affinities, price sensitivity, channel/placement/hour profile,
  churn risk with AUC) and ``features.customer_pref_state``.
- :func:`item_profiles(con, as_of) <ml.profiles.items.item_profiles>` -> ``features.item_profiles``
  (funnel, velocity, trend, price band, returns, days of cover, novelty, ``text_embedding FLOAT[32]``);
  :func:`content_neighbours(con, as_of, sku, k) <ml.profiles.items.content_neighbours>` for similar items.
- :func:`place_profiles(con, as_of) <ml.profiles.places.place_profiles>` -> ``features.place_profiles``
  (channel x placement x region x hour, empirical-Bayes smoothed CTR/CVR/AOV over 28 days).
- :func:`basket_associations(con, as_of) <ml.profiles.baskets.basket_associations>` ->
  ``features.basket_associations`` (support, confidence, lift over 90 days).
- :func:`customer_segments(con, as_of) <ml.profiles.segments.customer_segments>` -> ``features.customer_segments``
  and ``features.segment_summary`` (needs ``user_profiles`` of ``as_of``).
- :func:`build_profiles(con, as_of) <ml.profiles.pipeline.build_profiles>` runs all of the above.

For tests and benchmarks, :mod:`ml.profiles.source_marts` fills mart-shaped tables straight from a source.
Heavy libraries (scikit-learn, scipy) are imported inside the functions that use them.
"""

from ml.profiles.baskets import basket_associations
from ml.profiles.daily import update_daily_aggregates
from ml.profiles.items import content_neighbours, item_profiles
from ml.profiles.pipeline import build_profiles
from ml.profiles.places import place_profiles
from ml.profiles.segments import customer_segments
from ml.profiles.users import user_profiles

__all__ = [
    "basket_associations",
    "build_profiles",
    "content_neighbours",
    "customer_segments",
    "item_profiles",
    "place_profiles",
    "update_daily_aggregates",
    "user_profiles",
]
