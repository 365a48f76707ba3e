"""People, goods and place: point-in-time profiles as daily tables in schema ``features``.

The feature layer is dbt's (``dbt_project/models/features``, :mod:`ml.profiles.feature_tables`): daily slices
per customer, SKU, place and basket pair, and the windows over them. The builders here add what needs Python;
each is a plain function ``f(con, as_of) -> summary`` (:mod:`ml.summary`) on a DuckDB connection that reads rows
dated on or before ``as_of`` only and replaces the rows of ``as_of`` in its output table in one transaction:

- :func:`user_profiles(con, as_of, rebuild_state=False) <ml.profiles.users.user_profiles>` ->
  ``features.user_profiles`` (dbt's customer windows + decayed preferences + churn risk with AUC) and
  ``features.customer_pref_state``;
- :func:`item_profiles(con, as_of) <ml.profiles.items.item_profiles>` -> ``features.item_profiles`` (dbt's item
  windows + ``text_embedding FLOAT[32]``); :func:`content_neighbours(con, as_of, sku, k)
  <ml.profiles.items.content_neighbours>` for similar items;
- :func:`place_profiles(con, as_of) <ml.profiles.places.place_profiles>` -> ``features.place_profiles`` (dbt's
  place windows, empirical-Bayes smoothed CTR/CVR/AOV);
- :func:`customer_segments(con, as_of) <ml.profiles.segments.customer_segments>` -> ``features.customer_segments``
  and ``features.segment_summary`` (needs ``user_profiles`` of ``as_of``);
- :func:`basket_summary(con, as_of) <ml.profiles.baskets.basket_summary>`: what ops see of dbt's
  ``features.basket_associations``;
- :func:`build_profiles(con, as_of) <ml.profiles.pipeline.build_profiles>` runs the builders in order.

Heavy libraries (scikit-learn, scipy) are imported inside the functions that use them.
"""

from ml.profiles.baskets import basket_summary
from ml.profiles.items import content_neighbours, item_profiles
from ml.profiles.pipeline import build_profiles
from ml.profiles.places import place_profiles
from ml.profiles.segments import customer_segments
from ml.profiles.users import user_profiles

__all__ = [
    "basket_summary",
    "build_profiles",
    "content_neighbours",
    "customer_segments",
    "item_profiles",
    "place_profiles",
    "user_profiles",
]
