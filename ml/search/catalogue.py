"""What search reads each day, built from the warehouse.

- :func:`encode_new_products`: every product of the catalogue as of D gets its text embedding in
  :data:`TEXT_EMBEDDINGS`, kept by the content hash of its text and the encoder's weights, so only new or changed
  products are encoded (a day re-run, or a product whose text did not change, encodes nothing).
- :func:`searchable_catalogue`: the catalogue as of D with its price band (``features.item_profiles``), stock
  (``marts.fct_inventory_daily``, summed over warehouses) and embedding: the ``search_catalogue`` export.
- :func:`shopper_facts`: per customer, the profile facts search personalises with (category affinity and usual
  price band from ``features.user_profiles``, the products viewed in the last :data:`RECENT_VIEW_DAYS` days from
  ``marts.fct_events``): the ``search_profiles`` export.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd

from ml.profiles.items import ITEM_PROFILES
from ml.profiles.segments import CUSTOMER_SEGMENTS
from ml.profiles.users import USER_PROFILES
from ml.search.encoder import DIMENSIONS, TextEncoder
from ml.search.ranker import Shopper, product_text
from ml.summary import summary
from ml.warehouse import ensure_schema, markdown_table, table_exists, transaction

TEXT_EMBEDDINGS = "search.text_embeddings"
CATALOGUE_EXPORT = "search_catalogue"
PROFILES_EXPORT = "search_profiles"
RECENT_VIEW_DAYS = 7
MAX_RECENT_VIEWS = 20
ENCODE_BATCH = 512


def content_hash(catalogue: pd.DataFrame) -> pd.Series:
    """sha256 (first 32 hex digits) of the text that is encoded: a product whose text changes gets a new hash."""
    return pd.Series(
        [hashlib.sha256(text.encode()).hexdigest()[:32] for text in product_text(catalogue)],
        index=catalogue.index,
    )


def catalogue_as_of(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Products listed by the end of ``day`` with text, price, price band, units on hand and ``in_stock``."""
    bands = (
        f"select sku, price_band from {ITEM_PROFILES} where as_of_date = $day"
        if table_exists(con, ITEM_PROFILES)
        else "select null::varchar as sku, null::varchar as price_band where false"
    )
    stock = (
        """select sku, sum(on_hand) as on_hand from marts.fct_inventory_daily
           where snapshot_date = (select max(snapshot_date) from marts.fct_inventory_daily where snapshot_date <= $day)
           group by sku"""
        if table_exists(con, "marts.fct_inventory_daily")
        else "select null::varchar as sku, null::bigint as on_hand where false"
    )
    frame = con.execute(
        f"""
        with bands as ({bands}), stock as ({stock})
        select p.sku, p.title, p.description, p.category, p.brand, p.price, b.price_band,
               cast(coalesce(s.on_hand, 0) as bigint) as on_hand
        from marts.dim_products as p
        left join bands as b on b.sku = p.sku
        left join stock as s on s.sku = p.sku
        where p.first_seen_ts is null or p.first_seen_ts < $next_day
        order by p.sku
        """,
        {"day": day, "next_day": day + timedelta(days=1)},
    ).df()
    frame["in_stock"] = frame["on_hand"] > 0
    frame["content_hash"] = content_hash(frame)
    return frame


def _ensure_table(con: duckdb.DuckDBPyConnection) -> None:
    ensure_schema(con, TEXT_EMBEDDINGS.split(".")[0])
    con.execute(
        f"""create table if not exists {TEXT_EMBEDDINGS} (
            content_hash varchar not null, weights_sha256 varchar not null, model varchar not null,
            embedding float[{DIMENSIONS}] not null, first_encoded_on date not null,
            primary key (content_hash, weights_sha256))"""
    )


