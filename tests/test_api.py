"""The read API, started as a real server on a free local port, answering from Parquet exports."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from ml.exports import write_export
from tests.api_server import get, running_api

OLD, NEW = date(2025, 1, 13), date(2025, 1, 14)


def _write_exports(root: Path) -> None:
    for day, model in ((OLD, "stale"), (NEW, "sasrec")):
        write_export(
            pd.DataFrame(
                {
                    "customer_id": ["C1", "C1", "C1", "C2"],
                    "rank": [1, 2, 3, 1],
                    "sku": ["S9", "S4", "S7", "S1"],
                    "score": [0.9, 0.5, 0.2, 0.7],
                    "model_name": [model] * 4,
                    "model_version": [f"{model}-{day}"] * 4,
                    "reason": ["bought together with S3"] * 4,
                }
            ),
            root,
            "recommendations",
            day,
        )
    write_export(
        pd.DataFrame(
            {
                # as the daily forecast exports it: per SKU, no warehouse column
                "sku": ["S1"] * 3 + ["S2"],
                "forecast_date": pd.to_datetime(
                    ["2025-01-15", "2025-01-16", "2025-01-17", "2025-01-15"]
                ).date,
                "horizon_day": [1, 2, 3, 1],
                "mean": [1.5, 1.2, 1.1, 0.1],
                "q50": [1.0, 1.0, 1.0, 0.0],
                "q90": [3.0, 3.0, 2.0, 1.0],
                "model_name": ["ensemble"] * 4,
            }
        ),
        root,
        "demand_forecast",
        NEW,
    )
    write_export(
        pd.DataFrame(
            {
                "sku": ["S1", "S2"],
                "warehouse_id": ["WH1", "WH2"],
                "reorder_point": [10.0, 2.0],
                "order_qty": [12.0, 0.0],
            }
        ),
        root,
        "replenishment_plan",
        NEW,
    )
    write_export(
        pd.DataFrame(
            {
                "sku": ["S1", "S1", "S2", "S2"],
                "warehouse_id": ["WH01", "WH02", "WH02", "WH01"],
                "region": ["london", "london", "north", "north"],
                "demand": ["open_orders", "open_orders", "open_orders", "forecast"],
                "units": [3.0, 5.0, 1.0, 2.5],
            }
        ),
        root,
        "allocation_plan",
        NEW,
    )
    write_export(
        pd.DataFrame(
            {
                "sku": ["S1", "S2"],
                "from_warehouse_id": ["WH02", "WH01"],
                "to_warehouse_id": ["WH01", "WH02"],
                "units": [4, 9],
            }
        ),
        root,
        "transfer_orders",
        OLD,
    )
    write_export(
        pd.DataFrame(
            {
                "as_of_date": ["2025-01-14"] * 2,
                "demand_class": ["smooth", "lumpy"],
                "service_level": [0.95, 0.999],
            }
        ),
        root,
        "service_levels",
        NEW,
    )


def _message(customer: str, day: date, expires: date, subject: str) -> dict:
    return {
        "message_id": f"{customer}-{day}",
        "send_date": day,
        "customer_id": customer,
        "campaign": "win_back",
        "subject": subject,
        "offer_expires": expires,
        "featured_skus": ["S9", "S4"],
        "facts": f'{{"customer_id": "{customer}", "orders_365d": 3}}',
    }


def _write_messages(root: Path) -> None:
    # C1 got a message on each day (the older offer still valid), C2 only on the old day, expired by the new one
    old = [_message("C1", OLD, date(2025, 1, 20), "old offer"), _message("C2", OLD, OLD, "expired")]
    write_export(pd.DataFrame(old), root, "messages", OLD)
    write_export(pd.DataFrame([_message("C1", NEW, date(2025, 1, 21), "new offer")]), root, "messages", NEW)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    _write_exports(root)
    _write_messages(root)
    with running_api(root) as base:
        yield base


def test_health_reports_the_latest_day_of_each_output(api):
    status, body = get(api + "/health")
    assert status == 200
    assert body["latest_as_of"] == {
        "recommendations": "2025-01-14",
        "demand_forecast": "2025-01-14",
        "replenishment_plan": "2025-01-14",
        "stockout_alerts": None,
        "service_levels": "2025-01-14",
        "messages": "2025-01-14",
        "allocation_plan": "2025-01-14",
        "transfer_orders": "2025-01-13",
        "search_catalogue": None,
        "search_profiles": None,
        "category_rankings": None,
    }


def test_allocation_filters_by_region_and_demand_and_transfers_come_largest_first(api):
    status, body = get(api + "/allocation?region=london")
    assert status == 200 and body["as_of"] == "2025-01-14"
    assert [(r["warehouse_id"], r["units"]) for r in body["rows"]] == [("WH02", 5.0), ("WH01", 3.0)]
    assert [r["warehouse_id"] for r in get(api + "/allocation?sku=S2&demand=forecast")[1]["rows"]] == ["WH01"]
    assert len(get(api + "/allocation?demand=all")[1]["rows"]) == 4
    assert get(api + "/allocation?demand=later")[0] == 422
    status, body = get(api + "/transfer-orders")
    assert status == 200 and body["as_of"] == "2025-01-13"
    assert [(t["sku"], t["units"]) for t in body["transfers"]] == [("S2", 9), ("S1", 4)]


def test_recommendations_come_from_the_latest_day_in_rank_order(api):
    status, body = get(api + "/recommendations/C1?k=2")
    assert status == 200 and body["as_of"] == "2025-01-14"
    assert [i["sku"] for i in body["items"]] == ["S9", "S4"]
    assert {i["model_name"] for i in body["items"]} == {"sasrec"}


def test_unknown_customer_is_404_and_bad_k_is_422(api):
    status, body = get(api + "/recommendations/NOBODY")
    assert status == 404 and "NOBODY" in body["detail"]
    status, body = get(api + "/recommendations/C1?k=0")
    assert status == 422 and body["detail"][0]["loc"] == ["query", "k"]


def test_forecast_by_sku_with_horizon(api):
    status, body = get(api + "/forecast/S1?horizon=2")
    assert status == 200 and [d["horizon_day"] for d in body["days"]] == [1, 2]
    assert body["days"][0]["q90"] >= body["days"][0]["q50"]
    assert get(api + "/forecast/NOPE")[0] == 404
    assert get(api + "/forecast/S1?horizon=99")[0] == 422


def test_replenishment_filters_and_missing_output_is_503(api):
    status, body = get(api + "/replenishment?needs_order=true")
    assert status == 200 and [r["sku"] for r in body["rows"]] == ["S1"]
    assert get(api + "/replenishment?warehouse_id=WH9")[0] == 404
    status, body = get(api + "/stockout-alerts")
    assert status == 503 and "stockout_alerts" in body["detail"]


def test_binds_to_loopback_by_default():
    from api.app import parse_args

    assert parse_args([]).host == "127.0.0.1"
    assert parse_args(["--host", "0.0.0.0"]).host == "0.0.0.0"


def test_service_levels_per_class(api):
    status, body = get(api + "/service-levels")
    assert status == 200 and body["as_of"] == "2025-01-14"
    assert [(r["demand_class"], r["service_level"]) for r in body["levels"]] == [
        ("lumpy", 0.999),
        ("smooth", 0.95),
    ]


def test_messages_are_the_customers_valid_offers_newest_first_with_their_facts(api):
    status, body = get(api + "/messages/C1")
    assert status == 200 and body["as_of"] == "2025-01-14"
    assert [m["subject"] for m in body["messages"]] == ["new offer", "old offer"]
    assert body["messages"][0]["facts"] == {"customer_id": "C1", "orders_365d": 3}
    assert (
        body["messages"][0]["featured_skus"] == ["S9", "S4"] and body["messages"][1]["as_of"] == "2025-01-13"
    )
    status, body = get(api + "/messages/C2")  # its only offer expired before the latest day
    assert status == 404 and "C2" in body["detail"]
