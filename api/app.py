"""The read API for other shop systems: recommendations, forecasts and the replenishment plan over HTTP.

    make api                      # http://127.0.0.1:8000/docs
    python -m api.app --help

It serves the latest materialised outputs, read from the Parquet exports the daily assets write under
``$DATA_DIR/exports/<output>/date=YYYY-MM-DD/`` (one folder per as-of day). Reading the exports rather than the
DuckDB file means the API never holds a lock that a running pipeline needs, and a half-written day is never
visible: an export folder appears only when its day is complete (written to a temporary name, then renamed).

Each output's newest day is read once into memory and indexed by customer and SKU (:mod:`api.store`), so a
lookup does not scan the export.

Endpoints: ``GET /health``, ``GET /recommendations/{customer_id}``, ``GET /forecast/{sku}``,
``GET /replenishment``, ``GET /stockout-alerts``, ``GET /service-levels``, ``GET /allocation``,
``GET /transfer-orders``, ``GET /messages/{customer_id}``, ``GET /search?q=...&customer_id=...&k=...``,
``GET /category/{category}?customer_id=...&k=...``. Unknown
ids answer 404 with a message; bad parameters 422. Every endpoint but ``/health`` wants the token when ``AIGC_API_TOKEN`` is set; rate limits, size caps and the
access log are :mod:`api.security`'s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Query

from api.security import Guard, SecuritySettings, check_bind
from api.store import ExportCache, day_folders

OUTPUTS = (
    "recommendations",
    "demand_forecast",
    "replenishment_plan",
    "stockout_alerts",
    "service_levels",
    "messages",
    "allocation_plan",
    "transfer_orders",
    "search_catalogue",
    "search_profiles",
    "category_rankings",
)


def exports_root() -> Path:
    from ml import settings

    return Path(os.environ.get("AIGC_EXPORTS_DIR") or settings.exports_dir())


def latest_export(output: str, root: Path | None = None) -> tuple[str, Path] | None:
    """(as-of day, folder) of the newest complete export of ``output``, or None when there is none yet."""
    days = day_folders(root or exports_root(), output)
    return days[-1] if days else None


EXPORTS = ExportCache(exports_root)


def _snapshot(output: str, order: tuple[str, ...] = (), keys: tuple[str, ...] = (), every_day: bool = False):
    snap = (EXPORTS.every_day if every_day else EXPORTS.latest)(output, order, keys)
    if snap is None:
        raise HTTPException(503, f"no {output} has been materialised yet; run the daily pipeline first")
    return snap


def _filtered(snap, limit: int | None = None, **equal) -> pd.DataFrame:
    """The snapshot's rows whose columns equal the given values (None: no condition), in answer order."""
    frame = snap.frame
    mask = np.ones(len(frame), dtype=bool)
    for column, value in equal.items():
        if value is not None:
            mask &= (frame[column] == value).to_numpy()
    out = frame[mask]
    return out.head(limit) if limit is not None else out


def _records(frame) -> list[dict]:
    out = frame.copy()
    for col in out.columns:
        if str(out[col].dtype).startswith(("datetime", "date")):
            out[col] = out[col].astype(str)
        elif out[col].dtype == object:
            out[col] = out[col].map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
    return out.to_dict(orient="records")


app = FastAPI(
    title="aigc-commerce read API",
    description="The latest recommendations, demand forecasts, replenishment and allocation plans, read-only.",
    version="0.1.0",
)
app.add_middleware(Guard, settings=SecuritySettings.from_env())


@app.get("/health")
def health() -> dict:
    """Liveness and the newest as-of day of each output (public: no personal data, no server paths)."""
    latest = {}
    for output in OUTPUTS:
        found = latest_export(output)
        latest[output] = found[0] if found else None
    return {"status": "ok", "latest_as_of": latest}


