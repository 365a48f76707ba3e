"""Customer segments: k-means on profile features of the customers who bought in the last 365 days.

Features (standardised to z-scores over the day's buyers; a feature without variance, e.g. discounts in a
source without discounts, is left out): ``log1p(spend_365d)`` (value), ``log1p(orders_365d)`` (frequency),
``log1p(recency_days)``, ``discount_share_365d``, ``relative_price_365d`` and ``log1p(sessions_30d)``.

Number of clusters: k in :data:`K_RANGE` with the highest silhouette score on a seeded sample of
:data:`SILHOUETTE_SAMPLE` customers (the k-means fits use a seeded sample of at most :data:`FIT_SAMPLE` buyers,
then every buyer is assigned to the nearest centroid). Yesterday's k is kept unless another k's silhouette is
higher by at least :data:`K_SWITCH_MARGIN` (hysteresis against day-to-day splits and merges) (k starts at 3 so that the segments are useful for marketing).

Description: read from the centroid, never fixed per segment id. Each feature whose centroid z-score is at least
:data:`DESCRIBE_Z` away from 0 contributes a word pair (e.g. spend high -> "high value", low -> "low value"),
strongest first, at most three; the segment's most common preferred channel is added when it is at least 1.25x
as common in the segment as among all buyers. Segments without a distinctive feature are "typical buyers".

Stable ids and movement: today's clusters are matched to yesterday's segments by the overlap of their members
(Hungarian assignment on the contingency table), so a segment keeps its id from day to day; the summary reports
the share of customers present on both days whose segment changed, and the largest flows.

Days with fewer than :data:`MIN_BUYERS` buyers get no segments (the summary says so) instead of failing.

Tables: ``features.customer_segments`` (as_of_date, customer_id, segment_id, segment) and
``features.segment_summary`` (one row per segment: size, share, feature means, centroid z-scores).
"""

from __future__ import annotations

import time
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ml.profiles.feature_tables import FEATURES, single_threaded
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists, transaction, write_partition

K_RANGE = range(3, 9)
MIN_BUYERS = 50
SILHOUETTE_SAMPLE = 2000
FIT_SAMPLE = 10_000
K_SWITCH_MARGIN = 0.02
DESCRIBE_Z = 0.5
RANDOM_STATE = 0
CUSTOMER_SEGMENTS = f"{FEATURES}.customer_segments"
SEGMENT_SUMMARY = f"{FEATURES}.segment_summary"

# feature name: (profile column, transform, word when high, word when low)
SEGMENT_FEATURES: dict[str, tuple[str, str, str, str]] = {
    "value": ("spend_365d", "log1p", "high value", "low value"),
    "frequency": ("orders_365d", "log1p", "frequent", "occasional"),
    "recency": ("recency_days", "log1p", "lapsing", "recent"),
    "discount": ("discount_share_365d", "identity", "discount driven", "full price"),
    "price": ("relative_price_365d", "identity", "premium", "budget"),
    "engagement": ("sessions_30d", "log1p", "engaged", "rarely browsing"),
}


