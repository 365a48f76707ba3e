"""Goods: one profile row per listed SKU and as-of date D (``features.item_profiles``).

dbt's ``features.item_windows`` holds the funnel, velocity, trend, price band, returns, stock and novelty of every
product listed on or before D (windows of 7/30/90 days ending on D; definitions in the column docs of
``dbt_project/models/features/_features.yml``). This module adds ``text_embedding``: a :data:`EMBEDDING_DIM`-
dimensional, L2-normalised vector of title + description from a TF-IDF (words and word pairs, sublinear tf)
followed by truncated SVD, both fitted on the catalogue as of D (no downloaded weights). The dot product of two
embeddings is their content (cosine) similarity, which recommenders use for "similar items" and for items without
interactions (cold start).
"""

from __future__ import annotations

import time
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from ml.profiles.feature_tables import FEATURES, ITEM_WINDOWS, require_built, single_threaded
from ml.summary import summary
from ml.warehouse import markdown_table, replace_partition, sql_date

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
    require_built(con, as_of)
    d = sql_date(as_of)
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
    select = f"""
        select w.*, e.text_embedding
        from {ITEM_WINDOWS} as w left join _item_embeddings as e on w.sku = e.sku
        where w.as_of_date = {d}
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
