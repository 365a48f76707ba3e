"""The landing contract (ml/sources/schema.py) is the one home of vocabularies and limits: the loader, the
sources and their dirt use its values, and what they produce lies inside them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ml.ingest.raw_loader import load_window
from ml.sources import dirt, get_source, simulated
from ml.sources.dbt_macros import MACRO_FILE, render
from ml.sources.landing import write_table
from ml.sources.online_retail import OnlineRetailReplay, read_lines
from ml.sources.schema import (
    ALL_CHANNELS,
    CHANNELS,
    CONTRACTS,
    DEVICES,
    EVENT_TYPES,
    LATE_ROW_TOLERANCE_DAYS,
    LIMITS,
    MAX_ABS_QUANTITY,
    ONLINE_RETAIL_CHANNEL,
    ORDER_STATUSES,
    ORDER_TOTAL_TOLERANCE,
    PLACEMENTS,
    PROMO_CHANNELS,
    SHOP_CHANNELS,
    VOCABULARIES,
)

DAY = date(2025, 1, 1)


def test_the_contracts_use_the_named_vocabularies_and_limits() -> None:
    assert dict(CONTRACTS["events"].accepted) == {"event_type": EVENT_TYPES}
    assert dict(CONTRACTS["orders"].accepted) == {"status": ORDER_STATUSES}
    assert dict(CONTRACTS["order_items"].max_abs) == {"qty": MAX_ABS_QUANTITY}
    assert dict(CONTRACTS["inventory"].max_abs) == {"on_hand": MAX_ABS_QUANTITY, "on_order": MAX_ABS_QUANTITY}
    facts = {name for name, c in CONTRACTS.items() if c.late_tolerance_days is not None}
    assert facts == {
        "events",
        "orders",
        "order_items",
        "inventory",
        "impressions",
        "lost_sales",
        "message_events",
    }
    assert {CONTRACTS[t].late_tolerance_days for t in facts} == {LATE_ROW_TOLERANCE_DAYS}
    assert (*SHOP_CHANNELS, ONLINE_RETAIL_CHANNEL) == CHANNELS
    assert (*CHANNELS, ALL_CHANNELS) == PROMO_CHANNELS
    assert VOCABULARIES["promo_channels"] == PROMO_CHANNELS
    for name, values in VOCABULARIES.items():
        assert values and len(set(values)) == len(values), name
        assert all(v == v.strip().lower() for v in values), name  # staging lower-cases and trims


def test_the_simulator_speaks_the_contract_vocabularies() -> None:
    assert simulated.CHANNELS == SHOP_CHANNELS
    day = get_source("simulated").day_tables(DAY)

    def values(table: str, column: str) -> set:
        return set(day[table].column(column).drop_null().to_pylist())

    assert values("events", "event_type") == set(EVENT_TYPES)
    assert values("events", "channel") == set(SHOP_CHANNELS)
    # for_you shows the platform's lists, message visits answer its messages and category_page shows its category
    # pages: only the closed-loop shop front has them (tests/test_shop_front.py)
    assert values("events", "placement") == set(PLACEMENTS) - {"for_you", "message", "category_page"}
    assert values("events", "device") == set(DEVICES)
    assert values("customers", "preferred_device") == set(DEVICES)
    assert values("orders", "channel") <= set(SHOP_CHANNELS)
    assert values("orders", "status") <= set(ORDER_STATUSES)
    world = simulated.build_world("small", 42)
    promo_channels = {p.channel for t in range(365) for p in simulated._promotions(world, t)}
    assert ALL_CHANNELS in promo_channels and promo_channels <= set(PROMO_CHANNELS)
    # Checkouts happen on the cart placement, purchases are the third event type: indexed by position.
    purchases = day["events"].filter(pc.equal(day["events"].column("event_type"), "purchase"))
    assert set(purchases.column("placement").to_pylist()) == {"cart"}


def test_the_online_retail_replay_speaks_the_contract_vocabularies() -> None:
    day = OnlineRetailReplay().day_tables(date(2010, 12, 1))
    assert set(day["orders"].column("channel").to_pylist()) == {ONLINE_RETAIL_CHANNEL}
    assert set(day["orders"].column("status").to_pylist()) == set(ORDER_STATUSES)


def test_the_quantity_bound_admits_the_real_data_and_the_dirt_breaks_it() -> None:
    qty = read_lines()["Quantity"].abs()  # both Online Retail years
    assert qty.max() == 80_995 <= MAX_ABS_QUANTITY
    source = get_source("simulated", dirty_rate=1.0)
    lines = source.day_tables(DAY)["order_items"]
    injected = {d.reason for d in source.ledger(DAY)}
    assert {"out_of_range:qty", "invalid_value:event_type"} <= injected
    assert pc.max(pc.abs(lines.column("qty"))).as_py() == MAX_ABS_QUANTITY * 1000
    events = source.day_tables(DAY)["events"]
    assert set(events.column("event_type").to_pylist()) - set(EVENT_TYPES) == {"wishlist"}
    assert dirt.MAX_ABS_QUANTITY is MAX_ABS_QUANTITY


def _lines(quantities: list[int]) -> pa.Table:
    n = len(quantities)
    return pa.table(
        {
            "order_id": [f"O{i}" for i in range(n)],
            "line_no": [1] * n,
            "ts": [datetime(2025, 1, 1, 10, tzinfo=UTC)] * n,
            "sku": ["P1"] * n,
            "qty": quantities,
            "unit_price": [1.0] * n,
            "discount": [0.0] * n,
            "warehouse_id": ["WH01"] * n,
        }
    )


@pytest.mark.parametrize("sign", [1, -1])
def test_the_loader_quarantines_a_quantity_just_beyond_the_bound(tmp_path, sign: int) -> None:
    write_table(
        _lines([sign * MAX_ABS_QUANTITY, sign * (MAX_ABS_QUANTITY + 1)]), tmp_path, "s", "order_items", DAY
    )
    with duckdb.connect() as con:
        result = load_window(con, tmp_path, "s", "order_items", [DAY])
        assert result.quarantined_by_reason() == {"out_of_range:qty": 1}
        assert con.execute("SELECT qty FROM raw.order_items").fetchall() == [(sign * MAX_ABS_QUANTITY,)]


def test_the_committed_dbt_macro_file_is_what_the_contract_generates() -> None:
    committed = (Path(__file__).resolve().parents[1] / MACRO_FILE).read_text()
    assert committed == render(), "regenerate: python -m ml.sources.dbt_macros > " + MACRO_FILE
    assert re.search(r"'line_types': +\['sale', 'return', 'adjustment'\],", committed)
    assert "'order_total_tolerance':   0.011," in committed
    assert set(LIMITS) == {
        "late_row_tolerance_days",
        "max_abs_quantity",
        "max_lead_time_days",
        "order_total_tolerance",
    }
    assert LIMITS["order_total_tolerance"] == ORDER_TOTAL_TOLERANCE


def test_the_generated_macros_return_the_contract_values_in_dbt(tmp_path, monkeypatch) -> None:
    """dbt itself reads every vocabulary and limit back as the contract has it, and refuses an unknown name."""
    import json

    from dbt.cli.main import dbtRunner

    project = Path(__file__).resolve().parents[1] / "dbt_project"
    monkeypatch.setenv("AIGC_WAREHOUSE_PATH", str(tmp_path / "compile.duckdb"))
    calls = [f"contract_vocabulary('{name}')" for name in VOCABULARIES] + [
        f"contract_limit('{name}')" for name in LIMITS
    ]
    macro = "{{ tojson([" + ", ".join(calls) + "]) }}"
    args = [
        "--quiet",
        "--log-format",
        "text",
        "compile",
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(project),
        "--target-path",
        str(tmp_path / "target"),
        "--log-path",
        str(tmp_path / "logs"),
        "--inline",
        macro,
    ]
    result = dbtRunner().invoke(args)
    assert result.success, result.exception
    (node,) = result.result.results
    values = json.loads(node.node.compiled_code)
    assert values == [list(v) for v in VOCABULARIES.values()] + list(LIMITS.values())
    messages: list[str] = []
    bad = dbtRunner(callbacks=[lambda event: messages.append(event.info.msg)])
    assert not bad.invoke([*args[:-1], "{{ contract_vocabulary('colours') }}"]).success
    assert any("unknown contract vocabulary 'colours'; known: channels, devices" in m for m in messages)
