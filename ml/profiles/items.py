"""Goods: one profile row per listed SKU and as-of date D (``features.item_profiles``).

All windows end on D inclusive and are sums over ``features.sku_day`` (one row per SKU-day), so the cost is set
by the window length, not by the length of history.

- Funnel over 7 and 30 days: ``views``, ``carts``, ``purchases`` (orders containing the SKU), ``units``,
  ``revenue``; rates ``view_to_cart_30d = carts / views``, ``cart_to_purchase_30d = purchases / carts``,
  ``view_to_purchase_30d = purchases / views`` (null when the denominator is 0, e.g. without a clickstream).
- Sales velocity: units per day over the last 7 and 30 days (over fewer days for SKUs listed more recently);
  ``trend = velocity_7d / velocity_30d`` (> 1: selling faster this week than over the month).
- ``price_band``: tercile of list price within the category (low / mid / high).
- ``return_cancel_rate_90d = (units returned + units in cancelled orders) / (units sold + units cancelled)``.
- ``on_hand`` (end of D, all warehouses) and ``days_of_cover = on_hand / velocity_30d`` (null without sales).
- ``novelty_days``: days since the SKU was first listed.
- ``text_embedding``: a :data:`EMBEDDING_DIM`-dimensional, L2-normalised vector of title + description from a
  TF-IDF (words and word pairs, sublinear tf) followed by truncated SVD, both fitted on the catalogue as of D
  (no downloaded weights). The dot product of two embeddings is their content (cosine) similarity, which
  recommenders use for "similar items" and for items without interactions (cold start).
"""

from __future__ import annotations

import time
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml.profiles._db import FEATURES, lit, markdown_table, replace_partition, shift, single_threaded, summary
from ml.profiles.daily import products_as_of_sql, require_aggregates

EMBEDDING_DIM = 32
ITEM_PROFILES = f"{FEATURES}.item_profiles"


