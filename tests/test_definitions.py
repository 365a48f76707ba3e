"""The code location loads and the asset graph has the shape the design promises."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

from ml.sources.schema import TABLES
from orchestration.definitions import defs
from orchestration.defs.transform.project import dbt_project
from orchestration.partitions import POOL, daily_partitions

GROUPS = {
    "landing",
    "ingest",
    "staging",
    "intermediate",
    "marts",
    "quality",
    "features",
    "people",
    "goods",
    "place",
    "recommend",
    "supply",
    "marketing",
    "feedback",
}


def _graph():
    return defs.resolve_asset_graph()


def test_definitions_load_and_every_asset_is_described_grouped_and_partitioned():
    graph = _graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for table in TABLES:
        assert f"landing/{table}" in keys
        assert f"raw/{table}" in keys
    for model in (
        "staging/stg_events",
        "marts/fct_orders",
        "marts/fct_daily_sku_demand",
        "marts/fct_channel_daily",
    ):
        assert model in keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key} has no description"
        assert node.group_name in GROUPS, key
        assert node.partitions_def == daily_partitions, f"{key} is not on the one daily partitions definition"


def test_every_asset_names_its_owners_kinds_and_code_and_every_check_is_described():
    graph = _graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, f"{key} has no owners"
        kinds = {k.removeprefix("dagster/kind/") for k in node.tags if k.startswith("dagster/kind/")}
        assert kinds, f"{key} has no kinds"
        references = node.metadata.get("dagster/code_references")
        assert references and references.code_references, f"{key} links to no code"
        for ref in references.code_references:
            path = getattr(ref, "file_path", None)
            assert path is None or path.endswith((".py", ".sql")), (key, path)
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).description, f"{check_key} has no description"


def test_lineage_runs_from_landing_through_raw_and_staging_to_marts():
    graph = _graph()

    def parents(key: str) -> set[str]:
        return {p.to_user_string() for p in graph.get(dg.AssetKey.from_user_string(key)).parent_keys}

    assert parents("raw/events") == {"landing/events"}
    assert "raw/events" in parents("staging/stg_events")
    assert {"staging/stg_order_items", "staging/stg_orders"} <= parents("intermediate/int_order_lines")
    assert "intermediate/int_order_lines" in parents("marts/fct_order_items")
    assert "intermediate/int_daily_sku_sales" in parents("marts/fct_daily_sku_demand")


def test_every_dbt_model_is_incremental_so_none_is_left_unpartitioned():
    manifest = json.loads(dbt_project.manifest_path.read_text())
    models = {
        n["name"]: n["config"]["materialized"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model"
    }
    assert len(models) >= 20
    assert set(models.values()) == {"incremental"}, models


def test_warehouse_writers_share_one_pool_and_backfill_in_one_run():
    graph = _graph()
    writers = [k for k in graph.get_all_asset_keys() if k.path[0] != "landing"]
    for key in writers:
        node = graph.get(key)
        assert node.pools == {POOL}, f"{key} writes the warehouse outside the pool"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()


def test_dbt_tests_surface_as_asset_checks():
    graph = _graph()
    checks = {c.name for c in graph.asset_check_keys}
    assert "unique_fct_events_event_id" in checks
    assert "assert_order_total_matches_lines" in checks
    assert any(name.startswith("relationships_fct_order_items_sku") for name in checks)


def _dbt_check_specs() -> dict[str, dg.AssetCheckSpec]:
    return {
        spec.name: spec
        for checks_def in defs.assets or []
        if isinstance(checks_def, dg.AssetsDefinition)
        for spec in checks_def.check_specs
    }


def test_contract_vocabulary_tests_are_described_with_their_values_and_keep_their_window():
    specs = _dbt_check_specs()
    vocab = {name: spec for name, spec in specs.items() if name.startswith("accepted_contract_values_")}
    assert set(vocab) == {
        "accepted_contract_values_fct_events_event_type__event_types",
        "accepted_contract_values_fct_orders_status__order_statuses",
        "accepted_contract_values_fct_order_items_line_type__line_types",
        "accepted_contract_values_product_day_price_band__price_bands",
        "accepted_contract_values_customer_day_pref_dimension__preference_dimensions",
        "accepted_contract_values_customer_windows_lifecycle_stage__lifecycle_stages",
        "accepted_contract_values_lifecycle_flows_to_stage__lifecycle_stages",
        "accepted_contract_values_stg_impressions_arm__experiment_arms",
        "accepted_contract_values_fct_impressions_arm__experiment_arms",
        "accepted_contract_values_fct_exposed_customers_arm__experiment_arms",
        "accepted_contract_values_stg_lost_sales_reason__lost_sale_reasons",
        "accepted_contract_values_stg_message_events_event_type__message_event_types",
        "accepted_contract_values_stg_message_events_channel__message_channels",
    }
    assert vocab["accepted_contract_values_fct_events_event_type__event_types"].description == (
        "dbt test: `event_type` of `fct_events` takes only the values of the landing contract's vocabulary "
        "`event_types` (view, cart, purchase; ml/sources/schema.py). Fails the check when any row breaks it."
    )
    assert (
        "(sale, return, adjustment;"
        in vocab["accepted_contract_values_fct_order_items_line_type__line_types"].description
    )
    assert all(spec.blocking for spec in vocab.values())
    assert not any(name.startswith("accepted_values_") for name in specs)  # no hand-written lists left
    manifest = json.loads(dbt_project.manifest_path.read_text())
    tests = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "test"}
    # the window's placeholders, filled in at compile time (macros/window.sql; tests/test_dbt_tests.py runs them)
    assert tests["accepted_contract_values_fct_orders_status__order_statuses"]["config"]["where"] == (
        "order_date between __window_start__ and __window_end__"
    )


def test_the_order_total_invariant_is_one_blocking_dbt_check():
    specs = _dbt_check_specs()
    total = specs["assert_order_total_matches_lines"]
    assert total.blocking and total.asset_key == dg.AssetKey(["marts", "fct_orders"])
    assert total.description.startswith(
        "dbt test (tests/assert_order_total_matches_lines.sql): An order's total as the source sent it equals the "
        "sum of its lines in the marts within a cent"
    )
    from expectations import SUITES

    columns = [
        getattr(e, "column", None)
        for name in ("raw_orders", "fct_orders")
        for e in SUITES[name].expectations()
    ]
    assert "total_minus_lines" not in columns and SUITES["fct_orders"].slice_sql is None


def test_daily_schedule_targets_the_latest_partition_with_a_stable_run_key():
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 3, 10, 2, 0, tzinfo=UTC))
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == 1
    assert requests[0].partition_key == "2026-03-09"
    assert requests[0].run_key == "2026-03-09"


def test_every_raw_and_staging_table_has_a_blocking_reconciliation_check():
    checks = {(k.asset_key.to_user_string(), k.name) for k in _graph().asset_check_keys}
    for table in TABLES:
        assert (f"raw/{table}", "reconciles_with_landing") in checks
    for model in ("stg_events", "stg_orders", "stg_order_items", "stg_customers", "stg_inventory"):
        assert (f"staging/{model}", "reconciles_with_raw") in checks
    blocking = {
        spec.key.name
        for checks_def in defs.asset_checks or []
        for spec in checks_def.check_specs
        if spec.blocking
    }
    assert {"reconciles_with_landing", "reconciles_with_raw"} <= blocking


def test_every_run_config_field_is_described_for_the_launchpad():
    configs = [c for c in dg.Config.__subclasses__() if c.__module__.startswith("orchestration.")]
    names = {c.__name__ for c in configs}
    assert {
        "DbtRunConfig",
        "RecommendConfig",
        "ReplenishmentConfig",
        "ForecastConfig",
        "ServiceLevelConfig",
    } <= names
    for config in configs:
        for field, spec in config.to_fields_dict().items():
            assert spec.description, f"{config.__name__}.{field} has no description in the UI"
    model = next(c for c in configs if c.__name__ == "ForecastConfig").to_fields_dict()["model"]
    assert type(model.config_type).__name__ == "Enum"  # a bad value is refused before the run starts


def test_the_dbt_resource_knows_the_version_dbt_itself_reports():
    """The platform's dbt resource reads dbt's version from the installed package instead of starting dbt for it
    on every run; it must be the version `dbt --version` prints (what dagster-dbt would have asked)."""
    from dagster_dbt import DbtCliResource

    from ml.dbt import installed_dbt_version
    from orchestration.resources import DbtResource, build_resources

    resource = build_resources()["dbt"]
    assert isinstance(resource, DbtResource)
    asked = DbtCliResource(project_dir=resource.project_dir, dbt_executable=resource.dbt_executable)
    assert resource._cli_version == asked._cli_version
    assert resource._cli_version.major == 1
    assert installed_dbt_version("/opt/elsewhere/bin/dbt") is None  # another dbt is asked, not assumed
