"""The shop's interaction log as the platform's recommenders read it.

Schema: ``customer_id`` (str), ``sku`` (str), ``event_ts`` (tz-aware UTC), ``event_type`` in {view, cart,
purchase}; an optional ``region`` column gives each customer's region (the latest one seen is used) for the
new-user fallback. :func:`read_interactions` builds it from the marts: views and carts from the clickstream,
purchases from the order lines (the real data has no clickstream, only orders).

On a large store the log holds tens of millions of rows, so its id columns are pandas categoricals with sorted
categories (:func:`ml.warehouse.sorted_categories`) from the read to the sequences: every stage copies small
integer codes, never a Python string per row, and sorting by the codes orders by the ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from ml.recommend.data import Sequences
from ml.sources.schema import EVENT_TYPES
from ml.warehouse import fetch_frame, sorted_categories

DAY_SECONDS = 86_400.0
ID_COLUMNS = ("customer_id", "sku", "event_type", "region")
"""The columns read and kept as categoricals with sorted categories."""


def read_purchases(
    con: duckdb.DuckDBPyConnection, first: date, last: date, customers: Sequence[str] | None = None
) -> pd.DataFrame:
    """Sale lines of known customers ordered in ``[first, last]``, as purchase interactions (only ``customers``'
    when given).

    Ordered by customer, time and line: models that read order (transition, SASRec) see events of the same second
    in one order on every run, whatever order DuckDB's threads return the rows in.
    """
    only, params = _only_customers(customers)
    return fetch_frame(
        con,
        "SELECT customer_id, sku, order_ts AS event_ts, 'purchase' AS event_type, region "
        f"FROM marts.fct_order_items WHERE order_date BETWEEN ? AND ? AND is_sale AND customer_id IS NOT NULL {only}"
        "ORDER BY customer_id, order_ts, order_id, line_no",
        [first, last, *params],
        categorical=ID_COLUMNS,
    )


def read_interactions(
    con: duckdb.DuckDBPyConnection, first: date, last: date, customers: Sequence[str] | None = None
) -> pd.DataFrame:
    """Views and carts from the clickstream plus purchases from the order lines, dated in ``[first, last]``
    (a purchase event of the clickstream is the same purchase as its order line: the line is kept); only
    ``customers``' when given (a step that scores a few customers reads their rows, not the whole window's)."""
    only, params = _only_customers(customers)
    events = fetch_frame(
        con,
        "SELECT customer_id, sku, event_ts, event_type, region FROM marts.fct_events "
        f"WHERE event_date BETWEEN ? AND ? AND customer_id IS NOT NULL AND event_type <> 'purchase' {only}"
        "ORDER BY customer_id, event_ts, event_id",
        [first, last, *params],
        categorical=ID_COLUMNS,
    )
    frame = concat_logs([events, read_purchases(con, first, last, customers)])
    frame["event_ts"] = pd.to_datetime(frame["event_ts"], utc=True)
    return frame


def active_customers(
    con: duckdb.DuckDBPyConnection, first: date, last: date, since: pd.Timestamp
) -> list[str]:
    """The customers of :func:`read_interactions`' rows dated in ``[first, last]`` with a row at or after ``since``
    (a UTC instant), sorted: the daily lists serve them, so a read of their histories alone leaves out the
    window's rows of customers who have not come back lately."""
    cutoff = pd.Timestamp(since).tz_convert("UTC").tz_localize(None).to_pydatetime()  # the marts hold UTC
    rows = con.execute(
        "SELECT customer_id FROM marts.fct_events WHERE event_date BETWEEN ? AND ? AND customer_id IS NOT NULL "
        "AND event_type <> 'purchase' AND event_ts >= ? "
        "UNION SELECT customer_id FROM marts.fct_order_items WHERE order_date BETWEEN ? AND ? AND is_sale "
        "AND customer_id IS NOT NULL AND order_ts >= ?",
        [first, last, cutoff, first, last, cutoff],
    ).fetchall()
    return sorted(str(customer) for (customer,) in rows)


def _only_customers(customers: Sequence[str] | None) -> tuple[str, list]:
    """The SQL condition (and its parameter) that keeps the rows of ``customers``; nothing when None."""
    if customers is None:
        return "", []
    return "AND customer_id IN (SELECT unnest(?::VARCHAR[])) ", [[str(c) for c in customers]]


