"""End to end above the marts: profiles, forecasts, the replenishment plan and recommendations materialised by
Dagster on three weeks of the small simulated store, read back from DuckDB, the Parquet exports and the API;
and a blocking quality check that stops the training side."""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ml.charts import PNG_SIGNATURE
from tests.frames import assert_same_frame
from tests.pipeline_helpers import all_assets, resources_for
from tests.warehouses import MARTS, build_simulated

pytestmark = pytest.mark.e2e

FIRST, LAST = "2025-01-01", "2025-01-21"  # the simulated store's first three weeks
DAYS = (date.fromisoformat(LAST) - date.fromisoformat(FIRST)).days + 1
ML_GROUPS = ("features", "people", "goods", "place", "supply", "recommend")
FAST = {"sasrec_time_budget_seconds": 10.0, "top_k": 10}
RUN_CONFIG = {
    "ops": {
        f"recommend__{name}": {"config": FAST} for name in ("candidate_models", "champion", "recommendations")
    }
}


# Search and the category pages are read on the last day only: built with the models, not on every day.
LAST_DAYS_ONLY = dg.AssetSelection.assets(
    *(dg.AssetKey(["goods", name]) for name in ("item_embeddings", "search_index", "category_rankings"))
)


def materialize_groups(
    data_dir: Path, groups, first: str, last: str, raise_on_error: bool = True, selection=None
):
    """Materialise ``groups`` (or ``selection``, made of them) over ``first..last`` in one run."""
    tags = (
        {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last} if first != last else {}
    )
    return dg.materialize(
        all_assets(),
        selection=selection if selection is not None else dg.AssetSelection.groups(*groups),
        resources=resources_for(data_dir),
        partition_key=None if tags else first,
        tags=tags,
        run_config=RUN_CONFIG if "recommend" in groups else None,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


@pytest.fixture(scope="module")
def ml_run(tmp_path_factory):
    """The data directory and the result of the run that built the forecasts and recommendations."""
    data_dir = tmp_path_factory.mktemp("ml_layers")
    # The layers up to the marts as the daily job builds them (landing files, the raw loader, dbt), without
    # Dagster: its run of those layers and their checks is test_pipeline_e2e.py's.
    build_simulated(data_dir, days=DAYS, select=MARTS)
    # Profiles need every day's aggregates; the models, search and the category pages only the last days.
    profiles, models = ("features", "people", "goods", "place"), ("supply", "recommend", "marketing")
    materialize_groups(
        data_dir, profiles, FIRST, LAST, selection=dg.AssetSelection.groups(*profiles) - LAST_DAYS_ONLY
    )
    return data_dir, materialize_groups(
        data_dir, models, "2025-01-19", LAST, selection=dg.AssetSelection.groups(*models) | LAST_DAYS_ONLY
    )


@pytest.fixture(scope="module")
def store(ml_run):
    return ml_run[0]


def q(data_dir: Path, sql: str, params=None):
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_profiles_exist_for_every_day_and_only_use_the_past(store):
    days = q(store, "SELECT count(DISTINCT as_of_date) FROM features.user_profiles")[0][0]
    assert days == DAYS
    # A customer first seen on the last day has no profile on earlier days.
    late = q(
        store,
        "SELECT customer_id, first_seen_date FROM marts.dim_customers WHERE first_seen_date > DATE '2025-01-10' LIMIT 1",
    )
    if late:
        cid, first_seen = late[0]
        earlier = q(
            store,
            "SELECT count(*) FROM features.user_profiles WHERE customer_id = ? AND as_of_date < ?",
            [cid, first_seen],
        )[0][0]
        assert earlier == 0


def test_forecasts_are_non_negative_ordered_and_cover_the_horizon(store):
    rows = q(
        store,
        "SELECT count(DISTINCT sku), min(mean), count(*) FILTER (WHERE q90 < q50), max(horizon_day), "
        "count(DISTINCT as_of_date) FROM supply.demand_forecast",
    )[0]
    n_skus, min_mean, disordered, horizon, days = rows
    assert n_skus > 100 and min_mean >= 0 and disordered == 0 and horizon == 28 and days == 3
    # Forecasts made on a day use nothing after it: the first forecast date is after the as-of day.
    assert (
        q(store, "SELECT count(*) FROM supply.demand_forecast WHERE forecast_date <= as_of_date")[0][0] == 0
    )


def test_the_forecast_shows_a_chart_of_forecast_against_actuals(ml_run):
    """The UI gets an image (a data URI the markdown renders), not a link to a file it cannot open."""
    events = ml_run[1].asset_materializations_for_node("supply__demand_forecast")
    assert sorted(e.partition for e in events) == ["2025-01-19", "2025-01-20", "2025-01-21"]
    chart = events[-1].metadata["forecast_chart"]
    assert isinstance(chart, dg.MarkdownMetadataValue)
    assert chart.value.startswith("![forecast vs actuals, top SKUs, as of 2025-01-21](data:image/png;base64,")
    png = base64.b64decode(chart.value.split("base64,", 1)[1].rstrip(")"))
    assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000
    # the daily (fast) model is fitted on the day's own history: no weekly selection to describe
    meta = events[-1].metadata
    assert meta["model_selected_on"].value == "2025-01-21" and meta["model_selection_reused"].value is False
    assert "model_selection_history" not in meta


def test_replenishment_plan_is_consistent(store):
    bad = q(
        store,
        # below the lead-time demand only where a minimum order lasts more than a cycle (a fill-rate reorder point)
        "SELECT count(*) FROM supply.replenishment_plan WHERE reorder_point < 0 "
        "OR (reorder_point < lead_time_demand AND min_order_qty <= order_up_to - reorder_point) "
        "OR order_qty < 0 OR stockout_risk < 0 OR stockout_risk > 1",
    )[0][0]
    total = q(
        store, "SELECT count(*) FROM supply.replenishment_plan WHERE as_of_date = ?", [date(2025, 1, 21)]
    )[0][0]
    assert total > 100 and bad == 0


def test_recommendations_exclude_purchases_and_cite_the_history(store):
    day = date(2025, 1, 21)
    n, customers, k = q(
        store,
        "SELECT count(*), count(DISTINCT customer_id), max(rank) FROM outputs.recommendations WHERE as_of_date = ?",
        [day],
    )[0]
    assert customers > 500 and k == FAST["top_k"] and n == customers * k
    already_bought = q(
        store,
        "SELECT count(*) FROM outputs.recommendations r JOIN marts.fct_order_items i "
        "ON i.customer_id = r.customer_id AND i.sku = r.sku AND i.is_sale AND i.order_date <= r.as_of_date "
        "WHERE r.as_of_date = ?",
        [day],
    )[0][0]
    assert already_bought == 0
    cited_not_in_history = q(
        store,
        "SELECT count(*) FROM outputs.recommendations r WHERE r.as_of_date = ? AND r.reason_sku IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM marts.fct_events e WHERE e.customer_id = r.customer_id "
        "AND e.sku = r.reason_sku AND e.event_date <= r.as_of_date)",
        [day],
    )[0][0]
    assert cited_not_in_history == 0
    # "bought together with X" is the basket associations' evidence: X and the item were bought in the same orders
    together, not_a_basket_pair = q(
        store,
        "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM features.basket_associations b "
        "WHERE b.as_of_date = r.as_of_date AND b.antecedent = r.reason_sku AND b.consequent = r.sku)) "
        "FROM outputs.recommendations r WHERE r.as_of_date = ? AND r.reason LIKE 'bought together with %'",
        [day],
    )[0]
    assert together > 0 and not_a_basket_pair == 0
    evaluated = q(
        store, 'SELECT count(*), min("NDCG@10") FROM recommend.daily_metrics WHERE eval_date = ?', [day]
    )[0]
    assert evaluated[0] >= 5 and evaluated[1] >= 0


def test_exports_match_the_warehouse(store):
    export = store / "exports" / "recommendations" / "date=2025-01-21" / "recommendations.parquet"
    with duckdb.connect() as con:
        n = con.execute("SELECT count(*) FROM read_parquet(?)", [str(export)]).fetchone()[0]
    assert (
        n
        == q(store, "SELECT count(*) FROM outputs.recommendations WHERE as_of_date = DATE '2025-01-21'")[0][0]
    )


def test_lists_built_a_few_customers_at_a_time_are_the_lists_stored_and_exported(store):
    """A large store's day is built and written in parts of customers: the parts make the same lists as the one
    part the small store's run wrote, and the export (streamed from the table) holds exactly the stored rows."""
    from ml.artifacts import ArtifactStore
    from ml.recommend.daily import RecommendSettings, recommend_day_parts
    from ml.recommend.interactions import read_items

    day = date(2025, 1, 21)
    columns = ["customer_id", "rank", "sku", "arm", "model_name", "list_id", "reason", "reason_sku"]
    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        parts = list(
            recommend_day_parts(
                con, ArtifactStore(store / "artifacts"), day, RecommendSettings(**FAST), read_items(con), 37
            )
        )
        stored = con.execute(
            "SELECT * FROM outputs.recommendations WHERE as_of_date = ? ORDER BY customer_id, rank", [day]
        ).df()
    assert len(parts) >= 5 and max(p["customer_id"].nunique() for p in parts) == 37
    built = pd.concat(parts, ignore_index=True)
    assert len(stored) > 1_000 and built["customer_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(built[columns], stored[columns], check_dtype=False)
    np.testing.assert_allclose(built["score"], stored["score"], rtol=1e-6)
    export = pd.read_parquet(
        store / "exports" / "recommendations" / "date=2025-01-21" / "recommendations.parquet"
    )
    assert "as_of_date" not in export
    pd.testing.assert_frame_equal(export[columns], stored[columns], check_dtype=False)


def test_a_failing_blocking_check_stops_the_training_side(store, tmp_path):
    """Duplicate an order in the marts: the blocking GX suite on fct_orders fails and the profile step of that
    partition does not run."""
    import shutil

    data_dir = tmp_path / "broken"
    shutil.copytree(store, data_dir, ignore=shutil.ignore_patterns("dagster_home"))
    with duckdb.connect(str(data_dir / "warehouse.duckdb")) as con:
        con.execute(
            "INSERT INTO marts.fct_orders SELECT * FROM marts.fct_orders WHERE order_date = DATE '2025-01-21' LIMIT 1"
        )
    result = dg.materialize(
        all_assets(),
        selection=dg.AssetSelection.checks_for_assets(dg.AssetKey(["marts", "fct_orders"]))
        | dg.AssetSelection.groups("features"),
        resources=resources_for(data_dir),
        partition_key=LAST,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    gx = [e for e in result.get_asset_check_evaluations() if e.check_name == "gx_fct_orders"]
    assert gx and not gx[0].passed
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not {"features/customer_windows", "people/user_profiles"} & materialized


def test_retention_deletes_old_bundles_but_not_what_a_running_run_reads(store, tmp_path):
    """The recommend assets never delete a bundle; the retention job keeps the newest days and every day an
    unfinished run reads (here a re-run of 01-19 in progress: that day and the one before), and the lists served
    from the newest bundle stay the same."""
    import shutil

    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from ml.artifacts import ArtifactStore
    from ml.recommend.bundles import BUNDLES
    from orchestration.definitions import defs

    data_dir = tmp_path / "pruned"
    shutil.copytree(store, data_dir, ignore=shutil.ignore_patterns("dagster_home"))
    bundles = ArtifactStore(data_dir / "artifacts")
    assert bundles.names(BUNDLES) == ["2025-01-19", "2025-01-20", "2025-01-21"]
    before = q(
        data_dir,
        "SELECT customer_id, rank, sku FROM outputs.recommendations WHERE as_of_date = ? ORDER BY 1, 2",
        [date(2025, 1, 21)],
    )
    instance = dg.DagsterInstance.ephemeral()
    running = DagsterRun(
        job_name="daily_pipeline", status=DagsterRunStatus.STARTED, tags={"dagster/partition": "2025-01-19"}
    )
    instance.add_run(running)
    job = defs.resolve_job_def("recommender_bundle_retention")
    result = job.execute_in_process(
        instance=instance,
        resources=resources_for(data_dir),
        run_config={"ops": {"prune_recommender_bundles": {"config": {"bundle_retention_days": 2}}}},
    )
    assert result.output_for_node("prune_recommender_bundles") == 0  # 01-19: read by the run in progress
    assert bundles.names(BUNDLES) == ["2025-01-19", "2025-01-20", "2025-01-21"]
    instance.report_run_canceled(running)  # the run ends: nothing protects the old days any more
    result = job.execute_in_process(
        instance=instance,
        resources=resources_for(data_dir),
        run_config={"ops": {"prune_recommender_bundles": {"config": {"bundle_retention_days": 2}}}},
    )
    assert result.output_for_node("prune_recommender_bundles") == 1
    assert bundles.names(BUNDLES) == ["2025-01-20", "2025-01-21"]
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert [e.event_specific_data.asset_observation.partition for e in observed] == ["2025-01-19"]
    again = dg.materialize(
        all_assets(),
        selection=dg.AssetSelection.assets(dg.AssetKey(["recommend", "recommendations"])),
        resources=resources_for(data_dir),
        partition_key=LAST,
        run_config={"ops": {"recommend__recommendations": {"config": FAST}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert again.success
    after = q(
        data_dir,
        "SELECT customer_id, rank, sku FROM outputs.recommendations WHERE as_of_date = ? ORDER BY 1, 2",
        [date(2025, 1, 21)],
    )
    assert after == before and len(after) > 0


def test_the_forecast_backtest_scores_each_day_against_the_forecast_made_the_day_before(ml_run):
    store, result = ml_run
    rows = q(
        store, "SELECT day, lag, origin_date, n_points, WAPE FROM supply.forecast_backtest ORDER BY day, lag"
    )
    # forecasts exist from 01-19 on: lag 1 on 01-20 and 01-21, no forecast 7 trading days before either
    assert [(str(r[0]), r[1], str(r[2])) for r in rows] == [
        ("2025-01-20", 1, "2025-01-19"),
        ("2025-01-21", 1, "2025-01-20"),
    ]
    # WAPE by hand: the forecasts made on 01-20 for 01-21 against the demand of 01-21 (net of same-day reversals)
    abs_error, actual = q(
        store,
        "SELECT sum(abs(f.mean - coalesce(d.units - d.units_reversed_same_day, 0))), "
        "sum(coalesce(d.units - d.units_reversed_same_day, 0)) "
        "FROM supply.demand_forecast f LEFT JOIN marts.fct_daily_sku_demand d "
        "ON d.sku = f.sku AND d.demand_date = f.forecast_date "
        "WHERE f.as_of_date = DATE '2025-01-20' AND f.forecast_date = DATE '2025-01-21'",
    )[0]
    assert rows[-1][4] == pytest.approx(abs_error / actual) and rows[-1][3] > 100
    (event,) = [
        e for e in result.asset_materializations_for_node("supply__forecast_backtest") if e.partition == LAST
    ]
    assert event.metadata["lag1_WAPE"].value == pytest.approx(rows[-1][4])
    assert "| lag |" in event.metadata["by_lag"].value


def test_the_alternate_supplier_is_chosen_only_when_it_prevents_a_stockout_or_an_overstock(store):
    plan = (
        duckdb.connect(str(store / "warehouse.duckdb"), read_only=True)
        .execute("SELECT * FROM supply.replenishment_plan WHERE as_of_date = ?", [date(2025, 1, 21)])
        .df()
    )
    plan["limit"] = 1 - plan["service_level"]
    for_risk = plan[plan["supplier_choice"] == "stock-out risk"]
    assert len(for_risk) > 0, "the small store's plan should need an alternate supplier somewhere"
    assert (for_risk["stockout_risk"] > for_risk["limit"]).all()
    assert (for_risk["alt_stockout_risk"] <= for_risk["limit"]).all()
    assert (for_risk["alt_lead_time_days"] < for_risk["lead_time_days"]).all()
    # an alternate chosen for its minimum adds no risk: within the bound, or no riskier than the primary
    for_minimum = plan[plan["supplier_choice"] == "minimum order"]
    assert len(for_minimum) > 0, "slow movers with a large primary minimum should move to the alternate"
    no_riskier = for_minimum["alt_stockout_risk"] <= for_minimum[["stockout_risk", "limit"]].max(axis=1)
    assert no_riskier.all()
    # every order is the gap to the order-up-to level, raised to the chosen supplier's minimum
    ordering = plan[plan["order_qty"] > 0]
    gap = np.ceil(ordering["order_up_to"] - ordering["on_hand"] - ordering["on_order"])
    assert (ordering["order_qty"] - ordering["units_over_need"]).to_numpy() == pytest.approx(gap.to_numpy())
    assert (ordering["order_qty"] == np.maximum(gap, ordering["min_order_qty"])).all()
    alternate = plan[plan["use_alternate"]]
    assert set(alternate["supplier_choice"]) <= {"stock-out risk", "minimum order"}
    assert (alternate["order_from"] == alternate["alt_supplier_id"]).all()
    primary = plan[~plan["use_alternate"]]
    assert (primary["order_from"] == primary["supplier_id"]).all() and set(primary["supplier_choice"]) == {
        "primary"
    }
    assert ((plan["order_qty"] == 0) | (plan["order_qty"] >= plan["min_order_qty"])).all()
    # at risk yet left with the primary: no faster alternate, or the alternate would not prevent it either
    at_risk = primary[primary["stockout_risk"] > 1 - primary["service_level"]]
    faster = at_risk["alt_lead_time_days"] < at_risk["lead_time_days"]
    assert (at_risk.loc[faster, "alt_stockout_risk"] > 1 - at_risk.loc[faster, "service_level"]).all()


def test_the_read_api_serves_the_pipelines_own_exports(store):
    from tests.api_server import get, running_api

    day = "2025-01-21"
    customer, skus = q(
        store,
        "SELECT customer_id, list(sku ORDER BY rank) FROM outputs.recommendations WHERE as_of_date = ? "
        "GROUP BY 1 ORDER BY 1 LIMIT 1",
        [date(2025, 1, 21)],
    )[0]
    sku, means = q(
        store,
        "SELECT sku, list(mean ORDER BY horizon_day) FROM supply.demand_forecast WHERE as_of_date = ? "
        "AND horizon_day <= 7 GROUP BY 1 ORDER BY 1 LIMIT 1",
        [date(2025, 1, 21)],
    )[0]
    with running_api(store / "exports") as base:
        status, health = get(base + "/health")
        assert status == 200 and health["latest_as_of"]["recommendations"] == day
        assert health["latest_as_of"]["demand_forecast"] == day
        status, body = get(f"{base}/recommendations/{customer}?k=5")
        assert status == 200 and [i["sku"] for i in body["items"]] == skus[:5]
        status, body = get(f"{base}/forecast/{sku}?horizon=7")
        assert status == 200 and [d["mean"] for d in body["days"]] == pytest.approx(means)
        status, body = get(f"{base}/replenishment?needs_order=true&limit=10000")
        ordered = q(
            store,
            "SELECT count(*) FROM supply.replenishment_plan WHERE as_of_date = ? AND order_qty > 0",
            [date(2025, 1, 21)],
        )[0][0]
        assert status == 200 and len(body["rows"]) == ordered


def test_messages_are_grounded_targeted_by_the_playbook_capped_and_served(store):
    import json

    from tests.api_server import get, running_api

    rows = q(
        store,
        "SELECT m.as_of_date, m.customer_id, m.campaign, m.status, m.arm, m.facts, m.subject, m.body, "
        "p.lifecycle_stage, p.f_score, p.m_score FROM marketing.messages AS m JOIN features.user_profiles AS p "
        "ON p.customer_id = m.customer_id AND p.as_of_date = m.as_of_date ORDER BY 1, 2",
    )
    catalogue = {sku: (t, p) for sku, t, p in q(store, "SELECT sku, title, price FROM marts.dim_products")}
    assert {r[0] for r in rows} == {date(2025, 1, 19), date(2025, 1, 20), date(2025, 1, 21)}
    assert len(rows) > 50 and {r[3] for r in rows} <= {"ready", "holdout"}  # templates: nothing blocked
    # three weeks into the store every customer is new: frequent high spenders get perks, the others a welcome
    # (win-back and discount targeting are unit-tested in tests/test_marketing.py)
    assert {r[2] for r in rows} == {"member_perks", "welcome"}
    for _, _, campaign, status, arm, facts, subject, body, stage, f, m in rows:
        if campaign == "member_perks":
            assert f >= 4 and m >= 4 and "%" not in subject + body
        elif campaign == "win_back":
            assert stage == "at_risk"
        elif campaign == "welcome":
            assert stage == "new"
        assert (status == "holdout") == (arm == "control")
        sheet = json.loads(facts)
        for product in sheet["products"]:  # every featured product is the catalogue's, in stock, quoted
            title, price = catalogue[product["sku"]]
            assert (
                product["title"] == title
                and product["price"] == pytest.approx(price)
                and product["on_hand"] > 0
            )
            assert f'"{title}"' in body
    # the cap: nobody is sent (or held out) on two of these three days
    customers = [r[1] for r in rows]
    assert len(customers) == len(set(customers))
    holdout_share = sum(r[3] == "holdout" for r in rows) / len(rows)
    assert 0.03 < holdout_share < 0.2
    # with no answers logged (open loop) the policy stays the uniform prior: the arms drawn and their logged
    # propensities are its, over the arms each campaign allows (member perks: one offer level)
    decisions = q(store, "SELECT as_of_date, adopted, reason FROM marketing.message_policy ORDER BY 1")
    assert [d[0] for d in decisions] == [date(2025, 1, 19), date(2025, 1, 20), date(2025, 1, 21)]
    assert not any(d[1] for d in decisions) and {d[2] for d in decisions} == {
        "no logged sends with answers yet"
    }
    arms = q(store, "SELECT campaign, offer_level, propensity, policy_version FROM marketing.messages")
    assert {(c, round(p, 2)) for c, _, p, _ in arms} <= {("member_perks", 0.33), ("welcome", 0.11)}
    assert {lv for c, lv, _, _ in arms if c == "member_perks"} == {"standard"}
    assert {lv for c, lv, _, _ in arms if c == "welcome"} == {"low", "standard", "high"}
    assert len({v for *_, v in arms}) == 1
    # the export holds the ready messages only; the API serves the latest valid one with its facts
    day21 = [r for r in rows if r[0] == date(2025, 1, 21) and r[3] == "ready"]
    exported = q(
        store, f"SELECT count(*) FROM read_parquet('{store}/exports/messages/date=2025-01-21/*.parquet')"
    )
    assert exported[0][0] == len(day21)
    customer = day21[0][1]
    held = next(r[1] for r in rows if r[3] == "holdout")
    with running_api(store / "exports") as base:
        status, body = get(f"{base}/messages/{customer}")
        assert status == 200 and body["as_of"] == "2025-01-21"
        assert (
            body["messages"][0]["subject"] == day21[0][6]
            and body["messages"][0]["facts"]["customer_id"] == customer
        )
        status, _ = get(f"{base}/messages/{held}")
        assert status == 404  # the control arm is never sent anything


def test_the_shop_answers_the_messages_the_platform_exported(store, tmp_path):
    from ml.shop.front import ClosedLoopStore

    shop = ClosedLoopStore("small", 42, exports_root=store / "exports", state_root=tmp_path / "shop")
    answered = shop.day_tables(
        date(2025, 1, 20)
    )  # sends what the platform wrote on the 19th (the cap's first day)
    events = answered["message_events"].to_pandas()
    ready = q(
        store,
        "SELECT message_id, discount_pct FROM marketing.messages WHERE as_of_date = DATE '2025-01-19' "
        "AND status = 'ready'",
    )
    assert set(events["message_id"]) == {m for m, _ in ready}  # every customer here signed up before the day
    counts = events["event_type"].value_counts()
    assert counts["delivered"] == len(ready) and 0 < counts.get("opened", 0) < len(ready)
    # a purchase from a message's visit is sold at the message's offer (or the day's better promotion)
    orders = answered["orders"].to_pandas()[["order_id", "session_id"]]
    clicks = events.loc[events["event_type"] == "clicked", ["session_id", "message_id", "sku"]]
    offer = pd.DataFrame(ready, columns=["message_id", "discount_pct"])
    bought = (
        answered["order_items"]
        .to_pandas()
        .merge(orders, on="order_id")
        .merge(clicks, on="session_id", suffixes=("", "_clicked"))
        .merge(offer, on="message_id")
    )
    assert len(bought) > 0 and (bought["sku"] == bought["sku_clicked"]).all()
    assert (bought["discount"] >= bought["discount_pct"] / 100 - 1e-9).all()


def test_rerunning_a_day_of_messages_replaces_it_and_sends_nobody_twice(store):
    before = q(
        store, "SELECT * FROM marketing.messages WHERE as_of_date = DATE '2025-01-20' ORDER BY message_id"
    )
    result = materialize_groups(store, ("marketing",), "2025-01-20", "2025-01-20")
    after = q(
        store, "SELECT * FROM marketing.messages WHERE as_of_date = DATE '2025-01-20' ORDER BY message_id"
    )
    assert after == before and len(after) > 0
    (event,) = result.asset_materializations_for_node("marketing__messages")
    assert event.metadata["grounding_pass_rate"].value == 1.0
    assert event.metadata["written"].value == len(after)
    assert "| campaign |" in event.metadata["by_campaign_and_family"].value


def test_interactions_come_in_one_order_whatever_order_the_warehouse_returns(store):
    """Transition and SASRec read event order, so events with the same timestamp must not come in the order
    DuckDB's threads happen to return them: the interactions are ordered by customer, time and line."""
    from ml.recommend.interactions import read_interactions

    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        con.execute("SET threads = 2")
        first = read_interactions(con, date(2025, 1, 15), date(2025, 1, 21))
        second = read_interactions(con, date(2025, 1, 15), date(2025, 1, 21))
    assert len(first) > 10_000
    assert_same_frame(first, second)
    views = first[first["event_type"] != "purchase"]
    purchases = first[first["event_type"] == "purchase"]
    for part in (views, purchases):
        keys = list(zip(part["customer_id"], part["event_ts"], strict=True))
        assert keys == sorted(keys)
    # The lines of one order share its timestamp: without an order, their sequence would change run to run.
    tied = purchases.duplicated(["customer_id", "event_ts"], keep=False).sum()
    assert tied > 100, "no tied events: the test would not see an unstable order"


def _assert_the_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Two reads of interaction rows (or steps) equal row for row, in the same order; the id columns compared as
    text (each read has its own categories)."""
    as_text = {c: str for c in ("customer_id", "sku", "event_type", "region") if c in got}
    pd.testing.assert_frame_equal(
        got.astype(as_text).reset_index(drop=True), want.astype(as_text).reset_index(drop=True)
    )


def _by_customer(regions: pd.Series) -> dict:
    """customer (as text) -> region, for comparing two reads' regions whatever their order and id types."""
    return regions.rename(index=str).sort_index().to_dict()


def test_the_daily_evaluation_reads_only_the_buyers_histories_and_scores_as_the_whole_window_did(store):
    """``evaluate_day`` reads what scoring needs of the day's buyers' histories only (the customers it scores,
    :func:`read_served_history`); its metrics must be those of scoring them with the whole window's log."""
    from datetime import timedelta

    from ml.artifacts import ArtifactStore
    from ml.recommend.bundles import load_bundle
    from ml.recommend.daily import TRAINING_WINDOW_DAYS, evaluate_day
    from ml.recommend.evaluation import evaluate_next_day, flatten_metrics
    from ml.recommend.interactions import read_interactions, read_purchases

    day = date.fromisoformat(LAST)
    artifacts = ArtifactStore(store / "artifacts")
    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        got = evaluate_day(con, artifacts, day)
        window = (day - timedelta(days=TRAINING_WINDOW_DAYS), day - timedelta(days=1))
        everyone = read_interactions(con, *window)
        purchases = read_purchases(con, day, day)
        expected = evaluate_next_day(load_bundle(artifacts, day - timedelta(days=1)), everyone, purchases)
    expected = flatten_metrics(day, expected).rename(columns={"date": "eval_date"})
    assert len(got) >= 5 and got["users"].min() > 0
    pd.testing.assert_frame_equal(got, expected)


def test_the_daily_lists_read_only_the_histories_of_the_customers_they_serve(store):
    """``recommend_day_parts`` serves the customers active since a cut-off and reads only their histories: the
    customers must be those of the whole window's log with a row at or after the cut-off, and their rows the
    same as that log's (a list depends only on its customer's history)."""
    from datetime import timedelta

    from ml.recommend.interactions import active_customers, read_interactions

    day = date.fromisoformat(LAST)
    first = day - timedelta(days=13)
    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        everyone = read_interactions(con, first, day)
        sizes = []
        for days_back in (13, 6, 0):
            since = pd.Timestamp(day, tz="UTC") - pd.Timedelta(days=days_back)
            active = active_customers(con, first, day, since)
            expected = sorted(everyone.loc[everyone["event_ts"] >= since, "customer_id"].astype(str).unique())
            assert active == expected
            theirs = read_interactions(con, first, day, customers=active)
            _assert_the_same_rows(theirs, everyone[everyone["customer_id"].isin(active)])
            sizes.append((len(active), len(theirs)))
    # the whole window at the earliest cut-off; fewer customers and rows as it moves to the last day
    assert sizes[0] == (everyone["customer_id"].nunique(), len(everyone))
    assert sizes[0][0] > sizes[1][0] > sizes[2][0] > 0 and sizes[0][1] > sizes[1][1] > sizes[2][1]


def test_the_served_histories_collapsed_in_the_warehouse_equal_those_of_the_whole_log(store):
    """The daily lists build each customer's history from :func:`read_served_history` (the collapse of repeated
    events and the cap on steps done in SQL) instead of from their whole log: the sequences, purchases and regions
    must be those that :func:`histories` builds from the log, and the steps those of ``collapse_repeats`` at any
    cap (the log has events at the same instant, so their order is tested too)."""
    from datetime import timedelta

    from ml.artifacts import ArtifactStore
    from ml.recommend.bundles import load_bundle
    from ml.recommend.interactions import (
        clean_events,
        collapse_repeats,
        read_interactions,
        read_served_history,
    )
    from ml.recommend.scoring import histories, served_histories

    day = date.fromisoformat(LAST)
    first = day - timedelta(days=20)
    bundle = load_bundle(ArtifactStore(store / "artifacts"), day)
    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        log = read_interactions(con, first, day)
        customers = sorted(log["customer_id"].astype(str).unique())[::2]  # every other customer
        log = log[log["customer_id"].astype(str).isin(customers)]
        served = read_served_history(con, first, day, customers)
        capped = read_served_history(con, first, day, customers, max_history=5)[0]
    expected, got = histories(bundle, customers, log), served_histories(bundle, customers, *served)
    for name in ("indptr", "items", "user_ids"):
        np.testing.assert_array_equal(getattr(got.seqs, name), getattr(expected.seqs, name))
    assert len(got.seqs.items) > 1000 and got.purchased.nnz > 100
    assert (got.purchased != expected.purchased).nnz == 0
    assert list(got.regions) == list(expected.regions) and pd.notna(got.regions).all()
    _assert_the_same_rows(
        capped, collapse_repeats(clean_events(log), max_history=5)[["customer_id", "sku", "event_ts"]]
    )
    assert capped.groupby("customer_id", observed=True).size().max() == 5


def test_a_busy_customers_last_steps_are_read_from_the_recent_days_alone(store):
    """``read_served_history`` reads a customer with more than ``max_history`` steps in the last ``recent_days``
    from those days only, the others over the whole window: the steps and regions must be the whole log's either
    way, and both kinds of customer must be there (a cap of 20 steps, 5 recent days of a 21-day window)."""
    from datetime import timedelta

    from ml.recommend.interactions import (
        clean_events,
        collapse_repeats,
        last_regions,
        read_interactions,
        read_served_history,
    )

    day = date.fromisoformat(LAST)
    first, recent = day - timedelta(days=20), day - timedelta(days=4)
    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        clean = clean_events(read_interactions(con, first, day))
        steps, _, regions = read_served_history(con, first, day, None, max_history=20, recent_days=5)
    _assert_the_same_rows(steps, collapse_repeats(clean, max_history=20)[["customer_id", "sku", "event_ts"]])
    assert _by_customer(regions) == _by_customer(last_regions(clean))
    recent_rows = clean[clean["event_ts"] >= pd.Timestamp(recent, tz="UTC")]
    busy = collapse_repeats(recent_rows, max_history=None).groupby("customer_id", observed=True).size()
    busy = set(busy.index[busy > 20].astype(str))
    older = steps.loc[steps["event_ts"] < pd.Timestamp(recent, tz="UTC"), "customer_id"].astype(str)
    assert len(busy) > 20 and older.nunique() > 20 and not busy & set(older)
    # and customers whose last region is older than the recent days
    assert set(regions.index) - set(recent_rows["customer_id"].astype(str))


def test_the_training_log_read_in_the_warehouse_trains_the_models_of_the_whole_log(store):
    """``train_day`` reads its window with :func:`read_training_log` (the collapse, the cap and the counts done in
    DuckDB) instead of every row: the log must be :meth:`TrainingLog.from_frame` of the whole read, and the
    models trained on it the same (their manifests' data windows and their scores for every customer)."""
    from datetime import timedelta

    from ml.recommend.interactions import (
        TrainingLog,
        day_end,
        read_interactions,
        read_training_log,
    )
    from ml.recommend.scoring import histories, score_rows
    from ml.recommend.training import train_candidates

    day = date.fromisoformat(LAST)
    first = day - timedelta(days=20)
    with duckdb.connect(str(store / "warehouse.duckdb"), read_only=True) as con:
        rows = read_interactions(con, first, day)
        got = read_training_log(con, first, day, recent_days=5)
    expected = TrainingLog.from_frame(rows, before=day_end(day))
    _assert_the_same_rows(got.steps, expected.steps)
    _assert_the_same_rows(got.purchases, expected.purchases)
    assert _by_customer(got.regions) == _by_customer(expected.regions)
    assert sorted(got.skus) == sorted(expected.skus) and len(got.skus) > 100
    assert (got.events, got.customers, got.start) == (expected.events, expected.customers, expected.start)
    assert got.events == len(rows) and len(got.purchases) > 1000

    names = ("popularity", "segment_popularity", "itemknn", "ease", "transition")
    from_log, from_rows = (train_candidates(log, day, models=names) for log in (got, rows))
    assert from_log.manifest["data_window"] == from_rows.manifest["data_window"]
    customers = sorted(rows["customer_id"].astype(str).unique())
    hist = histories(from_rows, customers, rows)
    everyone = np.arange(len(customers))
    for name in names:
        np.testing.assert_array_equal(
            score_rows(from_log[name], hist, everyone), score_rows(from_rows[name], hist, everyone)
        )


def test_a_hashed_control_group_is_served_the_popularity_list(store):
    from ml.recommend.experiment import CONTROL, TREATMENT, arms

    rows = q(
        store,
        "SELECT customer_id, arm, model_name, count(DISTINCT list_id), count(*) FROM outputs.recommendations "
        "WHERE as_of_date = DATE '2025-01-21' GROUP BY ALL",
    )
    assert len(rows) > 200
    by_customer = {c: (arm, model) for c, arm, model, _, _ in rows}
    assert len(by_customer) == len(rows), "one arm and one model per customer and day"
    assert all(lists == 1 for *_, lists, _ in rows)
    expected = dict(zip(by_customer, arms(list(by_customer)), strict=True))
    assert all(arm == expected[c] for c, (arm, _) in by_customer.items())
    control = [m for arm, m in by_customer.values() if arm == CONTROL]
    treated = [m for arm, m in by_customer.values() if arm == TREATMENT]
    assert set(control) == {"popularity"} and 0.05 < len(control) / len(rows) < 0.15
    champion = q(
        store, "SELECT champion FROM recommend.champion_history WHERE as_of_date = DATE '2025-01-21'"
    )
    assert set(treated) == {champion[0][0]}


def test_the_allocation_places_every_open_order_unit_within_stock_and_capacity(store):
    day = date(2025, 1, 21)
    # every unit of the day's sale lines is in the plan, placed or (without a warehouse) not
    mismatched = q(
        store,
        "WITH sold AS (SELECT sku, region, sum(qty) AS units FROM marts.fct_order_items "
        "  WHERE order_date = ? AND is_sale AND qty > 0 GROUP BY ALL), "
        "planned AS (SELECT sku, region, sum(units) AS units FROM supply.allocation_plan "
        "  WHERE as_of_date = ? AND demand = 'open_orders' GROUP BY ALL) "
        "SELECT count(*), (SELECT sum(units) FROM sold) FROM sold FULL JOIN planned USING (sku, region) "
        "WHERE abs(coalesce(sold.units, 0) - coalesce(planned.units, 0)) > 1e-6",
        [day, day],
    )[0]
    assert mismatched[0] == 0 and mismatched[1] > 300
    over_capacity = q(
        store,
        "SELECT count(*) FROM (SELECT warehouse_id, sum(units) AS units FROM supply.allocation_plan "
        "  WHERE as_of_date = ? AND demand = 'open_orders' AND warehouse_id IS NOT NULL GROUP BY ALL) AS p "
        "JOIN (SELECT DISTINCT warehouse_id, daily_capacity_units FROM marts.dim_shipping_lanes) USING "
        "(warehouse_id) WHERE units > daily_capacity_units + 1e-6",
        [day],
    )[0][0]
    over_stock = q(
        store,
        "WITH used AS (SELECT sku, warehouse_id, sum(units) AS units FROM ("
        "  SELECT sku, warehouse_id, units FROM supply.allocation_plan "
        "  WHERE as_of_date = ? AND demand = 'open_orders' AND warehouse_id IS NOT NULL "
        "  UNION ALL SELECT sku, from_warehouse_id, units FROM supply.transfer_orders WHERE as_of_date = ?"
        ") GROUP BY ALL) "
        "SELECT count(*) FROM used JOIN marts.fct_inventory_daily AS i "
        "ON i.sku = used.sku AND i.warehouse_id = used.warehouse_id AND i.snapshot_date = ? "
        "WHERE used.units > i.on_hand + i.units_sold + 1e-6",
        [day, day, day],
    )[0][0]
    lanes = q(
        store,
        "SELECT count(*), count(DISTINCT warehouse_id), count(DISTINCT region) FROM marts.dim_shipping_lanes",
    )[0]
    bad_transfers = q(
        store,
        "SELECT count(*) FROM supply.transfer_orders WHERE from_warehouse_id = to_warehouse_id OR units < 1",
    )[0][0]
    assert over_capacity == 0 and over_stock == 0 and bad_transfers == 0
    assert lanes == (3 * 8, 3, 8)


def test_the_allocation_replay_loses_no_unit_under_any_rule(store, tmp_path):
    import json

    from bench.allocation import main as replay

    out = tmp_path / "allocation.json"
    assert replay(["--warehouse", str(store / "warehouse.duckdb"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["days"] == ["2025-01-02", "2025-01-21", 20] and result["demand_units"] > 5_000
    for rule, m in result["rules"].items():
        # every unit asked for is shipped, lost or still waiting; every unit of stock is somewhere
        assert (
            m["units_dispatched"] + m["units_lost"] + m["units_waiting_at_end"] == result["demand_units"]
        ), rule
        assert m["stock_units_at_end"] + m["units_in_transit_at_end"] + m[
            "units_dispatched"
        ] == pytest.approx(result["start_stock_units"] + result["receipt_units"]), rule
    rules = result["rules"]
    assert rules["home"]["transfers"] == 0 and rules["nearest"]["transfers"] == 0
    # the store's map sends Scotland's orders to Dublin, late by a day; the nearest rule ships them from the North
    assert rules["nearest"]["on_time_orders"] > rules["home"]["on_time_orders"]


def test_products_are_encoded_once_and_searched_through_the_api(store):
    """Every listed product has its text embedding; re-running a day encodes nothing; the day's search index is
    exported and `GET /search` answers from it: bad queries 422, unknown customers unpersonalised, a known one
    personalised with its profile facts, nothing out of stock."""
    from ml.exports import read_export
    from ml.search.encoder import WEIGHTS_SHA256
    from tests.api_server import get, running_api

    last = date(2025, 1, 21)
    listed = q(store, "SELECT count(*) FROM marts.dim_products WHERE first_seen_ts < ?", [date(2025, 1, 22)])[
        0
    ][0]
    catalogue = read_export(store / "exports", "search_catalogue", last)
    assert len(catalogue) == listed and catalogue["embedding"].map(len).eq(384).all()
    stored = q(store, "SELECT count(*), count(DISTINCT content_hash) FROM search.text_embeddings")[0]
    assert stored[0] == stored[1] == catalogue["content_hash"].nunique()
    rerun = dg.materialize(
        all_assets(),
        selection=dg.AssetSelection.assets(dg.AssetKey(["goods", "item_embeddings"])),
        resources=resources_for(store),
        partition_key=LAST,
        instance=dg.DagsterInstance.ephemeral(),
    )
    (event,) = rerun.asset_materializations_for_node("goods__item_embeddings")
    assert event.metadata["encoded"].value == 0 and event.metadata["reused"].value == listed
    assert event.metadata["weights_sha256"].value == WEIGHTS_SHA256
    profiles = read_export(store / "exports", "search_profiles", last)
    known = profiles[profiles["category_affinity"].str.len() > 2].iloc[0]
    out_of_stock = set(catalogue.loc[~catalogue["in_stock"], "sku"])
    with running_api(store / "exports") as base:
        status, body = get(base + "/search?q=%20")
        assert status == 422 and "empty" in body["detail"]
        status, body = get(base + "/search?q=kitchen&k=5&customer_id=nobody")
        assert status == 200 and body["personalised"] is False and "has no profile" in body["note"]
        assert len(body["results"]) == 5 and body["as_of"] == LAST
        assert not {r["sku"] for r in body["results"]} & out_of_stock
        assert any("kitchen" in r["matched_terms"] for r in body["results"])
        status, body = get(f"{base}/search?q=gift&k=20&customer_id={known['customer_id']}")
        assert status == 200 and body["personalised"] is True
        assert any(r["profile_facts"] for r in body["results"]) and all(r["reason"] for r in body["results"])


def test_category_pages_are_ranked_per_segment_and_served(store):
    """Every category has a ranked page for visitors without a segment and one per segment of the day, without
    out-of-stock products, and the bestseller ordering of the control arm; `GET /category/{category}` serves a
    customer the page of its arm (its segment's page, personalised, or the bestsellers), 404 names the
    categories."""
    from ml.exports import read_export
    from ml.search.category_pages import page_arms
    from tests.api_server import get, running_api

    last = date(2025, 1, 21)
    categories = {r[0] for r in q(store, "SELECT DISTINCT category FROM marts.dim_products")}
    pages = q(
        store,
        "SELECT category, segment_id, count(*), max(rank) FROM search.category_rankings "
        "WHERE as_of_date = ? AND ordering = 'ranked' GROUP BY 1, 2",
        [last],
    )
    segments = {
        r[0]
        for r in q(
            store, "SELECT DISTINCT segment_id FROM features.customer_segments WHERE as_of_date = ?", [last]
        )
    }
    assert {p[0] for p in pages if p[1] == 0} == categories and {p[1] for p in pages} == segments | {0}
    assert all(count == top for _, _, count, top in pages)
    sold_out = q(
        store,
        "SELECT count(*) FROM search.category_rankings r JOIN features.item_profiles i "
        "ON i.sku = r.sku AND i.as_of_date = r.as_of_date "
        "WHERE r.as_of_date = ? AND r.ordering = 'ranked' AND coalesce(i.on_hand, 0) = 0",
        [last],
    )[0][0]
    assert sold_out == 0
    # the control arm's ordering: one page per category, by this week's units sold
    best = q(
        store,
        "SELECT r.category, list(i.velocity_7d ORDER BY r.rank), bool_and(r.segment_id = 0) "
        "FROM search.category_rankings r JOIN features.item_profiles i "
        "ON i.sku = r.sku AND i.as_of_date = r.as_of_date "
        "WHERE r.as_of_date = ? AND r.ordering = 'bestsellers' GROUP BY 1",
        [last],
    )
    assert {b[0] for b in best} == categories and all(b[2] for b in best)
    assert all(v == sorted(v, reverse=True) for _, v, _ in best)
    profiles = read_export(store / "exports", "search_profiles", last)
    members = profiles[profiles["segment_id"] > 0].assign(arm=lambda f: page_arms(f["customer_id"]))
    treated, control = (members[members["arm"] == arm].iloc[0] for arm in ("treatment", "control"))
    category = sorted(categories)[0]
    with running_api(store / "exports") as base:
        status, body = get(f"{base}/category/{category}?k=5")
        assert status == 200 and body["segment_id"] == 0 and len(body["products"]) == 5
        assert body["ordering"] == "ranked" and [p["rank"] for p in body["products"]] == [1, 2, 3, 4, 5]
        status, body = get(f"{base}/category/{category}?customer_id={treated['customer_id']}&k=50")
        assert status == 200 and body["personalised"] is True and body["segment_id"] == treated["segment_id"]
        assert (body["arm"], body["ordering"]) == ("treatment", "ranked")
        status, body = get(f"{base}/category/{category}?customer_id={control['customer_id']}&k=50")
        assert (body["arm"], body["ordering"], body["personalised"]) == ("control", "bestsellers", False)
        skus = [
            r[0]
            for r in q(
                store,
                "SELECT sku FROM search.category_rankings WHERE as_of_date = ? AND category = ? "
                "AND ordering = 'bestsellers' ORDER BY rank",
                [last, category],
            )
        ]
        assert [p["sku"] for p in body["products"]] == skus[:50]
        status, body = get(f"{base}/category/no-such-category")
        assert status == 404 and category in body["detail"]