def text_embeddings(skus: list[str], texts: list[str], dim: int = EMBEDDING_DIM) -> np.ndarray:
    """TF-IDF + truncated SVD embeddings (rows L2-normalised; zero rows for empty texts)."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    if not skus:
        return np.zeros((0, dim), dtype=np.float32)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000)
    try:
        tfidf = vectorizer.fit_transform(texts)
    except ValueError:  # empty vocabulary (no text at all)
        return np.zeros((len(skus), dim), dtype=np.float32)
    n_components = min(dim, tfidf.shape[1] - 1, tfidf.shape[0] - 1)
    out = np.zeros((len(skus), dim), dtype=np.float32)
    if n_components >= 1:
        svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=5, random_state=0)
        out[:, :n_components] = normalize(svd.fit_transform(tfidf)).astype(np.float32)
    return out


def _nearest_neighbour_same_category(
    embeddings: np.ndarray, categories: pd.Series, sample: int = 1000
) -> float:
    """Share of sampled items whose most similar other item has the same category (a sanity check that the
    embedding carries content; None-able categories are skipped)."""
    known = categories.notna().to_numpy() & (np.abs(embeddings).sum(axis=1) > 0)
    idx = np.flatnonzero(known)
    if len(idx) < 10:
        return float("nan")
    rng = np.random.default_rng(0)
    probe = rng.choice(idx, size=min(sample, len(idx)), replace=False)
    sims = embeddings[probe] @ embeddings[idx].T
    sims[np.arange(len(probe)), np.searchsorted(idx, probe)] = -np.inf  # not itself
    best = idx[np.argmax(sims, axis=1)]
    cats = categories.to_numpy()
    return float(np.mean(cats[best] == cats[probe]))


def item_profiles(con: duckdb.DuckDBPyConnection, as_of: date) -> dict:
    """Build ``features.item_profiles`` for ``as_of`` (replacing that date) and return its summary."""
    t0 = time.perf_counter()
    require_aggregates(con, as_of)
    d = lit(as_of)
    catalogue = con.execute(
        f"select sku, coalesce(title, '') || ' ' || coalesce(description, '') as text, category "
        f"from marts.dim_products where first_seen_date <= {d} order by sku"
    ).df()
    with single_threaded():
        emb = text_embeddings(catalogue["sku"].tolist(), catalogue["text"].tolist())
    emb_table = pa.table(
        {
            "sku": pa.array(catalogue["sku"].tolist(), type=pa.string()),
            "text_embedding": pa.array(list(emb), type=pa.list_(pa.float32())),
        }
    )
    con.register("_item_embeddings", emb_table)

    def window(days: int) -> str:
        return f"activity_date > {lit(shift(as_of, -days))}"

    select = f"""
        with p as ({products_as_of_sql(as_of)}),
        w as (
            select sku,
                   sum(n_views) filter (where {window(7)}) as views_7d,
                   sum(n_views) filter (where {window(30)}) as views_30d,
                   sum(n_carts) filter (where {window(30)}) as carts_30d,
                   sum(n_orders) filter (where {window(7)}) as purchases_7d,
                   sum(n_orders) filter (where {window(30)}) as purchases_30d,
                   sum(units_sold) filter (where {window(7)}) as units_7d,
                   sum(units_sold) filter (where {window(30)}) as units_30d,
                   sum(revenue) filter (where {window(30)}) as revenue_30d,
                   sum(units_sold) as units_90d, sum(units_returned) as returned_90d,
                   sum(units_cancelled) as cancelled_90d,
                   max(on_hand) filter (where activity_date = {d}) as on_hand,
                   max(stockout_locations) filter (where activity_date = {d}) as stockout_locations
            from {FEATURES}.sku_day
            where activity_date <= {d} and activity_date > {lit(shift(as_of, -90))}
            group by sku
        ),
        base as (
            select p.sku, p.category, p.brand, p.price, p.price_band, p.first_seen_date,
                   datediff('day', p.first_seen_date, {d}) as novelty_days,
                   {
        ", ".join(
            f"coalesce(w.{c}, 0)::bigint as {c}"
            for c in (
                "views_7d",
                "views_30d",
                "carts_30d",
                "purchases_7d",
                "purchases_30d",
                "units_7d",
                "units_30d",
                "units_90d",
                "returned_90d",
                "cancelled_90d",
            )
        )
    },
                   coalesce(w.revenue_30d, 0)::double as revenue_30d, w.on_hand, w.stockout_locations
            from p left join w on p.sku = w.sku
        ),
        rates as (
            select *,
                   case when views_30d > 0 then carts_30d / views_30d end as view_to_cart_30d,
                   case when carts_30d > 0 then purchases_30d / carts_30d end as cart_to_purchase_30d,
                   case when views_30d > 0 then purchases_30d / views_30d end as view_to_purchase_30d,
                   units_7d / least(7, novelty_days + 1) as velocity_7d,
                   units_30d / least(30, novelty_days + 1) as velocity_30d,
                   case when units_90d + cancelled_90d > 0
                        then (returned_90d + cancelled_90d) / (units_90d + cancelled_90d) end
                       as return_cancel_rate_90d
            from base
        )
        select {d} as as_of_date, r.*,
               case when velocity_30d > 0 then velocity_7d / velocity_30d end as trend,
               case when velocity_30d > 0 then on_hand / velocity_30d end as days_of_cover,
               e.text_embedding
        from rates as r left join _item_embeddings as e on r.sku = e.sku
    """
    try:
        rows = replace_partition(con, ITEM_PROFILES, "as_of_date", as_of, select)
    finally:
        con.unregister("_item_embeddings")
    row = con.execute(
        f"""select count(*) filter (where units_30d > 0), avg(view_to_cart_30d), avg(view_to_purchase_30d),
                   avg(return_cancel_rate_90d), median(days_of_cover), count(*) filter (where on_hand = 0),
                   count(*) filter (where novelty_days < 30)
            from {ITEM_PROFILES} where as_of_date = ?""",
        [as_of],
    ).fetchall()[0]
    metrics = {
        "items": rows,
        "items_sold_30d": row[0],
        "mean_view_to_cart_30d": row[1],
        "mean_view_to_purchase_30d": row[2],
        "mean_return_cancel_rate_90d": row[3],
        "median_days_of_cover": row[4],
        "items_out_of_stock": row[5],
        "items_new_30d": row[6],
        "embedding_nn_same_category": _nearest_neighbour_same_category(emb, catalogue["category"]),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    bands = con.execute(
        f"""select coalesce(price_band, '(no price)') as price_band, count(*) as items,
                   sum(units_30d) as units_30d, round(sum(revenue_30d), 2) as revenue_30d,
                   round(avg(view_to_cart_30d), 4) as mean_view_to_cart
            from {ITEM_PROFILES} where as_of_date = ? group by 1 order by 1""",
        [as_of],
    ).df()
    top = con.execute(
        f"""select sku, category, units_30d, round(velocity_7d, 2) as velocity_7d, round(trend, 2) as trend,
                   round(days_of_cover, 1) as days_of_cover
            from {ITEM_PROFILES} where as_of_date = ? order by units_30d desc, sku limit 10""",
        [as_of],
    ).df()
    return summary(
        rows, metrics, {"price_bands": markdown_table(bands), "top_sellers_30d": markdown_table(top)}
    )


def content_neighbours(con: duckdb.DuckDBPyConnection, as_of: date, sku: str, k: int = 10) -> pd.DataFrame:
    """The ``k`` SKUs whose text embedding is most similar to ``sku``'s (cosine), from the profiles of ``as_of``."""
    return con.execute(
        f"""with me as (select text_embedding from {ITEM_PROFILES} where as_of_date = ? and sku = ?)
            select p.sku, p.category, list_dot_product(p.text_embedding, me.text_embedding) as similarity
            from {ITEM_PROFILES} as p, me
            where p.as_of_date = ? and p.sku <> ?
            order by similarity desc, p.sku limit ?""",
        [as_of, sku, as_of, sku, k],
    ).df()
