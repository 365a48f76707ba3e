"""The closed-loop shop front (ml/shop): it answers what the platform publishes, deterministically, and a better
list earns more."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.exports import write_export
from ml.recommend.experiment import CONTROL, CONTROL_SHARE, arms
from ml.shop.front import ClosedLoopStore, ShopState
from ml.shop.lists import oracle_lists, random_lists
from ml.sources.schema import CLOSED_LOOP_TABLES, CONTRACTS, TABLES
from ml.sources.simulated import SimulatedStore

DAY = date(2025, 1, 10)


def shop(root: Path) -> ClosedLoopStore:
    return ClosedLoopStore("small", 42, exports_root=root / "exports", state_root=root / "shop")


def file_digests(landing: Path) -> dict[str, str]:
    return {
        str(p.relative_to(landing)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(landing.rglob("*.parquet"))
    }


def publish(root: Path, lists: pd.DataFrame | None, day: date, plan: pd.DataFrame | None = None) -> None:
    """What the platform would have exported at the end of ``day``."""
    if lists is not None:
        write_export(lists, root / "exports", "recommendations", day)
    if plan is not None:
        write_export(plan, root / "exports", "replenishment_plan", day)


def exposed_outcome(tables) -> dict[str, float]:
    """Per customer shown a list: clicks and purchased units / revenue from items clicked at ``for_you``."""
    events = tables["events"].to_pandas()
    impressions = tables["impressions"].to_pandas()
    lines = (
        tables["order_items"]
        .to_pandas()
        .merge(tables["orders"].to_pandas()[["order_id", "session_id"]], on="order_id")
    )
    clicked = events[events["placement"] == "for_you"][["session_id", "sku"]].drop_duplicates()
    from_list = lines.merge(clicked, on=["session_id", "sku"])
    exposed = impressions["customer_id"].nunique()
    return {
        "exposed": exposed,
        "clicks_per_exposed": (events["placement"] == "for_you").sum() / exposed,
        "units_per_exposed": from_list["qty"].sum() / exposed,
        "revenue_per_exposed": (
            from_list["qty"] * from_list["unit_price"] * (1 - from_list["discount"])
        ).sum()
        / exposed,
    }


def test_without_exports_the_shop_writes_the_open_loop_bytes(tmp_path):
    closed, opened = shop(tmp_path / "closed"), SimulatedStore("small", 42)
    for day in (date(2025, 1, 1), DAY):
        closed.write_day(day, tmp_path / "closed" / "landing")
        opened.write_day(day, tmp_path / "open" / "landing")
    closed_files = file_digests(tmp_path / "closed" / "landing")
    open_files = file_digests(tmp_path / "open" / "landing")
    assert len(open_files) == 20
    assert {k: v for k, v in closed_files.items() if k in open_files} == open_files
    assert set(closed_files) - set(open_files) == {
        f"simulated/{table}/date={day}/part-0.parquet"
        for table in CLOSED_LOOP_TABLES
        for day in ("2025-01-01", "2025-01-10")
    }
    assert not (tmp_path / "closed" / "shop").exists(), "an open-loop day keeps no shop state"


def test_the_same_exports_give_the_same_bytes_again(tmp_path):
    runs = []
    for run in ("a", "b"):
        root = tmp_path / run
        store = shop(root)
        customers = np.arange(store.world.spec.n_customers)
        for day in (DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)):
            publish(root, oracle_lists(store.world, customers[::3], day), day - timedelta(days=1))
            store.write_day(day, root / "landing")
        runs.append(file_digests(root / "landing"))
    assert runs[0] == runs[1]
    assert len(runs[0]) == 39


def test_an_oracle_list_earns_far_more_than_a_random_one(tmp_path):
    outcome = {}
    for name, make in (("oracle", oracle_lists), ("random", random_lists)):
        store = shop(tmp_path / name)
        customers = np.arange(store.world.spec.n_customers)
        publish(tmp_path / name, make(store.world, customers, DAY), DAY - timedelta(days=1))
        outcome[name] = exposed_outcome(store.day_tables(DAY))
    oracle, rand = outcome["oracle"], outcome["random"]
    assert oracle["exposed"] == rand["exposed"] > 500  # the same sessions see a list in both
    assert oracle["clicks_per_exposed"] > 4 * rand["clicks_per_exposed"]
    assert oracle["units_per_exposed"] > 4 * rand["units_per_exposed"] > 0
    assert oracle["revenue_per_exposed"] > 4 * rand["revenue_per_exposed"]


def publish_messages(
    root: Path, world, customers: np.ndarray, day: date, products: str, discount: int, family: str = "plain"
):
    """Messages to ``customers`` featuring, for each, its three most (``best``) or least (``worst``) appealing
    launched products, with ``discount`` percent off, in the tone of ``family``."""
    lists = oracle_lists(world, customers, day, k=len(world.skus))
    lists = lists.sort_values(["customer_id", "rank"], ascending=[True, products == "best"])
    featured = lists.groupby("customer_id", sort=True)["sku"].apply(lambda s: list(s.head(3)))
    messages = pd.DataFrame(
        {
            "message_id": [f"M{c}-{day}-{products}-{discount}" for c in featured.index],
            "customer_id": featured.index,
            "channel": "email",
            "send_hour": 19,
            "discount_pct": discount,
            "family": family,
            "featured_skus": featured.to_numpy(),
        }
    )
    write_export(messages, root / "exports", "messages", day - timedelta(days=1))
    return messages


def message_outcome(tables) -> dict[str, float]:
    ev = tables["message_events"].to_pandas()
    per = ev.pivot_table(index="message_id", columns="event_type", values="event_id", aggfunc="count").fillna(
        0
    )
    items = tables["order_items"].to_pandas()
    from_messages = items[items["order_id"].str.startswith("OM")]
    return {
        "delivered": float(per.get("delivered", pd.Series(dtype=float)).sum()),
        "open_rate": float((per.get("opened", 0) > 0).mean()),
        "clicks": float(per.get("clicked", pd.Series(dtype=float)).sum()),
        "units": float(from_messages["qty"].sum()),
        "discounts": set(from_messages["discount"].round(2)),
    }


def test_the_shop_answers_messages_by_taste_and_offer_and_credits_the_click_session(tmp_path):
    outcome = {}
    for products, discount in (("best", 20), ("best", 0), ("worst", 0)):
        root = tmp_path / f"{products}{discount}"
        store = shop(root)
        customers = np.arange(store.world.spec.n_customers)
        publish(
            root, None, DAY - timedelta(days=1), pd.DataFrame(columns=["sku", "warehouse_id", "order_qty"])
        )
        messages = publish_messages(root, store.world, customers, DAY, products, discount)
        tables = store.day_tables(DAY)
        outcome[(products, discount)] = message_outcome(tables)
    best20, best0, worst = outcome[("best", 20)], outcome[("best", 0)], outcome[("worst", 0)]
    # the same customers, the same delivery and opening (taste and offer act after the open)
    assert best20["delivered"] == best0["delivered"] == worst["delivered"] > 1000
    assert best20["open_rate"] == best0["open_rate"] == worst["open_rate"]
    assert 0.15 < best0["open_rate"] < 0.45
    # taste drives clicks, the offer adds to them and to purchases; bought lines carry the offer's discount
    assert best0["clicks"] > 5 * max(worst["clicks"], 1) and best20["clicks"] > best0["clicks"]
    assert best20["units"] > best0["units"] > 0
    assert 0.2 in best20["discounts"] and 0.2 not in best0["discounts"]
    # a click opens a session: a view at "message", and a purchase of it is an order of that session
    ev = tables["message_events"].to_pandas()  # the last world: worst products
    assert set(ev["event_type"]) <= {"delivered", "opened", "clicked", "unsubscribed"}
    # every message to a customer known before the day is delivered, the others are not (nobody to send to)
    position = pd.Index(store.world.customer_ids).get_indexer(messages["customer_id"])
    known = store.world.signup_day[position] < (DAY - date(2025, 1, 1)).days
    assert set(ev["message_id"]) == set(messages.loc[known, "message_id"]) and (~known).any()
    events = store.day_tables(DAY)["events"].to_pandas()
    visits = events[events["session_id"].str.startswith("SM")]
    clicks = ev[ev["event_type"] == "clicked"]
    assert set(visits.loc[visits["event_type"] == "view", "session_id"]) == set(clicks["session_id"])
    assert (visits.loc[visits["event_type"] == "view", "placement"] == "message").all()


def test_the_truths_expected_margin_matches_what_the_shop_credits_and_tone_is_contextual(tmp_path):
    from ml.shop.messages import expected_credited_margin

    store = shop(tmp_path)
    world = store.world
    customers = np.arange(world.spec.n_customers)
    publish(
        tmp_path, None, DAY - timedelta(days=1), pd.DataFrame(columns=["sku", "warehouse_id", "order_qty"])
    )
    messages = publish_messages(tmp_path, world, customers, DAY, "best", 20, family="urgent")
    tables = store.day_tables(DAY)
    items = tables["order_items"].to_pandas()
    bought = items[items["order_id"].str.startswith("OM")]
    realised = float((bought["qty"] * bought["unit_price"] * (1 - bought["discount"] - 0.6)).sum())
    expected = expected_credited_margin(world, DAY, messages, pd.Series(dtype=float), cost_share=0.6)
    assert len(bought) > 30
    assert expected.sum() == pytest.approx(realised, rel=0.3)
    # urgent pays with the price-sensitive and costs with the others, against the same message in plain words
    plain = expected_credited_margin(world, DAY, messages.assign(family="plain"), pd.Series(dtype=float), 0.6)
    position = pd.Index(world.customer_ids).get_indexer(
        expected.index.map(messages.set_index("message_id")["customer_id"])
    )
    sensitive = world.price_sens[position] > 1.3 * world.price_sens.mean()
    insensitive = world.price_sens[position] < 0.7 * world.price_sens.mean()
    assert expected[sensitive].sum() > 1.1 * plain[sensitive].sum()
    assert expected[insensitive].sum() < 0.9 * plain[insensitive].sum()


def test_customers_tire_of_messages(tmp_path):
    store = shop(tmp_path)
    customers = np.arange(store.world.spec.n_customers)
    publish(
        tmp_path, None, DAY - timedelta(days=1), pd.DataFrame(columns=["sku", "warehouse_id", "order_qty"])
    )
    fresh = message_outcome(
        (publish_messages(tmp_path, store.world, customers, DAY, "best", 0), store.day_tables(DAY))[1]
    )
    for k in range(2, 8):  # six messages each in the days before
        publish_messages(tmp_path, store.world, customers, DAY - timedelta(days=k - 1), "best", 0)
    publish_messages(tmp_path, store.world, customers, DAY, "best", 0)
    tired = message_outcome(store.day_tables(DAY))
    assert tired["delivered"] == fresh["delivered"]
    assert tired["open_rate"] < 0.6 * fresh["open_rate"]  # 0.85 ** 6 = 0.38 of the pull to open


def test_impressions_carry_rank_list_model_and_arm(tmp_path):
    store = shop(tmp_path)
    customers = np.arange(store.world.spec.n_customers)
    publish(tmp_path, oracle_lists(store.world, customers, DAY), DAY - timedelta(days=1))
    impressions = store.day_tables(DAY)["impressions"].to_pandas()
    assert set(impressions["rank"]) == set(range(1, 11))
    assert set(impressions["placement"]) == {"for_you"}
    assert set(impressions["model_version"]) == {f"oracle-{DAY}"}
    per_customer = impressions.groupby("customer_id")["list_id"].nunique()
    assert (per_customer == 1).all()
    expected_arms = dict(zip(per_customer.index, arms(per_customer.index), strict=True))
    assert (impressions["arm"] == impressions["customer_id"].map(expected_arms)).all()
    assert impressions["impression_id"].is_unique


def test_plan_orders_arrive_after_the_lead_time_and_raise_the_stock(tmp_path):
    store = shop(tmp_path)
    world = store.world
    sku_pos = int(np.flatnonzero(world.product_launch_day == 0)[0])
    lead = int(world.product_lead[sku_pos])
    plan = pd.DataFrame(
        {
            "sku": [world.skus[sku_pos]],
            "warehouse_id": ["WH01"],
            "order_qty": [5000.0],
            "use_alternate": [False],
        }
    )
    publish(tmp_path, None, DAY - timedelta(days=1), plan)
    on_hand, on_order = [], []
    for i in range(lead + 1):
        day = DAY + timedelta(days=i)
        if i > 0:  # no plan after the first day: the shop's own rule orders, never this much
            publish(tmp_path, None, day - timedelta(days=1), plan.assign(order_qty=0.0))
        inventory = store.day_tables(day)["inventory"].to_pandas()
        store.write_day(day, tmp_path / "landing")
        row = inventory[(inventory["sku"] == world.skus[sku_pos]) & (inventory["warehouse_id"] == "WH01")]
        on_hand.append(int(row["on_hand"].iloc[0]))
        on_order.append(int(row["on_order"].iloc[0]))
    assert all(o >= 5000 for o in on_order[:lead])  # placed on DAY, in transit for the lead time
    assert on_order[lead] < 5000 and on_hand[lead] >= 5000 > on_hand[lead - 1]


def test_every_order_is_raised_to_its_suppliers_minimum(tmp_path):
    store = shop(tmp_path)
    world = store.world
    launched = np.flatnonzero(world.product_launch_day == 0)
    moq_primary = world.supplier_moq[world.product_supplier]
    moq_alternate = world.supplier_moq[world.product_alt_supplier]
    a = int(next(i for i in launched if moq_primary[i] > 1))  # one unit from its primary
    b = int(next(i for i in launched if moq_alternate[i] > 1 and i != a))  # one unit from its alternate
    plan = pd.DataFrame(
        {
            "sku": [world.skus[a], world.skus[b]],
            "warehouse_id": ["WH01", "WH02"],
            "order_qty": [1.0, 1.0],
            "use_alternate": [False, True],
        }
    )
    publish(tmp_path, None, DAY - timedelta(days=1), plan)
    store.write_day(DAY, tmp_path / "landing")
    placed = store.load_state(DAY).pipeline
    t = (DAY - date(2025, 1, 1)).days
    placed = placed[placed["arrival_t"] > t]
    got = {(int(r.product), int(r.warehouse)): (int(r.qty), int(r.arrival_t)) for r in placed.itertuples()}
    assert got[(a, 0)] == (moq_primary[a], t + world.supplier_lead[world.product_supplier[a]])
    assert got[(b, 1)] == (moq_alternate[b], t + world.supplier_lead[world.product_alt_supplier[b]])
    # without a plan the shop's own rule orders from the primary, at least its minimum
    store.write_day(DAY + timedelta(days=1), tmp_path / "landing")
    state = store.load_state(DAY + timedelta(days=1)).pipeline
    rule = state[state["arrival_t"] == t + 1 + world.product_lead[state["product"].to_numpy()]]
    assert len(rule) > 0
    assert (rule["qty"].to_numpy() >= moq_primary[rule["product"].to_numpy()]).all()
    assert (rule["qty"].to_numpy() == moq_primary[rule["product"].to_numpy()]).any()  # the minimum binds


def test_demand_beyond_stock_is_lost_and_logged(tmp_path):
    store = shop(tmp_path)
    world = store.world
    start = store.initial_state(world, (DAY - date(2025, 1, 1)).days - 1)
    # the most popular launched product, emptied at every warehouse, with nothing on order
    popular = int(np.argmax(np.where(world.product_launch_day <= 0, world.popularity, 0)))
    start.on_hand[popular, :] = 0
    start.pipeline = start.pipeline[start.pipeline["product"] != popular]
    start.save(store.state_path(DAY - timedelta(days=1)))
    tables = store.day_tables(DAY)
    lost = tables["lost_sales"].to_pandas()
    sold = tables["order_items"].to_pandas()
    assert (sold["sku"] == world.skus[popular]).sum() == 0
    mine = lost[lost["sku"] == world.skus[popular]]
    assert len(mine) > 0 and set(mine["reason"]) == {"out_of_stock"}
    assert (mine["qty"] > 0).all() and mine["lost_id"].is_unique
    # a product that sells out during the day loses its later checkouts and never goes below zero
    inventory = tables["inventory"].to_pandas()
    assert (inventory["on_hand"] >= 0).all()


def test_closed_loop_days_refuse_to_run_out_of_order(tmp_path):
    store = shop(tmp_path)
    customers = np.arange(store.world.spec.n_customers)
    publish(tmp_path, oracle_lists(store.world, customers[:50], DAY), DAY - timedelta(days=1))
    store.write_day(DAY, tmp_path / "landing")
    assert isinstance(store.load_state(DAY), ShopState)
    with pytest.raises(RuntimeError, match=r"run 2025-01-11 \.\. 2025-01-12 in order"):
        store.write_day(DAY + timedelta(days=2), tmp_path / "landing")


def test_the_control_group_is_a_fixed_hashed_tenth():
    ids = [f"C{i:07d}" for i in range(1, 20_001)]
    first, again = arms(ids), arms(list(reversed(ids)))[::-1]
    assert (first == again).all()
    share = float(np.mean(first == CONTROL))
    assert abs(share - CONTROL_SHARE) < 0.01
    assert float(np.mean(arms(ids, salt="another experiment") == first)) < 0.9


def test_closed_loop_days_keep_every_contract(tmp_path):
    store = shop(tmp_path)
    customers = np.arange(store.world.spec.n_customers)
    publish(tmp_path, random_lists(store.world, customers, DAY), DAY - timedelta(days=1))
    publish_messages(tmp_path, store.world, customers[::5], DAY, "best", 15)
    tables = store.day_tables(DAY)
    assert tuple(tables) == TABLES
    for name, table in tables.items():
        contract = CONTRACTS[name]
        assert table.schema.equals(contract.schema), name
        frame = table.to_pandas()
        assert not frame.duplicated(list(contract.key)).any(), name
        for column in (*contract.key, *contract.required):
            assert frame[column].notna().all(), (name, column)
        for column, allowed in contract.accepted:
            assert set(frame[column].dropna()) <= set(allowed), (name, column)
        if contract.time_column and len(frame):
            assert (frame[contract.time_column].dt.date == DAY).all(), name
    assert tables["impressions"].num_rows > 0 and tables["lost_sales"].num_rows > 0
    assert tables["message_events"].num_rows > 0
    orders, items = tables["orders"].to_pandas(), tables["order_items"].to_pandas()
    assert orders["order_id"].is_unique and set(items["order_id"]) == set(orders["order_id"])
    totals = items.assign(amount=(items["qty"] * items["unit_price"] * (1 - items["discount"])).round(2))
    assert totals.groupby("order_id")["amount"].sum().reindex(orders["order_id"]).to_numpy() == pytest.approx(
        orders["order_total"].to_numpy(), abs=0.011
    )


def test_a_closed_loop_range_backfill_refuses_with_a_message(tmp_path):
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from tests.pipeline_helpers import all_assets, resources_for

    result = dg.materialize(
        all_assets(),
        selection=dg.AssetSelection.groups("landing"),
        resources=resources_for(tmp_path, closed_loop=True),
        tags={ASSET_PARTITION_RANGE_START_TAG: "2025-01-01", ASSET_PARTITION_RANGE_END_TAG: "2025-01-03"},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "its days run one after another" in str(failure.event_specific_data.error)
    assert not (tmp_path / "landing").exists(), "nothing is landed"


def test_feedback_reaches_the_marts_once_and_a_rerun_changes_nothing(tmp_path):
    """Two closed-loop days through the raw loader and a real dbt build: every impression is in
    marts.fct_impressions, clicks reconcile with the for_you views, credited sales are sale lines of the same
    customer and SKU, lost sales reconcile with the landing files; re-landing and rebuilding day 2 double-counts
    nothing."""
    import duckdb

    from ml.dbt import build_warehouse, load_and_build

    store = shop(tmp_path)
    # From the store's first day, so every customer and product an impression names has landed before it; day 1
    # is open loop (nothing published before it), days 2 and 3 answer the lists published the day before.
    first, second, third = (date(2025, 1, 1) + timedelta(days=i) for i in range(3))
    customers = np.arange(store.world.spec.n_customers)
    control = arms(store.world.customer_ids[customers]) == CONTROL
    for day in (second, third):
        # the treatment arm is shown the oracle's lists, the control arm random ones: the uplift is known to be large
        lists = pd.concat(
            [
                oracle_lists(store.world, customers[~control], day).assign(arm="treatment"),
                random_lists(store.world, customers[control], day).assign(arm="control"),
            ]
        )
        publish(tmp_path, lists, day - timedelta(days=1))
        publish_messages(tmp_path, store.world, customers[::4], day, "best", 15)
        # category pages: the best ordering for the treatment arm, the worst for the control arm
        write_export(
            truth_pages(store, day), tmp_path / "exports", "category_rankings", day - timedelta(days=1)
        )
    marts = (
        "stg_impressions stg_lost_sales +fct_impressions fct_lost_sales +fct_inventory_daily +fct_exposed_customers "
        "+dim_products +fct_message_events"
    )
    warehouse = build_warehouse(tmp_path, store, first, third, select=marts)

    def facts() -> dict:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            one = lambda sql: con.execute(sql).fetchone()  # noqa: E731
            return {
                "impressions": one("SELECT count(*) FROM raw.impressions"),
                "mart": one(
                    "SELECT count(*), count(*) FILTER (WHERE clicked), sum(purchased_units), "
                    "round(sum(revenue), 2) FROM marts.fct_impressions"
                ),
                "clicks": one(
                    "SELECT count(DISTINCT (session_id, sku, placement)) FROM raw.events "
                    "WHERE placement IN ('for_you', 'category_page') AND event_type = 'view'"
                ),
                "placements": one(
                    "SELECT list(DISTINCT placement ORDER BY placement), "
                    "count(*) FILTER (WHERE placement = 'category_page') FROM marts.fct_impressions"
                ),
                "credited": one(
                    "SELECT count(*), count(*) FILTER (WHERE l.line_type = 'sale' AND l.customer_id = c.customer_id "
                    "AND l.sku = c.sku) FROM intermediate.int_impression_sales c "
                    "JOIN intermediate.int_order_lines l USING (order_id, line_no)"
                ),
                "lost": one("SELECT sum(qty) FROM raw.lost_sales"),
                "quarantined": one(
                    "SELECT (SELECT count(*) FROM raw.quarantine_impressions) "
                    "+ (SELECT count(*) FROM raw.quarantine_lost_sales)"
                ),
                "lost_mart": one("SELECT sum(lost_units) FROM marts.fct_lost_sales"),
                "exposed": one(
                    "SELECT count(*), sum(impressions), sum(clicks), round(sum(credited_revenue), 2) "
                    "FROM marts.fct_exposed_customers"
                ),
                "lost_inventory": one("SELECT sum(units_lost) FROM marts.fct_inventory_daily"),
                "message_events": one(
                    "SELECT count(*) FILTER (WHERE event_type = 'delivered'), count(*) FILTER (WHERE event_type = "
                    "'opened'), count(*) FILTER (WHERE event_type = 'clicked') FROM raw.message_events"
                ),
                "messages": one(
                    "SELECT count(*), count(*) FILTER (WHERE opened), count(*) FILTER (WHERE clicked), "
                    "round(sum(credited_revenue), 2), sum(credited_units) FROM marts.fct_message_events"
                ),
                "message_sales": one(
                    "SELECT round(sum(net_amount), 2), sum(qty) FROM intermediate.int_order_lines "
                    "WHERE order_id LIKE 'OM%' AND line_type = 'sale'"
                ),
            }

    before = facts()
    assert before["impressions"][0] > 20_000 and before["quarantined"] == (0,)
    assert before["mart"][0] == before["impressions"][0]
    assert before["placements"][0] == ["category_page", "for_you"] and before["placements"][1] > 5_000
    assert before["mart"][1] == before["clicks"][0] > 1_000
    assert before["credited"][0] == before["credited"][1] > 100 and before["mart"][2] > 0
    assert before["lost"] == before["lost_mart"] == before["lost_inventory"] and before["lost"][0] > 0
    assert before["exposed"][1:] == (before["mart"][0], before["mart"][1], before["mart"][3])
    # every delivered message is one mart row; the sales of the sessions its clicks opened are credited to it
    assert before["messages"][:3] == before["message_events"] and before["messages"][0] > 500
    assert before["messages"][3:] == before["message_sales"] and before["message_sales"][1] > 0
    from ml.feedback.online import online_metrics_day
    from ml.feedback.summaries import impressions_summary, lost_sales_summary

    with duckdb.connect(str(warehouse), read_only=True) as con:
        metrics, uplift = online_metrics_day(con, third, resamples=300)  # measures the exposures of day 2
        exposed_per_arm = dict(
            con.execute(
                "SELECT arm, count(DISTINCT customer_id) FROM marts.fct_impressions WHERE impression_date = ? "
                "AND placement = 'for_you' GROUP BY arm",
                [second],
            ).fetchall()
        )
        revenue_per_exposed = dict(
            con.execute(
                "SELECT e.arm, sum(l.net_amount) / (SELECT count(DISTINCT customer_id) FROM marts.fct_impressions "
                "  WHERE impression_date = ? AND arm = e.arm AND placement = 'for_you') "
                "FROM (SELECT DISTINCT customer_id, arm FROM marts.fct_impressions "
                "      WHERE impression_date = ? AND placement = 'for_you') e "
                "JOIN marts.fct_order_items l ON l.customer_id = e.customer_id AND l.order_date = ? AND l.is_sale "
                "GROUP BY e.arm",
                [second, second, second],
            ).fetchall()
        )
    lists = metrics[metrics["placement"] == "for_you"]
    assert lists.set_index("arm")["exposed_customers"].to_dict() == exposed_per_arm
    by_metric = uplift[uplift["placement"] == "for_you"].set_index("metric")
    for metric in ("ctr", "conversion", "credited_revenue"):  # oracle against random: beyond doubt
        assert by_metric.loc[metric, "ci_low"] > 0, metric
    # the category pages are measured on their own: the best page against the worst, clicked more beyond doubt
    pages = uplift[uplift["placement"] == "category_page"].set_index("metric")
    assert pages.loc["ctr", "ci_low"] > 0 and set(pages["treatment_model"]) == {"category_pages"}
    for arm in ("treatment", "control"):
        assert by_metric.loc["revenue", arm] == pytest.approx(revenue_per_exposed[arm])

    with duckdb.connect(str(warehouse), read_only=True) as con:
        shown = impressions_summary(con, third)
        lost = lost_sales_summary(con, third)
        ctr = con.execute(
            "SELECT arm, avg(clicked::int), count(DISTINCT customer_id) FROM marts.fct_impressions "
            "WHERE impression_date = ? AND placement = 'for_you' GROUP BY arm",
            [third],
        ).fetchall()
        lost_units = con.execute(
            "SELECT sum(qty) FROM raw.lost_sales WHERE _event_date = ?", [third]
        ).fetchone()
    for arm, rate, exposed in ctr:
        assert shown["metrics"][f"ctr_{arm}"] == pytest.approx(rate)
        assert shown["metrics"][f"exposed_customers_{arm}"] == exposed > 0
    assert {arm for arm, _, _ in ctr} == {
        "treatment",
        "control",
    }  # the split the shop records: both arms seen
    assert shown["metrics"]["category_page_ctr_treatment"] > shown["metrics"]["category_page_ctr_control"] > 0
    assert lost["metrics"]["lost_units"] == lost_units[0] > 0
    store.write_day(third, tmp_path / "landing")
    load_and_build(tmp_path, store.name, store.tables, third, third, select=marts)
    assert facts() == before


# -------------------------------------------------------------------------------------------- category pages
def truth_pages(store: ClosedLoopStore, day: date) -> pd.DataFrame:
    """A ``category_rankings`` export whose ranked page is every category's launched products by their mean true
    appeal and whose bestseller ordering is the same products the other way round: the best and the worst page."""
    from ml.search.category_pages import PAGE_COLUMNS
    from ml.sources.simulated import CATEGORIES, START_DATE, for_you_appeal

    world = store.world
    launched = np.flatnonzero(world.product_launch_day <= (day - START_DATE).days)
    sample = np.arange(0, world.spec.n_customers, 5)
    rows = []
    for c, category in enumerate(CATEGORIES):
        products = launched[world.product_cat[launched] == c]
        appeal = for_you_appeal(world, np.repeat(sample, len(products)), np.tile(products, len(sample)))
        order = products[np.argsort(-appeal.reshape(len(sample), -1).mean(axis=0), kind="stable")]
        for ordering, seq in (("ranked", order[:50]), ("bestsellers", order[::-1][:50])):
            rows += [
                {"category": category, "ordering": ordering, "segment_id": 0, "rank": r, "sku": world.skus[p]}
                for r, p in enumerate(seq, 1)
            ]
    frame = pd.DataFrame(rows)
    extra = {"title": "t", "brand": "b", "price_band": "mid", "hot": 0.0, "new": 0.0, "relevant": 0.0}
    return frame.assign(score=1.0 / frame["rank"], reason="", **extra)[PAGE_COLUMNS]


def test_browsing_sessions_see_their_arms_category_page_and_a_better_page_is_clicked_more(tmp_path):
    from ml.search.category_pages import page_arms

    store = shop(tmp_path)
    pages = truth_pages(store, DAY)
    write_export(pages, tmp_path / "exports", "category_rankings", DAY - timedelta(days=1))
    publish(
        tmp_path,
        random_lists(store.world, np.arange(store.world.spec.n_customers), DAY),
        DAY - timedelta(days=1),
    )
    tables = store.day_tables(DAY)
    impressions = tables["impressions"].to_pandas()
    events = tables["events"].to_pandas()
    shown = impressions[impressions["placement"] == "category_page"]
    assert len(shown) > 5_000 and set(impressions["placement"]) == {"for_you", "category_page"}
    # only sessions that browsed a category see a page, and each arm is the customer's hashed arm
    browsing = set(events.loc[events["placement"] == "category", "session_id"])
    assert set(shown["session_id"]) <= browsing
    assert (shown["arm"].to_numpy() == page_arms(shown["customer_id"])).all()
    assert 0.4 < (shown.drop_duplicates("customer_id")["arm"] == "control").mean() < 0.6
    versions = shown.groupby("arm")["model_version"].unique().map(list).to_dict()
    assert versions == {"control": ["bestsellers-2025-01-09"], "treatment": ["category_pages-2025-01-09"]}
    # a page is the first ten of its arm's ordering, in order
    page_of = pages.set_index(["category", "ordering", "rank"])["sku"]
    category_of = pages.drop_duplicates("sku").set_index("sku")["category"]
    first = shown.groupby("session_id").head(10)
    ordering = np.where(first["arm"] == "control", "bestsellers", "ranked")
    expected = page_of.loc[list(zip(first["sku"].map(category_of), ordering, first["rank"], strict=True))]
    assert (expected.to_numpy() == first["sku"].to_numpy()).all()
    assert shown.groupby("session_id")["rank"].max().max() == 10
    # the clicks are views at the page's placement of what it showed; the better page is clicked far more
    clicks = events[(events["placement"] == "category_page") & (events["event_type"] == "view")]
    pairs = {(s, k) for s, k in shown[["session_id", "sku"]].itertuples(index=False)}
    assert {(s, k) for s, k in clicks[["session_id", "sku"]].itertuples(index=False)} <= pairs
    clicked = shown.merge(clicks[["session_id", "sku"]].drop_duplicates().assign(click=1), how="left")
    ctr = clicked["click"].fillna(0).groupby(clicked["arm"]).mean()
    assert ctr["treatment"] > 1.8 * ctr["control"] > 0
    # the same exports give the same day again
    assert store.day_tables(DAY)["impressions"].equals(tables["impressions"])


def test_a_customers_page_follows_its_price_band_and_recent_views():
    from ml.shop.pages import CategoryPages
    from ml.sources.simulated import CATEGORIES

    store = ClosedLoopStore("small", 42, exports_root=Path("/nonexistent"), state_root=Path("/nonexistent"))
    world = store.world
    skus = world.skus[world.product_cat == 0][:12]
    base = {"category": CATEGORIES[0], "segment_id": 0, "title": "t", "brand": "b", "hot": 0.0, "new": 0.0}
    ranked = pd.DataFrame(
        [
            base
            | {
                "ordering": "ranked",
                "rank": r,
                "sku": s,
                "score": 1.0 - 0.001 * r,
                "relevant": 0.0,
                "reason": "",
            }
            | {"price_band": "low" if r == 12 else "high"}
            for r, s in enumerate(skus, 1)
        ]
    )
    profiles = pd.DataFrame(
        {
            "customer_id": world.customer_ids[:2],
            "segment_id": [0, 0],
            "preferred_price_band": ["low", None],
            "recently_viewed": [[], [skus[10]]],
        }
    )
    treated = np.array(["treatment"] * world.spec.n_customers, dtype=object)
    show = CategoryPages(world, ranked, DAY - timedelta(days=1), profiles, treated, DAY)
    products, list_id, version, arm = show(np.array([0, 1, 2]), np.array([0, 0, 0]))
    position = {p: i for i, p in enumerate(pd.Index(world.skus).get_indexer(skus))}
    first = [[position[p] for p in row if p >= 0][:3] for row in products]
    assert first[0][0] == 11  # the one low-priced product, in customer 0's band, moves to the top
    assert first[1][0] == 10  # what customer 1 viewed lately moves to the top
    assert first[2] == [0, 1, 2]  # no profile: the page as published
    assert len(set(list_id)) == 3 and set(version) == {"category_pages-2025-01-09"}