@app.get("/recommendations/{customer_id}")
def recommendations(customer_id: str, k: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    snap = _snapshot("recommendations", ("customer_id", "rank"), ("customer_id",))
    frame = snap.rows("customer_id", customer_id).head(k)
    if frame.empty:
        raise HTTPException(404, f"no recommendations for customer {customer_id!r} as of {snap.day}")
    return {
        "customer_id": customer_id,
        "as_of": snap.day,
        "items": _records(frame.drop(columns=["customer_id"])),
    }


@app.get("/forecast/{sku}")
def forecast(sku: str, horizon: Annotated[int, Query(ge=1, le=28)] = 28) -> dict:
    snap = _snapshot("demand_forecast", ("sku", "warehouse_id", "horizon_day"), ("sku",))
    frame = snap.rows("sku", sku)
    frame = frame[frame["horizon_day"] <= horizon]
    if frame.empty:
        raise HTTPException(404, f"no forecast for SKU {sku!r} as of {snap.day}")
    return {"sku": sku, "as_of": snap.day, "days": _records(frame.drop(columns=["sku"]))}


@app.get("/replenishment")
def replenishment(
    warehouse_id: str | None = None,
    sku: str | None = None,
    needs_order: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict:
    snap = _snapshot("replenishment_plan", ("sku", "warehouse_id"))
    frame = _filtered(snap, None, warehouse_id=warehouse_id, sku=sku)
    if needs_order:
        frame = frame[frame["order_qty"] > 0]
    frame = frame.head(limit)
    if frame.empty and (warehouse_id or sku):
        raise HTTPException(
            404, f"no plan rows for warehouse_id={warehouse_id!r} sku={sku!r} as of {snap.day}"
        )
    return {"as_of": snap.day, "rows": _records(frame)}


@app.get("/stockout-alerts")
def stockout_alerts(limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> dict:
    snap = _snapshot("stockout_alerts", ("-revenue_at_risk",))
    return {"as_of": snap.day, "alerts": _records(snap.frame.head(limit))}


@app.get("/allocation")
def allocation(
    warehouse_id: str | None = None,
    region: str | None = None,
    sku: str | None = None,
    demand: Annotated[str, Query(pattern="^(open_orders|forecast|all)$")] = "open_orders",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict:
    """Which warehouse ships which units to which region (``supply/allocation_plan``): the open orders by
    default, the horizon's forecast with ``demand=forecast``."""
    snap = _snapshot("allocation_plan", ("-units", "sku"))
    frame = _filtered(
        snap,
        limit,
        warehouse_id=warehouse_id,
        region=region,
        sku=sku,
        demand=None if demand == "all" else demand,
    )
    return {"as_of": snap.day, "rows": _records(frame)}


@app.get("/transfer-orders")
def transfer_orders(limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict:
    """Stock to move between warehouses on the latest day (``supply/transfer_orders``), largest first."""
    snap = _snapshot("transfer_orders", ("-units", "sku"))
    return {"as_of": snap.day, "transfers": _records(snap.frame.head(limit))}


@app.get("/service-levels")
def service_levels() -> dict:
    """The service level per demand class that the latest replay found (``supply/service_levels``)."""
    snap = _snapshot("service_levels", ("demand_class",))
    return {"as_of": snap.day, "levels": _records(snap.frame)}


@app.get("/messages/{customer_id}")
def messages(customer_id: str) -> dict:
    """The customer's messages whose offer is still valid on the latest export day, newest first, each with the
    facts it was written from (its reason) and the rule that targeted it."""
    snap = _snapshot("messages", ("-date",), ("customer_id",), every_day=True)
    frame = snap.rows("customer_id", customer_id)
    frame = frame[pd.to_datetime(frame["offer_expires"]) >= pd.Timestamp(snap.day)]
    if frame.empty:
        raise HTTPException(
            404, f"no message with a valid offer for customer {customer_id!r} as of {snap.day}"
        )
    rows = _records(frame.drop(columns=["customer_id"]).rename(columns={"date": "as_of"}))
    for row in rows:
        row["facts"] = json.loads(row["facts"])
        row["featured_skus"] = list(row["featured_skus"])
    return {"customer_id": customer_id, "as_of": snap.day, "messages": rows}


_SEARCH_LOCK = threading.Lock()
_SEARCH: dict[str, object] = {}


def _product_search(snap):
    """The search over a catalogue snapshot, built once per snapshot (BM25 index, embeddings, the encoder)."""
    from ml.search.catalogue import embedding_matrix
    from ml.search.encoder import load_encoder
    from ml.search.ranker import ProductSearch

    with _SEARCH_LOCK:
        if _SEARCH.get("snapshot") is not snap:
            encoder = load_encoder()
            _SEARCH["engine"] = ProductSearch(snap.frame, embedding_matrix(snap.frame), encoder.encode)
            _SEARCH["snapshot"] = snap
        return _SEARCH["engine"]


def warm_search() -> None:
    """Build the search over the newest catalogue export in the background at start-up: loading the encoder takes
    seconds, which the first search request would otherwise wait for (it waits on the lock instead, less)."""
    snap = EXPORTS.latest("search_catalogue", ("sku",))
    if snap is not None:
        _product_search(snap)
        logging.getLogger("aigc.api").info("search ready over the catalogue of %s", snap.day)


@app.get("/search")
def search(
    q: Annotated[str, Query(description="what the customer typed")] = "",
    customer_id: str | None = None,
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict:
    """Products for a text query: BM25 and sentence-encoder relevance fused, personalised with the customer's
    profile facts when the customer is known (``personalised`` says whether it was), out-of-stock products
    filtered, each result with the terms it matched and the facts that moved it."""
    from ml.search.catalogue import PROFILES_EXPORT, shopper_from_row
    from ml.search.ranker import QueryError, check_query

    try:
        query = check_query(q)
    except QueryError as err:
        raise HTTPException(422, f"cannot search {q!r}: {err}") from err
    catalogue = _snapshot("search_catalogue", ("sku",))
    engine = _product_search(catalogue)
    shopper, note = None, "anonymous search: no customer_id given"
    if customer_id is not None:
        profiles = EXPORTS.latest(PROFILES_EXPORT, (), ("customer_id",))
        rows = profiles.rows("customer_id", customer_id) if profiles is not None else None
        if rows is not None and len(rows):
            shopper, note = shopper_from_row(rows.iloc[0]), "personalised with the customer's profile facts"
        else:
            note = f"customer {customer_id!r} has no profile: results are not personalised"
    results = engine.search(query, k=k, shopper=shopper)
    return {
        "query": query,
        "as_of": catalogue.day,
        "customer_id": customer_id,
        "personalised": shopper is not None,
        "note": note,
        "results": _records(results.assign(matched_terms=results["matched_terms"].map(list))),
    }


@app.get("/category/{category}")
def category_page(
    category: str,
    customer_id: str | None = None,
    segment_id: int | None = None,
    ordering: Literal["ranked", "bestsellers"] | None = None,
    k: Annotated[int, Query(ge=1, le=50)] = 20,
) -> dict:
    """A category's page (``goods/category_rankings``). A known customer gets the ordering of its arm of the
    category-page experiment: treatment, the page of its segment re-ordered by its usual price band and recent
    views; control, the bestseller ordering. Without a customer: ``segment_id``'s page (0 without either), or
    ``ordering`` when asked for."""
    from ml.recommend.experiment import CONTROL
    from ml.search.catalogue import PROFILES_EXPORT, shopper_from_row
    from ml.search.category_pages import ANONYMOUS, BESTSELLERS, RANKED, page_arms, personalise

    snap = _snapshot("category_rankings", ("category", "segment_id", "rank"), ("category",))
    pages = snap.rows("category", category)
    if pages.empty:
        known = sorted(snap.index["category"])
        raise HTTPException(404, f"no category {category!r} as of {snap.day}; categories: {', '.join(known)}")
    if "ordering" not in pages:
        pages = pages.assign(ordering=RANKED)
    shopper, arm, note = None, None, "the page for visitors without a segment"
    if customer_id is not None:
        arm = str(page_arms([customer_id])[0])
        if ordering is None:
            ordering = BESTSELLERS if arm == CONTROL else RANKED
        profiles = EXPORTS.latest(PROFILES_EXPORT, (), ("customer_id",))
        rows = profiles.rows("customer_id", customer_id) if profiles is not None else None
        if rows is not None and len(rows):
            shopper = shopper_from_row(rows.iloc[0])
            segment_id = int(rows.iloc[0].get("segment_id") or 0) if segment_id is None else segment_id
            note = f"the page of segment {segment_id}, personalised with the customer's price band and recent views"
        else:
            note = f"customer {customer_id!r} has no profile: the page for visitors without a segment"
    elif segment_id is not None:
        note = f"the page of segment {segment_id}"
    ordering = ordering or RANKED
    if ordering == BESTSELLERS:
        page = pages[pages["ordering"] == BESTSELLERS]
        shopper, note = None, f"the bestseller ordering (the {CONTROL} arm of the category-page experiment)"
    else:
        ranked = pages[pages["ordering"] == RANKED]
        page = ranked[ranked["segment_id"] == (segment_id or ANONYMOUS)]
        if page.empty:
            page, note = (
                ranked[ranked["segment_id"] == ANONYMOUS],
                f"segment {segment_id} has no page: the default page",
            )
    if page.empty:
        raise HTTPException(404, f"category {category!r} has no {ordering} page as of {snap.day}")
    if shopper is not None:
        in_band = page["price_band"].eq(shopper.price_band).to_numpy() if shopper.price_band else False
        viewed = page["sku"].isin(shopper.recently_viewed).to_numpy()
        page = personalise(page, np.broadcast_to(in_band, len(page)), viewed, by=["category"])
    return {
        "category": category,
        "as_of": snap.day,
        "customer_id": customer_id,
        "arm": arm,
        "ordering": ordering,
        "segment_id": int(page["segment_id"].iloc[0]),
        "personalised": shopper is not None,
        "note": note,
        "products": _records(page.head(k).drop(columns=["category", "segment_id", "ordering"])),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api.app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = SecuritySettings.from_env()
    check_bind(args.host, settings)
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not settings.token:
        logging.getLogger("aigc.api").warning(
            "AIGC_API_TOKEN is not set: serving without a token, on loopback only (%s)", args.host
        )
    threading.Thread(target=warm_search, name="warm-search", daemon=True).start()
    # uvicorn's own access log prints every path with its customer or SKU id: ours logs the route template only
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