def concat_logs(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Rows of ``frames`` one after the other; their categorical id columns stay categorical (with the union of
    the categories, sorted) where ``pd.concat`` would turn different categories into a column of strings."""
    columns = {}
    for name in frames[0].columns:
        parts = [frame[name] for frame in frames]
        if all(isinstance(part.dtype, pd.CategoricalDtype) for part in parts):
            # an empty or all-NULL column has categories of another dtype (no values to infer it from)
            parts = [part.cat.set_categories(part.cat.categories.astype(object)) for part in parts]
            columns[name] = pd.Series(union_categoricals(parts, sort_categories=True), name=name)
        else:
            columns[name] = pd.concat(parts, ignore_index=True)
    return pd.DataFrame(columns)


def read_items(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The catalogue: ``sku, title, description, category, brand``."""
    return con.execute("SELECT sku, title, description, category, brand FROM marts.dim_products").df()


def day_end(as_of: Any) -> pd.Timestamp:
    """First instant after day ``as_of`` (UTC): the exclusive upper bound of the training data."""
    ts = pd.Timestamp(as_of)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize() + pd.Timedelta(days=1)


def clean_events(events: pd.DataFrame, before: pd.Timestamp | None = None) -> pd.DataFrame:
    """The log the models read: rows with a customer, an item and a time, of a known event type, before
    ``before``; ids as categoricals with sorted categories; in one total order."""
    cols = ["customer_id", "sku", "event_ts", "event_type"] + (["region"] if "region" in events else [])
    df = events[cols].dropna(subset=["customer_id", "sku", "event_ts"])
    df = df.assign(
        event_ts=pd.to_datetime(df["event_ts"], utc=True),
        **{name: _ids(df[name]) for name in ID_COLUMNS if name in df},
    )
    if "event_type" in df:
        df = df[df["event_type"].isin(EVENT_TYPES)]
    if before is not None:
        df = df[df["event_ts"] < before]
    # A total order, not the order the rows were read in: events at the same instant (a view, a cart and a
    # purchase logged together) would otherwise change the collapsed sequences, the history cap and the models
    # with the warehouse's scan order.
    funnel = (
        df["event_type"].map({t: i for i, t in enumerate(EVENT_TYPES)}).astype("int8").to_numpy()
        if "event_type" in df
        else np.zeros(len(df), np.int8)
    )
    # np.lexsort (stable, last key first) on integer keys: the ids' categories are sorted, so their codes order
    # like the ids; the same order as a stable multi-column sort_values, at a fraction of its cost on a long log
    order = np.lexsort(
        (_codes(df["sku"]), funnel, _codes(df["customer_id"]), pd.DatetimeIndex(df["event_ts"]).asi8)
    )
    return df.iloc[order]


def _ids(values: pd.Series) -> pd.Series:
    """Ids as strings in a categorical with sorted categories (ids read as numbers become their text)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.categories.inferred_type in (
        "string",
        "empty",
    ):
        return sorted_categories(values)
    return sorted_categories(values.astype(object).where(values.isna(), values.astype(str)))


MAX_HISTORY = 200
"""Most recent (collapsed) events kept per customer for the sequence and item-item models: bounds the cost on a
busy store (a medium-scale customer views hundreds of items a month) while keeping far more than SASRec's window."""


def collapse_repeats(df: pd.DataFrame, max_history: int | None = MAX_HISTORY) -> pd.DataFrame:
    """Drop consecutive events of a customer on the same item (view -> cart -> purchase is one step) and keep
    each customer's last ``max_history`` steps."""
    if df.empty:  # a day after a closed day (the real shop does not trade on Saturdays) has no history rows
        return df
    df = df.iloc[np.lexsort((pd.DatetimeIndex(df["event_ts"]).asi8, _codes(df["customer_id"])))]
    customer, sku = _codes(df["customer_id"]), _codes(df["sku"])
    df = df[np.concatenate([[True], (customer[1:] != customer[:-1]) | (sku[1:] != sku[:-1])])]
    if max_history is not None:
        from_end = df.groupby(_codes(df["customer_id"]), sort=False).cumcount(ascending=False).to_numpy()
        df = df[from_end < max_history]
    return df


def read_served_history(
    con: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    customers: Sequence[str],
    max_history: int = MAX_HISTORY,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """What scoring reads of ``customers``' :func:`read_interactions` rows, computed in the warehouse instead of
    from every row: ``(steps, purchases, regions)``.

    ``steps`` (``customer_id, sku, event_ts``): :func:`collapse_repeats` of :func:`clean_events`, each customer's
    last ``max_history`` steps in order (the collapse needs only each row's predecessor in the clean log's order,
    time, funnel stage, SKU; rows equal in all of them are one step); ``purchases``: the customers' purchase rows
    (never recommended again); ``regions``: each customer's last region (:func:`last_regions`). An active customer
    of a shop with a busy clickstream has thousands of rows in the window and keeps 200 steps."""
    only, params = _only_customers(customers)
    funnel = "CASE event_type " + " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(EVENT_TYPES)) + " END"
    # rows equal in time, stage and SKU come in read order (events by id, order lines by order and line), which
    # is the order clean_events keeps for them: the last region seen is taken in that order too
    sale_lines = (
        "FROM marts.fct_order_items WHERE order_date BETWEEN ? AND ? AND is_sale AND customer_id IS NOT NULL "
        f"AND sku IS NOT NULL AND order_ts IS NOT NULL {only}"
    )
    log = (
        f"SELECT customer_id, sku, event_ts, {funnel} AS funnel, region, 0 AS source, event_id AS tie, 0 AS line "
        "FROM marts.fct_events WHERE event_date BETWEEN ? AND ? AND customer_id IS NOT NULL AND sku IS NOT NULL "
        f"AND event_ts IS NOT NULL AND event_type <> 'purchase' AND event_type IN ({_quoted(EVENT_TYPES)}) {only}"
        f"UNION ALL SELECT customer_id, sku, order_ts, {EVENT_TYPES.index('purchase')}, region, 1, order_id, "
        f"line_no {sale_lines}"
    )
    window = [first, last, *params, first, last, *params]
    steps = fetch_frame(
        con,
        f"WITH log AS ({log}), collapsed AS (SELECT customer_id, sku, event_ts, funnel FROM log "
        "QUALIFY lag(sku) OVER (PARTITION BY customer_id ORDER BY event_ts, funnel, sku) IS DISTINCT FROM sku) "
        "SELECT customer_id, sku, event_ts FROM collapsed "
        "WINDOW steps AS (PARTITION BY customer_id ORDER BY event_ts, funnel, sku) "
        "QUALIFY row_number() OVER steps > count(*) OVER (PARTITION BY customer_id) - ? "
        "ORDER BY customer_id, event_ts, funnel, sku",
        [*window, max_history],
        categorical=("customer_id", "sku"),
    )
    steps["event_ts"] = pd.to_datetime(steps["event_ts"], utc=True)
    purchases = fetch_frame(con, f"SELECT DISTINCT customer_id, sku {sale_lines}", [first, last, *params])
    regions = con.execute(
        "SELECT customer_id, arg_max(region, struct_pack(event_ts, funnel, sku, source, tie, line)) AS region "
        f"FROM ({log}) WHERE region IS NOT NULL GROUP BY customer_id",
        window,
    ).df()
    return steps, purchases, pd.Series(regions["region"].to_numpy(), index=regions["customer_id"].astype(str))


def _quoted(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _codes(values: pd.Series) -> np.ndarray:
    """Integer codes of a categorical column (equal codes: equal values), the values themselves otherwise."""
    return values.cat.codes.to_numpy() if isinstance(values.dtype, pd.CategoricalDtype) else values.to_numpy()


def to_sequences(df: pd.DataFrame, vocab: np.ndarray, customers: Sequence[str] | None = None) -> Sequences:
    """Time-ordered item sequences in the given vocabulary (unknown items dropped); rows follow ``customers``."""
    sku, customer = _ids(df["sku"]), _ids(df["customer_id"])
    # each distinct SKU is looked up in the vocabulary once, then every row by its code
    item_of_code = pd.Index(vocab).get_indexer(sku.cat.categories)
    codes = sku.cat.codes.to_numpy()
    items = np.where(codes >= 0, item_of_code[codes], -1)
    known = (items >= 0) & (customer.cat.codes.to_numpy() >= 0)
    seqs = Sequences.from_codes(
        customer.cat.codes.to_numpy()[known],
        customer.cat.categories.to_numpy(dtype=object),
        items[known],
        vocab,
        _seconds(df["event_ts"])[known],
    )
    if customers is None:
        return seqs
    rows = pd.Index(seqs.user_ids).get_indexer(np.asarray(customers, dtype=object))
    lists = [seqs[r] if r >= 0 else np.zeros(0, np.int64) for r in rows]
    return Sequences.from_lists(lists, len(vocab), np.asarray(customers, dtype=object))


def _seconds(ts: pd.Series) -> np.ndarray:
    return (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def last_regions(df: pd.DataFrame) -> pd.Series:
    if "region" not in df:
        return pd.Series(dtype=object)
    last = df.dropna(subset=["region"]).drop_duplicates("customer_id", keep="last")
    return pd.Series(last["region"].to_numpy(), index=last["customer_id"].to_numpy())


def item_labels(items: pd.DataFrame | None, vocab: np.ndarray) -> tuple[pd.Series, pd.Series]:
    if items is None or not len(items):
        return pd.Series(vocab, index=vocab), pd.Series(index=vocab, dtype=object)
    meta = items.assign(sku=items["sku"].astype(str)).drop_duplicates("sku", keep="last").set_index("sku")
    meta = meta.reindex(vocab)
    titles = (
        meta["title"].fillna(pd.Series(vocab, index=vocab)) if "title" in meta else pd.Series(vocab, vocab)
    )
    cats = meta["category"] if "category" in meta else pd.Series(index=vocab, dtype=object)
    return titles.astype(str), cats