def encode_new_products(
    con: duckdb.DuckDBPyConnection,
    day: date,
    encoder: TextEncoder,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Encode the products of ``day``'s catalogue whose text (by content hash) has no embedding from these weights
    yet, and store them; returns the day's summary (products, encoded, reused, the encoder's identity)."""
    started = time.perf_counter()
    _ensure_table(con)
    catalogue = catalogue_as_of(con, day)
    known = {
        row[0]
        for row in con.execute(
            f"select content_hash from {TEXT_EMBEDDINGS} where weights_sha256 = ?", [encoder.weights_sha256]
        ).fetchall()
    }
    todo = catalogue[~catalogue["content_hash"].isin(known)].drop_duplicates("content_hash")
    texts = product_text(todo)
    vectors = []
    for start in range(0, len(texts), ENCODE_BATCH):
        vectors.append(encoder.encode(texts[start : start + ENCODE_BATCH]))
        if progress is not None:
            progress(min(start + ENCODE_BATCH, len(texts)), len(texts))
    encode_seconds = time.perf_counter() - started
    if len(todo):
        rows = pd.DataFrame(
            {
                "content_hash": todo["content_hash"].to_numpy(),
                "weights_sha256": encoder.weights_sha256,
                "model": encoder.name,
                "embedding": list(np.concatenate(vectors)),
                "first_encoded_on": day,
            }
        )
        with transaction(con):
            con.register("_new_embeddings", rows)
            try:
                # a concurrent or repeated run may have stored some of them: never a duplicate key
                con.execute(
                    f"""insert into {TEXT_EMBEDDINGS}
                        select content_hash, weights_sha256, model, embedding::float[{DIMENSIONS}], first_encoded_on
                        from _new_embeddings n
                        where not exists (select 1 from {TEXT_EMBEDDINGS} t
                                          where t.content_hash = n.content_hash
                                            and t.weights_sha256 = n.weights_sha256)"""
                )
            finally:
                con.unregister("_new_embeddings")
    stored = con.execute(
        f"select count(*) from {TEXT_EMBEDDINGS} where weights_sha256 = ?", [encoder.weights_sha256]
    ).fetchall()[0][0]
    return summary(
        len(catalogue),
        {
            "products": len(catalogue),
            "encoded": len(todo),
            "reused": len(catalogue) - int(catalogue["content_hash"].isin(set(todo["content_hash"])).sum()),
            "stored_embeddings": int(stored),
            "encode_seconds": round(encode_seconds, 2),
            "products_per_second": round(len(todo) / encode_seconds, 1)
            if len(todo) and encode_seconds
            else None,
        },
        json={"encoder": encoder.describe()},
    )


def searchable_catalogue(con: duckdb.DuckDBPyConnection, day: date, weights_sha256: str) -> pd.DataFrame:
    """``day``'s catalogue with each product's embedding (as a list of floats) from the given weights; a product
    without one is an error: the embeddings step of the day has not run."""
    catalogue = catalogue_as_of(con, day)
    _ensure_table(con)
    con.register("_catalogue_hashes", catalogue[["sku", "content_hash"]])
    try:
        vectors = con.execute(
            f"""select c.sku, t.embedding from _catalogue_hashes c
                join {TEXT_EMBEDDINGS} t on t.content_hash = c.content_hash and t.weights_sha256 = ?""",
            [weights_sha256],
        ).df()
    finally:
        con.unregister("_catalogue_hashes")
    out = catalogue.merge(vectors, on="sku", how="left")
    missing = out["embedding"].isna()
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} products of {day} have no embedding from weights {weights_sha256[:12]} "
            f"(e.g. {out.loc[missing, 'sku'].head(3).tolist()}): materialise goods/item_embeddings for the day"
        )
    return out


def embedding_matrix(catalogue: pd.DataFrame) -> np.ndarray:
    if not len(catalogue):
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    return np.stack([np.asarray(v, dtype=np.float32) for v in catalogue["embedding"]])


def shopper_facts(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """``customer_id, category_affinity`` (JSON ``{category: share}``), ``preferred_price_band, recently_viewed``
    (up to :data:`MAX_RECENT_VIEWS` SKUs, newest first), ``segment_id`` (0: none) for every customer with a profile
    on ``day``."""
    if not table_exists(con, USER_PROFILES):
        return pd.DataFrame(
            columns=["customer_id", "category_affinity", "preferred_price_band", "recently_viewed"]
        )
    views = (
        f"""select customer_id, list(sku order by last_ts desc)[1:{MAX_RECENT_VIEWS}] as recently_viewed
            from (select customer_id, sku, max(event_ts) as last_ts from marts.fct_events
                  where event_type = 'view' and customer_id is not null
                    and event_date between $first and $day group by 1, 2)
            group by 1"""
        if table_exists(con, "marts.fct_events")
        else "select null::varchar as customer_id, null::varchar[] as recently_viewed where false"
    )
    has_segments = table_exists(con, CUSTOMER_SEGMENTS)
    segment = "coalesce(s.segment_id, 0)" if has_segments else "0"
    segment_join = (
        f"left join {CUSTOMER_SEGMENTS} as s on s.customer_id = p.customer_id and s.as_of_date = p.as_of_date"
        if has_segments
        else ""
    )
    frame = con.execute(
        f"""
        with views as ({views})
        select p.customer_id, p.category_affinity, p.preferred_price_band,
               coalesce(v.recently_viewed, []::varchar[]) as recently_viewed, {segment} as segment_id
        from {USER_PROFILES} as p
        left join views as v on v.customer_id = p.customer_id
        {segment_join}
        where p.as_of_date = $day
        order by p.customer_id
        """,
        {"day": day, "first": day - timedelta(days=RECENT_VIEW_DAYS - 1)},
    ).df()
    frame["category_affinity"] = [
        json.dumps({a["category"]: round(float(a["share"]), 4) for a in _entries(entries)})
        for entries in frame["category_affinity"]
    ]
    frame["recently_viewed"] = [[str(s) for s in _entries(v)] for v in frame["recently_viewed"]]
    return frame


def _entries(value) -> list:
    """A list cell as a list: a customer without a profile dimension has NULL (None or pandas' NA) there."""
    return list(value) if isinstance(value, list | tuple | np.ndarray) else []


def shopper_from_row(row: pd.Series | dict) -> Shopper:
    """A :class:`Shopper` from a row of the ``search_profiles`` export."""
    affinity = row["category_affinity"]
    band = row.get("preferred_price_band")
    return Shopper(
        str(row["customer_id"]),
        json.loads(affinity) if isinstance(affinity, str) and affinity else {},
        band if isinstance(band, str) else None,
        frozenset(str(s) for s in _entries(row["recently_viewed"])),
    )


def index_summary(catalogue: pd.DataFrame, profiles: pd.DataFrame, samples: pd.DataFrame | None) -> dict:
    """The day's search index for the UI: products, share buyable, customers with facts, sample searches."""
    markdown = {}
    if samples is not None and len(samples):
        markdown["sample_searches"] = markdown_table(samples, max_cell_chars=80)
    by_category = (
        catalogue.groupby("category")
        .agg(products=("sku", "size"), in_stock=("in_stock", "mean"))
        .reset_index()
    )
    markdown["products_by_category"] = markdown_table(by_category)
    return summary(
        len(catalogue),
        {
            "products": len(catalogue),
            "in_stock_share": round(float(catalogue["in_stock"].mean()), 4) if len(catalogue) else None,
            "customers_with_facts": len(profiles),
            "customers_with_recent_views": int((profiles["recently_viewed"].map(len) > 0).sum())
            if len(profiles)
            else 0,
        },
        markdown,
    )
