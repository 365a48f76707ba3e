"""The shop's interaction log as the platform's recommenders read it.

Schema: ``customer_id`` (str), ``sku`` (str), ``event_ts`` (tz-aware UTC), ``event_type`` in {view, cart,
purchase}; an optional ``region`` column gives each customer's region (the latest one seen is used) for the
new-user fallback. :func:`read_interactions` builds it from the marts: views and carts from the clickstream,
purchases from the order lines (the real data has no clickstream, only orders).

On a large store the log holds tens of millions of rows, so its id columns are pandas categoricals with sorted
categories (:func:`ml.warehouse.sorted_categories`) from the read to the sequences: every stage copies small
integer codes, never a Python string per row, and sorting by the codes orders by the ids.

The daily steps do not bring the log itself into pandas: :func:`read_training_log` (training) and
:func:`read_served_history` (scoring: the lists, the evaluation) compute in DuckDB what the models keep of it,
each customer's last collapsed steps, the purchases and the last regions; tests hold them to what
:func:`clean_events` and :func:`collapse_repeats` make of :func:`read_interactions`' rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any, NamedTuple

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
    return fetch_frame(
        con,
        "SELECT customer_id, sku, order_ts AS event_ts, 'purchase' AS event_type, region FROM marts.fct_order_items "
        f"WHERE order_date BETWEEN $first AND $last AND is_sale AND customer_id IS NOT NULL {_only(customers)}"
        "ORDER BY customer_id, order_ts, order_id, line_no",
        _window(first, last, customers),
        categorical=ID_COLUMNS,
    )


def read_interactions(
    con: duckdb.DuckDBPyConnection, first: date, last: date, customers: Sequence[str] | None = None
) -> pd.DataFrame:
    """Views and carts from the clickstream plus purchases from the order lines, dated in ``[first, last]``
    (a purchase event of the clickstream is the same purchase as its order line: the line is kept); only
    ``customers``' when given (a step that scores a few customers reads their rows, not the whole window's)."""
    events = fetch_frame(
        con,
        "SELECT customer_id, sku, event_ts, event_type, region FROM marts.fct_events WHERE event_date BETWEEN "
        f"$first AND $last AND customer_id IS NOT NULL AND event_type <> 'purchase' {_only(customers)}"
        "ORDER BY customer_id, event_ts, event_id",
        _window(first, last, customers),
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


RECENT_DAYS = 30
"""Days back from the window's last day that a history read looks at first: a customer with more than
``max_history`` steps in them keeps only steps from them, so only the other customers' rows are read over the
whole window (a busy shop's 90-day log holds thousands of rows for each regular customer)."""


class ServedHistory(NamedTuple):
    """What scoring reads of some customers' :func:`read_interactions` rows (:func:`read_served_history`)."""

    steps: pd.DataFrame
    """``customer_id, sku, event_ts``: :func:`collapse_repeats` of :func:`clean_events`, in order."""
    purchases: pd.DataFrame
    """``customer_id, sku``: each item a customer bought, once (never recommended to them again)."""
    regions: pd.Series
    """customer -> the last region seen (:func:`last_regions`)."""


def read_served_history(
    con: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    customers: Sequence[str] | None,
    max_history: int = MAX_HISTORY,
    recent_days: int = RECENT_DAYS,
) -> ServedHistory:
    """What scoring reads of ``customers``' (everyone's when None) :func:`read_interactions` rows dated in
    ``[first, last]``, computed in the warehouse instead of from every row (:class:`ServedHistory`): each
    customer's last ``max_history`` steps, the items they bought, their last region.

    The collapse needs only each row's predecessor in the clean log's order (time, funnel stage, SKU; rows equal
    in all of them are one step). A customer with more than ``max_history`` steps in the last ``recent_days`` days
    has their last steps there: those rows are the end of their log, and only the first of them could collapse
    into an older row, which the cap drops anyway; so only the other customers' rows are read over the whole
    window. Their last region is in those days too when they have a row with one there."""
    params, only = _window_params(con, first, last, customers, recent_days), _only(customers)
    purchases = fetch_frame(
        con, f"SELECT DISTINCT customer_id, sku {_SALE_LINES} {only}", _used(params, _SALE_LINES + only)
    )
    return ServedHistory(_steps(con, only, params, max_history), purchases, _regions(con, only, params))


class TrainingLog(NamedTuple):
    """What the candidate recommenders learn from in a window of the interaction log (:func:`read_training_log`,
    or :meth:`from_frame` of the log's rows)."""

    steps: pd.DataFrame
    """``customer_id, sku, event_ts``: every customer's last ``max_history`` collapsed steps, in order."""
    purchases: pd.DataFrame
    """``customer_id, sku, event_ts``: every purchase row, by customer, each in the clean log's order."""
    regions: pd.Series
    """customer -> the last region seen."""
    skus: np.ndarray
    """The SKUs with a row in the window (strings)."""
    events: int
    customers: int
    start: pd.Timestamp | None
    """The first row's time (UTC); None for an empty window."""

    @classmethod
    def from_frame(cls, events: pd.DataFrame, before: pd.Timestamp | None = None) -> TrainingLog:
        """The log of ``events`` (rows of :func:`read_interactions`' schema) before ``before``."""
        return cls.from_clean(clean_events(events, before=before))

    @classmethod
    def from_clean(cls, df: pd.DataFrame) -> TrainingLog:
        """The log of rows already through :func:`clean_events` (what scoring also keeps of a history)."""
        steps = collapse_repeats(df)
        purchases = df.loc[df["event_type"] == "purchase", ["customer_id", "sku", "event_ts"]]
        return cls(
            steps=steps[["customer_id", "sku", "event_ts"]],
            # by customer, each in the clean log's order (what their sequences keep)
            purchases=purchases.iloc[np.argsort(_codes(purchases["customer_id"]), kind="stable")],
            regions=last_regions(df),
            skus=np.asarray(df["sku"].unique(), dtype=object).astype(str),
            events=len(df),
            customers=int(df["customer_id"].nunique()),
            start=df["event_ts"].min() if len(df) else None,
        )


def read_training_log(
    con: duckdb.DuckDBPyConnection, first: date, last: date, recent_days: int = RECENT_DAYS
) -> TrainingLog:
    """:meth:`TrainingLog.from_frame` of :func:`read_interactions` over ``[first, last]``, computed in the
    warehouse: the steps and regions as :func:`read_served_history` reads them for every customer, the
    purchase rows and the window's counts, without bringing the window's rows (millions on a busy shop) into
    pandas."""
    params = _window_params(con, first, last, None, recent_days)
    order = "ORDER BY customer_id, order_ts, sku, order_id, line_no"
    purchases = fetch_frame(
        con,
        f"SELECT customer_id, sku, order_ts AS event_ts {_SALE_LINES} {order}",
        _used(params, _SALE_LINES),
        categorical=("customer_id", "sku"),
    )
    purchases["event_ts"] = pd.to_datetime(purchases["event_ts"], utc=True)
    log = _log_sql("$first", "")
    events, customers, start, skus = con.execute(
        f"SELECT count(*), count(DISTINCT customer_id), min(event_ts), list(DISTINCT sku ORDER BY sku) FROM ({log})",
        _used(params, log),
    ).fetchall()[0]
    return TrainingLog(
        steps=_steps(con, "", params, MAX_HISTORY),
        purchases=purchases,
        regions=_regions(con, "", params),
        skus=np.asarray(skus or [], dtype=object).astype(str),
        events=int(events),
        customers=int(customers),
        start=None if start is None else pd.Timestamp(start, tz="UTC"),
    )


_FUNNEL = "CASE event_type " + " ".join(f"WHEN '{t}' THEN {i}" for i, t in enumerate(EVENT_TYPES)) + " END"
_SALE_LINES = (
    "FROM marts.fct_order_items WHERE order_date BETWEEN $first AND $last AND is_sale AND customer_id IS NOT NULL "
    "AND sku IS NOT NULL AND order_ts IS NOT NULL"
)
_COLLAPSE = (
    "QUALIFY lag(sku) OVER (PARTITION BY customer_id ORDER BY event_ts, funnel, sku) IS DISTINCT FROM sku"
)
# rows equal in time, stage and SKU come in read order (events by id, order lines by order and line), which is
# the order clean_events keeps for them: the last region seen is taken in that order too
_LAST_REGION = "arg_max(region, struct_pack(event_ts, funnel, sku, source, tie, line)) AS region"


def _log_sql(since: str, only: str) -> str:
    """The clean log's rows of both sources dated from ``since`` (a parameter) to ``$last``, with the keys of
    its order: time, funnel stage, SKU, then the read order (source, id, line)."""
    return (
        f"SELECT customer_id, sku, event_ts, {_FUNNEL} AS funnel, region, 0 AS source, event_id AS tie, 0 AS line "
        f"FROM marts.fct_events WHERE event_date BETWEEN {since} AND $last AND customer_id IS NOT NULL "
        "AND sku IS NOT NULL AND event_ts IS NOT NULL AND event_type <> 'purchase' "
        f"AND event_type IN ({_quoted(EVENT_TYPES)}) {only}"
        f"UNION ALL SELECT customer_id, sku, order_ts, {EVENT_TYPES.index('purchase')}, region, 1, order_id, "
        f"line_no {_SALE_LINES.replace('$first', since)} {only}"
    )


def _steps(con: duckdb.DuckDBPyConnection, only: str, params: dict, max_history: int) -> pd.DataFrame:
    """Each customer's last ``max_history`` collapsed steps, in order (``customer_id, sku, event_ts``)."""
    sql = (
        _steps_sql(only, params["recent"] > params["first"]) + " ORDER BY customer_id, event_ts, funnel, sku"
    )
    steps = fetch_frame(
        con, sql, _used({**params, "max_history": max_history}, sql), categorical=("customer_id", "sku")
    )[["customer_id", "sku", "event_ts"]]
    steps["event_ts"] = pd.to_datetime(steps["event_ts"], utc=True)
    return steps


def _steps_sql(only: str, adaptive: bool) -> str:
    """Each customer's last ``$max_history`` collapsed steps (``customer_id, sku, event_ts, funnel``); with
    ``adaptive``, the customers busy in the days from ``$recent`` from those days alone."""
    columns = "customer_id, sku, event_ts, funnel"
    if adaptive:
        steps = (
            f"WITH recent AS (SELECT {columns} FROM ({_log_sql('$recent', only)}) {_COLLAPSE}), "
            "busy AS (SELECT customer_id FROM recent GROUP BY customer_id HAVING count(*) > $max_history), "
            "steps AS (SELECT * FROM recent WHERE customer_id IN (SELECT customer_id FROM busy) "
            f"UNION ALL SELECT {columns} FROM ({_log_sql('$first', only)}) "
            f"WHERE customer_id NOT IN (SELECT customer_id FROM busy) {_COLLAPSE}) "
        )
    else:
        steps = f"WITH steps AS (SELECT {columns} FROM ({_log_sql('$first', only)}) {_COLLAPSE}) "
    return (
        f"{steps}SELECT {columns} FROM steps "
        "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY event_ts, funnel, sku) "
        "> count(*) OVER (PARTITION BY customer_id) - $max_history"
    )


def _regions(con: duckdb.DuckDBPyConnection, only: str, params: dict) -> pd.Series:
    """Each customer's last region: from the days from ``$recent`` where they have a row with one, else from
    the whole window."""
    last = "SELECT customer_id, {region} FROM ({log}) WHERE region IS NOT NULL {others}GROUP BY customer_id"
    sql = last.format(region=_LAST_REGION, log=_log_sql("$recent", only), others="")
    if params["recent"] > params["first"]:
        others = "AND customer_id NOT IN (SELECT customer_id FROM recent) "
        whole = last.format(region=_LAST_REGION, log=_log_sql("$first", only), others=others)
        sql = f"WITH recent AS ({sql}) SELECT * FROM recent UNION ALL {whole}"
    regions = con.execute(sql, _used(params, sql)).df()
    return pd.Series(regions["region"].to_numpy(), index=regions["customer_id"].astype(str))


def _window_params(
    con: duckdb.DuckDBPyConnection,
    first: date,
    last: date,
    customers: Sequence[str] | None,
    recent_days: int,
) -> dict:
    """The reads' parameters; ``recent`` is ``first`` (one pass over the window) when the log has no row
    before the recent days (a shop's first weeks), where a second pass would read the same rows again."""
    recent = max(first, last - timedelta(days=recent_days - 1))
    if recent > first:
        older = con.execute(
            "SELECT EXISTS (SELECT 1 FROM marts.fct_events WHERE event_date >= ? AND event_date < ?) "
            "OR EXISTS (SELECT 1 FROM marts.fct_order_items WHERE order_date >= ? AND order_date < ?)",
            [first, recent, first, recent],
        ).fetchall()[0][0]
        recent = recent if older else first
    return {**_window(first, last, customers), "recent": recent}


def _window(first: date, last: date, customers: Sequence[str] | None) -> dict:
    """The named parameters of a read of ``[first, last]`` (of ``customers``' rows when given, see :func:`_only`)."""
    params = {"first": first, "last": last}
    if customers is not None:
        params["customers"] = [str(c) for c in customers]
    return params


def _only(customers: Sequence[str] | None) -> str:
    """The SQL condition that keeps the rows of ``$customers`` (nothing when None)."""
    return "" if customers is None else "AND customer_id IN (SELECT unnest($customers::VARCHAR[])) "


def _used(params: dict, sql: str) -> dict:
    """The named parameters ``sql`` uses (DuckDB refuses unused ones)."""
    return {name: value for name, value in params.items() if f"${name}" in sql}


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
