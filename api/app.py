"""The read API for other shop systems: recommendations, forecasts and the replenishment plan over HTTP.

    make api                      # http://127.0.0.1:8000/docs
    python -m api.app --help

It serves the latest materialised outputs, read from the Parquet exports the daily assets write under
``$DATA_DIR/exports/<output>/date=YYYY-MM-DD/`` (one folder per as-of day). Reading the exports rather than the
DuckDB file means the API never holds a lock that a running pipeline needs, and a half-written day is never
visible: an export folder appears only when its day is complete (written to a temporary name, then renamed).

Endpoints: ``GET /health``, ``GET /recommendations/{customer_id}``, ``GET /forecast/{sku}``,
``GET /replenishment``, ``GET /stockout-alerts``, ``GET /service-levels``, ``GET /messages/{customer_id}``. Unknown ids
answer 404 with a message; bad parameters 422.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from pathlib import Path
from typing import Annotated

import duckdb
from fastapi import FastAPI, HTTPException, Query

OUTPUTS = (
    "recommendations",
    "demand_forecast",
    "replenishment_plan",
    "stockout_alerts",
    "service_levels",
    "messages",
    "allocation_plan",
    "transfer_orders",
)
_DAY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")


def exports_root() -> Path:
    from ml import settings

    return Path(os.environ.get("AIGC_EXPORTS_DIR") or settings.exports_dir())


def latest_export(output: str, root: Path | None = None) -> tuple[str, Path] | None:
    """(as-of day, folder) of the newest complete export of ``output``, or None when there is none yet."""
    folder = (root or exports_root()) / output
    if not folder.is_dir():
        return None
    days = sorted((m.group(1), entry) for entry in folder.iterdir() if (m := _DAY.match(entry.name)))
    return days[-1] if days else None


def _query(
    output: str, where: str = "", params: list | None = None, order: str = "", limit: int | None = None
):
    found = latest_export(output)
    if found is None:
        raise HTTPException(503, f"no {output} has been materialised yet; run the daily pipeline first")
    day, folder = found
    sql = f"SELECT * FROM read_parquet(?) {('WHERE ' + where) if where else ''} {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with duckdb.connect() as con:
        frame = con.execute(sql, [str(folder / "*.parquet"), *(params or [])]).df()
    return day, frame


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


@app.get("/health")
def health() -> dict:
    latest = {}
    for output in OUTPUTS:
        found = latest_export(output)
        latest[output] = found[0] if found else None
    return {"status": "ok", "exports_dir": str(exports_root()), "latest_as_of": latest}


@app.get("/recommendations/{customer_id}")
def recommendations(customer_id: str, k: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    day, frame = _query("recommendations", "customer_id = ?", [customer_id], "ORDER BY rank", k)
    if frame.empty:
        raise HTTPException(404, f"no recommendations for customer {customer_id!r} as of {day}")
    return {"customer_id": customer_id, "as_of": day, "items": _records(frame.drop(columns=["customer_id"]))}


@app.get("/forecast/{sku}")
def forecast(sku: str, horizon: Annotated[int, Query(ge=1, le=28)] = 28) -> dict:
    day, frame = _query("demand_forecast", "sku = ? AND horizon_day <= ?", [sku, horizon], "ORDER BY ALL")
    if frame.empty:
        raise HTTPException(404, f"no forecast for SKU {sku!r} as of {day}")
    return {"sku": sku, "as_of": day, "days": _records(frame.drop(columns=["sku"]))}


@app.get("/replenishment")
def replenishment(
    warehouse_id: str | None = None,
    sku: str | None = None,
    needs_order: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict:
    clauses, params = [], []
    if warehouse_id is not None:
        clauses.append("warehouse_id = ?")
        params.append(warehouse_id)
    if sku is not None:
        clauses.append("sku = ?")
        params.append(sku)
    if needs_order:
        clauses.append("order_qty > 0")
    day, frame = _query(
        "replenishment_plan", " AND ".join(clauses), params, "ORDER BY sku, warehouse_id", limit
    )
    if frame.empty and (warehouse_id or sku):
        raise HTTPException(404, f"no plan rows for warehouse_id={warehouse_id!r} sku={sku!r} as of {day}")
    return {"as_of": day, "rows": _records(frame)}


@app.get("/stockout-alerts")
def stockout_alerts(limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> dict:
    day, frame = _query("stockout_alerts", order="ORDER BY revenue_at_risk DESC", limit=limit)
    return {"as_of": day, "alerts": _records(frame)}


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
    clauses, params = [], []
    for column, value in (("warehouse_id", warehouse_id), ("region", region), ("sku", sku)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if demand != "all":
        clauses.append("demand = ?")
        params.append(demand)
    day, frame = _query("allocation_plan", " AND ".join(clauses), params, "ORDER BY units DESC, sku", limit)
    return {"as_of": day, "rows": _records(frame)}


@app.get("/transfer-orders")
def transfer_orders(limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict:
    """Stock to move between warehouses on the latest day (``supply/transfer_orders``), largest first."""
    day, frame = _query("transfer_orders", order="ORDER BY units DESC, sku", limit=limit)
    return {"as_of": day, "transfers": _records(frame)}


@app.get("/service-levels")
def service_levels() -> dict:
    """The service level per demand class that the latest replay found (``supply/service_levels``)."""
    day, frame = _query("service_levels", order="ORDER BY demand_class")
    return {"as_of": day, "levels": _records(frame)}


@app.get("/messages/{customer_id}")
def messages(customer_id: str) -> dict:
    """The customer's messages whose offer is still valid on the latest export day, newest first, each with the
    facts it was written from (its reason) and the rule that targeted it."""
    found = latest_export("messages")
    if found is None:
        raise HTTPException(503, "no messages have been materialised yet; run the daily pipeline first")
    day, folder = found
    pattern = str(folder.parent / "date=*" / "*.parquet")
    with duckdb.connect() as con:
        frame = con.execute(
            "SELECT * EXCLUDE (date), date::VARCHAR AS as_of FROM read_parquet(?, hive_partitioning = true) "
            "WHERE customer_id = ? AND offer_expires >= ?::DATE ORDER BY date DESC",
            [pattern, customer_id, day],
        ).df()
    if frame.empty:
        raise HTTPException(404, f"no message with a valid offer for customer {customer_id!r} as of {day}")
    rows = _records(frame.drop(columns=["customer_id"]))
    for row in rows:
        row["facts"] = json.loads(row["facts"])
        row["featured_skus"] = list(row["featured_skus"])
    return {"customer_id": customer_id, "as_of": day, "messages": rows}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m api.app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