def _feature_matrix(profiles: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Transformed features, their z-scores, and the names of the features kept (non-zero variance)."""
    raw = pd.DataFrame(index=profiles.index)
    for name, (column, transform, _, _) in SEGMENT_FEATURES.items():
        values = pd.to_numeric(profiles[column], errors="coerce").astype(float)
        values = values.fillna(values.median() if values.notna().any() else 0.0)
        raw[name] = np.log1p(values.clip(lower=0)) if transform == "log1p" else values
    std = raw.std(ddof=0)
    kept = [c for c in raw.columns if std[c] > 1e-9]
    z = (raw[kept] - raw[kept].mean()) / std[kept]
    return z, kept


def describe_centroid(z_centroid: pd.Series, channel_lift: tuple[str, float] | None) -> str:
    """Readable description from a centroid's z-scores (and the segment's over-represented channel)."""
    words = []
    for name in z_centroid.abs().sort_values(ascending=False).index:
        value = z_centroid[name]
        if abs(value) < DESCRIBE_Z or len(words) == 3:
            break
        _, _, high, low = SEGMENT_FEATURES[name]
        words.append(high if value > 0 else low)
    if channel_lift is not None and channel_lift[1] >= 1.25:
        words.append(channel_lift[0])
    return ", ".join(words) if words else "typical buyers"


def _choose_k(z: np.ndarray, previous_k: int | None = None) -> tuple[int, dict[int, float], np.ndarray]:
    """Fit k-means for each k on a seeded sample of at most :data:`FIT_SAMPLE` customers (so the daily cost
    does not grow with the customer base), pick k by silhouette on a sub-sample, label everyone."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(RANDOM_STATE)
    fit_rows = np.sort(rng.choice(len(z), size=min(FIT_SAMPLE, len(z)), replace=False))
    sample = z[fit_rows]
    scores: dict[int, float] = {}
    models = {}
    for k in K_RANGE:
        if k >= len(sample):
            break
        model = KMeans(n_clusters=k, n_init=1, random_state=RANDOM_STATE).fit(sample)
        if len(np.unique(model.labels_)) < 2:
            continue
        scores[k] = float(
            silhouette_score(
                sample,
                model.labels_,
                sample_size=min(SILHOUETTE_SAMPLE, len(sample)),
                random_state=RANDOM_STATE,
            )
        )
        models[k] = model
    best = max(scores, key=lambda k: (scores[k], -k))
    # Hysteresis: keep yesterday's k unless another k is clearly better, so segments do not split and merge
    # from one day to the next on silhouette noise.
    if previous_k in scores and scores[best] - scores[previous_k] < K_SWITCH_MARGIN:
        best = previous_k
    return best, scores, models[best].predict(z)


def _previous_assignment(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    if not table_exists(con, CUSTOMER_SEGMENTS):
        return pd.DataFrame(columns=["customer_id", "segment_id", "segment"])
    return con.execute(
        f"""select customer_id, segment_id, segment from {CUSTOMER_SEGMENTS}
            where as_of_date = (select max(as_of_date) from {CUSTOMER_SEGMENTS}
                                where as_of_date < ? and as_of_date >= ?)""",
        [as_of, as_of - timedelta(days=7)],
    ).df()


def _stable_ids(customers: pd.Series, labels: np.ndarray, previous: pd.DataFrame) -> np.ndarray:
    """Map cluster labels to segment ids: yesterday's id for the cluster sharing most members with it."""
    from scipy.optimize import linear_sum_assignment

    clusters = np.unique(labels)
    sizes = {c: int((labels == c).sum()) for c in clusters}
    mapping: dict[int, int] = {}
    if len(previous):
        prev_ids = previous.set_index("customer_id")["segment_id"].reindex(customers.to_numpy()).to_numpy()
        old_ids = np.unique(previous["segment_id"].to_numpy())
        overlap = np.array([[np.sum((labels == c) & (prev_ids == o)) for o in old_ids] for c in clusters])
        rows, cols = linear_sum_assignment(-overlap)
        for r, c in zip(rows, cols, strict=True):
            if overlap[r, c] > 0:
                mapping[int(clusters[r])] = int(old_ids[c])
        next_id = int(old_ids.max()) + 1
    else:
        next_id = 1
    for c in sorted(clusters, key=lambda c: -sizes[c]):
        if int(c) not in mapping:
            mapping[int(c)] = next_id
            next_id += 1
    return np.array([mapping[int(c)] for c in labels])


def customer_segments(con: duckdb.DuckDBPyConnection, as_of: date) -> dict:
    """Cluster the buyers of ``as_of`` (needs ``features.user_profiles`` for that date); returns the summary."""
    t0 = time.perf_counter()
    profiles = con.execute(
        f"""select customer_id, spend_365d, orders_365d, recency_days, discount_share_365d,
                   relative_price_365d, sessions_30d, preferred_channel
            from {FEATURES}.user_profiles where as_of_date = ? and orders_365d > 0 order by customer_id""",
        [as_of],
    ).df()
    if len(profiles) < MIN_BUYERS:
        # Too few buyers to cluster (a store's first days): the day gets no segments rather than a failure.
        with transaction(con):
            for table in (CUSTOMER_SEGMENTS, SEGMENT_SUMMARY):
                if table_exists(con, table):
                    con.execute(f"delete from {table} where as_of_date = ?", [as_of])
        metrics = {"buyers_segmented": 0, "k": None, "silhouette": None, "moved_share_vs_previous_day": None}
        return summary(0, metrics, {"segments": f"_only {len(profiles)} buyers: too few to segment_"})
    z, kept = _feature_matrix(profiles)
    previous = _previous_assignment(con, as_of)
    previous_k = previous["segment_id"].nunique() if len(previous) else None
    with single_threaded():
        k, silhouettes, labels = _choose_k(z.to_numpy(), previous_k)
    seg_ids = _stable_ids(profiles["customer_id"], labels, previous)
    profiles["segment_id"] = seg_ids

    channel_share_all = profiles["preferred_channel"].value_counts(normalize=True)
    rows = []
    for seg_id, members in profiles.groupby("segment_id", sort=True):
        centroid = z.loc[members.index].mean()
        channel_lift = None
        if members["preferred_channel"].notna().any():
            top = members["preferred_channel"].value_counts(normalize=True)
            channel_lift = (str(top.index[0]), float(top.iloc[0] / channel_share_all[top.index[0]]))
        rows.append(
            {
                "segment_id": int(seg_id),
                "segment": describe_centroid(centroid, channel_lift),
                "customers": len(members),
                "share": len(members) / len(profiles),
                "mean_spend_365d": float(members["spend_365d"].mean()),
                "mean_orders_365d": float(members["orders_365d"].mean()),
                "mean_recency_days": float(members["recency_days"].mean()),
                "mean_discount_share": float(members["discount_share_365d"].mean()),
                "mean_relative_price": float(members["relative_price_365d"].mean()),
                "top_channel": channel_lift[0] if channel_lift else None,
                **{f"z_{name}": float(centroid.get(name, np.nan)) for name in SEGMENT_FEATURES},
            }
        )
    seg_summary = pd.DataFrame(rows)
    seg_summary["top_channel"] = seg_summary["top_channel"].astype("string")  # typed even when all null
    # Two centroids can read alike; a suffix keeps the labels distinct.
    dupes = seg_summary.groupby("segment").cumcount()
    seg_summary["segment"] = np.where(
        dupes > 0, seg_summary["segment"] + " #" + (dupes + 1).astype(str), seg_summary["segment"]
    )
    seg_summary.insert(0, "as_of_date", as_of)
    names = seg_summary.set_index("segment_id")["segment"]
    assignment = pd.DataFrame(
        {
            "as_of_date": as_of,
            "customer_id": profiles["customer_id"],
            "segment_id": profiles["segment_id"].astype("int64"),
            "segment": profiles["segment_id"].map(names),
        }
    )
    con.register("_segments", assignment)
    con.register("_segment_summary", seg_summary)
    try:
        with transaction(con):
            n = write_partition(con, CUSTOMER_SEGMENTS, "as_of_date", as_of, "select * from _segments")
            write_partition(con, SEGMENT_SUMMARY, "as_of_date", as_of, "select * from _segment_summary")
    finally:
        con.unregister("_segments")
        con.unregister("_segment_summary")

    moved_share, flows = None, pd.DataFrame()
    if len(previous):
        both = assignment.merge(previous, on="customer_id", suffixes=("", "_prev"))
        if len(both):
            # Name segments with their id: two ids can carry the same description on different days.
            both["segment"] = both["segment_id"].astype(str) + ": " + both["segment"]
            both["segment_prev"] = both["segment_id_prev"].astype(str) + ": " + both["segment_prev"]
            moved = both["segment_id"] != both["segment_id_prev"]
            moved_share = float(moved.mean())
            flows = (
                both[moved]
                .groupby(["segment_prev", "segment"])
                .size()
                .rename("customers")
                .reset_index()
                .rename(columns={"segment_prev": "from_segment", "segment": "to_segment"})
                .sort_values(["customers", "from_segment"], ascending=[False, True])
            )
    metrics = {
        "buyers_segmented": n,
        "k": k,
        "silhouette": silhouettes[k],
        "features_used": len(kept),
        "moved_share_vs_previous_day": moved_share,
        "largest_segment_share": float(seg_summary["share"].max()),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    shown = seg_summary[
        [
            "segment_id",
            "segment",
            "customers",
            "share",
            "mean_spend_365d",
            "mean_orders_365d",
            "mean_recency_days",
        ]
    ]
    sil = pd.DataFrame({"k": list(silhouettes), "silhouette": list(silhouettes.values())})
    return summary(
        n,
        metrics,
        {
            "segments": markdown_table(shown),
            "silhouette_by_k": markdown_table(sil),
            "movement": markdown_table(flows) if len(previous) else "_(no previous day)_",
        },
    )
