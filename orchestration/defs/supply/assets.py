"""Place and supply chain: demand forecasts, their backtest, service levels, the replenishment plan and alerts.

Daily-partitioned by the as-of day D. Each asset calls one step of ``ml.supply`` per day of its window, writes the
day's rows (``ml.warehouse.replace_partition``: re-runs never duplicate), exports them for the read API and
attaches the step's summary.
"""

import dagster as dg

from ml.supply.allocating import ALLOCATIONS, TRANSFERS, allocate_day, no_plan_summary
from ml.supply.allocation import AllocationSettings
from ml.supply.backtesting import BACKTESTS, backtest_day, backtest_summary
from ml.supply.forecasting import FORECASTS, ForecastSettings, forecast_day, forecast_summary
from ml.supply.planning import (
    ALERTS,
    PLANS,
    TUNED_LEVELS,
    PlanSettings,
    alerts_summary,
    plan_day,
    plan_summary,
)
from ml.supply.service_levels import ServiceLevelSettings, StoredForecasts, replay_check, tune_day
from ml.warehouse import replace_partition
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.metadata import summary_metadata
from orchestration.partitions import DAILY_WAREHOUSE_WRITER, partition_days
from orchestration.resources import DataFilesResource, WarehouseResource

OWNERS = ["team:supply-chain"]
SUPPLY = {"group_name": "supply", "owners": OWNERS, "automation_condition": DOWNSTREAM_AUTOMATION}


class ForecastConfig(dg.Config, ForecastSettings):
    pass


class ReplenishmentConfig(dg.Config, PlanSettings):
    pass


class ServiceLevelConfig(dg.Config, ServiceLevelSettings):
    pass


class AllocationConfig(dg.Config, AllocationSettings):
    pass


def _log(context, i: int, days: list, message: str) -> None:
    context.log.info(f"[{i}/{len(days)}] {days[i - 1]}: {message}")


def _write_day(con, files: DataFilesResource, day, rows_by_output: dict) -> None:
    """Each output's rows of the day (``{output: (table, rows)}``) replace the day in its table and are exported
    under the output's name (the asset's key within ``supply``)."""
    for output, (table, rows) in rows_by_output.items():
        replace_partition(con, table, "as_of_date", day, rows)
        files.export(rows, output, day)


def _results(summaries_by_output: dict, built: list, days: list):
    """One materialisation per output of a multi-asset, with its step summaries."""
    for output, summaries in summaries_by_output.items():
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(["supply", output]), metadata=summary_metadata(summaries, built, days)
        )


@dg.asset(
    key=dg.AssetKey(["supply", "demand_forecast"]),
    kinds={"duckdb", "pandas", "scikit-learn"},
    description=(
        "Demand forecast per SKU for the next 28 trading days after D, with mean and the 0.5, 0.8, 0.9, 0.95 and "
        "0.99 quantiles (`supply.demand_forecast`; exported to `exports/demand_forecast/`). The model is chosen "
        "per demand class on rolling validation origins before D (ml/forecast), and each quantile level is "
        "calibrated per class there: metadata `quantile_calibration` shows each level's coverage on validation "
        "(uncalibrated, and held out: calibrated on the earlier origins, scored on the latest). Run config "
        "`model: full` adds the global gradient-boosting model with a weekly selection. For planners and the "
        "replenishment plan."
    ),
    deps=[dg.AssetKey(["marts", "fct_daily_sku_demand"])],
    **SUPPLY,
    **DAILY_WAREHOUSE_WRITER,
)
def demand_forecast(
    context: dg.AssetExecutionContext,
    config: ForecastConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    days, built, summaries = partition_days(context), [], []
    with warehouse.connect() as con:
        for i, day in enumerate(days, 1):
            result = forecast_day(con, day, config, files.artifacts())
            if result is None:
                _log(context, i, days, "no demand history yet, nothing to forecast")
                continue
            if result.selection.get("replaced"):
                context.log.warning(
                    f"{day}: the demand up to {result.selection['selected_on']} changed since the week's stored "
                    "model selection was made (data re-landed or marts rebuilt); selected again on the new history"
                )
            _write_day(con, files, day, {"demand_forecast": (FORECASTS, result.rows)})
            built.append(day)
            summaries.append(forecast_summary(result))
            _log(context, i, days, f"{result.rows['sku'].nunique()} SKUs forecast")
    return dg.MaterializeResult(metadata=summary_metadata(summaries, built, days))


@dg.asset(
    key=dg.AssetKey(["supply", "forecast_backtest"]),
    kinds={"duckdb", "pandas"},
    description=(
        "Accuracy of the forecasts made 1, 7, 14 and 28 trading days before D against the actuals that have "
        "arrived since (`supply.forecast_backtest`): WAPE, bias, pinball loss, 0.9 coverage, RMSSE, WRMSSE. The "
        "lag-1 and lag-7 numbers plot over partitions."
    ),
    deps=[dg.AssetKey(["supply", "demand_forecast"]), dg.AssetKey(["marts", "fct_daily_sku_demand"])],
    **SUPPLY,
    **DAILY_WAREHOUSE_WRITER,
)
def forecast_backtest(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    days, built, summaries = partition_days(context), [], []
    with warehouse.connect() as con:
        for i, day in enumerate(days, 1):
            rows = backtest_day(con, day)
            if rows.empty:
                continue
            replace_partition(con, BACKTESTS, "day", day, rows)
            built.append(day)
            summaries.append(backtest_summary(rows))
            _log(context, i, days, f"{len(rows)} lags scored")
    return dg.MaterializeResult(metadata=summary_metadata(summaries, built, days))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey(["supply", "replenishment_plan"]),
            kinds={"duckdb", "pandas"},
            description=(
                "Per SKU × warehouse as of D (`supply.replenishment_plan`, exported): lead-time demand quantile "
                "from the forecast, safety stock, reorder point, order quantity for the target service level (one, "
                "or per demand class: run config service_level_by_class), stock-out risk within the lead time, and "
                "the supplier to order from: the alternate when only its shorter lead time prevents a stock-out, "
                "or when the primary's minimum order quantity would overstock a slow mover and the alternate's "
                "overshoots less; every order is raised to its supplier's minimum. For buyers. Run config "
                "policy: naive_cover orders by the naive cover baseline instead (recent sales times lead time "
                "plus naive_cover_days), e.g. for a control group of warehouses or to compare the plan against."
            ),
            deps=[
                dg.AssetKey(["supply", "demand_forecast"]),
                dg.AssetKey(["marts", "fct_inventory_daily"]),
                dg.AssetKey(["supply", "service_levels"]),  # read only with use_tuned_service_levels
            ],
            **SUPPLY,
        ),
        dg.AssetSpec(
            dg.AssetKey(["supply", "stockout_alerts"]),
            kinds={"duckdb", "pandas"},
            description=(
                "The SKU × warehouse rows whose stock-out risk within the lead time exceeds 1 − service level, "
                "ranked by revenue at risk (`supply.stockout_alerts`, exported). What a buyer acts on first."
            ),
            deps=[dg.AssetKey(["supply", "replenishment_plan"])],
            **SUPPLY,
        ),
    ],
    **DAILY_WAREHOUSE_WRITER,
)
def replenishment(
    context: dg.AssetExecutionContext,
    config: ReplenishmentConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
):
    days, built, plans, alerts = partition_days(context), [], [], []
    with warehouse.connect() as con:
        for i, day in enumerate(days, 1):
            plan, alert = plan_day(con, day, config)
            if plan.empty:
                _log(context, i, days, "no forecast or no inventory snapshot (the source has none): no plan")
                continue
            _write_day(
                con, files, day, {"replenishment_plan": (PLANS, plan), "stockout_alerts": (ALERTS, alert)}
            )
            built.append(day)
            plans.append(plan_summary(plan, config.policy))
            alerts.append(alerts_summary(alert, plan))
            _log(context, i, days, f"{len(plan)} plan rows, {len(alert)} alerts")
    if not built:  # say why there is nothing, in both assets
        plans, alerts, built = [plan_summary(plan)], [alerts_summary(alert, plan)], days[-1:]
    yield from _results({"replenishment_plan": plans, "stockout_alerts": alerts}, built, days)


@dg.asset(
    key=dg.AssetKey(["supply", "service_levels"]),
    kinds={"duckdb", "pandas"},
    description=(
        "Service level per demand class that would have met the fill-rate target over the last days up to D "
        "(`supply.service_levels`, exported): the plan's policy replayed day by day on the stored daily forecasts "
        "and the actual demand, with each product's lead time and lost sales; the smallest uniform level that "
        "reaches the target, refined per class where stock buys less fill. Metadata: the replay's fill rate and "
        "stock against one level for all and against a naive moving-average cover tuned to the same target; and, "
        "out of sample, `realised_fill_rate`: the levels set window_days trading days earlier replayed over the "
        "days since (did they hold?). The plan uses these levels with run config `use_tuned_service_levels: true`."
    ),
    deps=[
        dg.AssetKey(["supply", "demand_forecast"]),
        dg.AssetKey(["marts", "fct_daily_sku_demand"]),
        dg.AssetKey(["marts", "dim_products"]),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "replay_reaches_target",
            asset=dg.AssetKey(["supply", "service_levels"]),
            description=(
                "The replayed policy reached the fill-rate target (over the windows replayed, by the run's "
                "fill_rule) on every day tuned in this run. A failure means no level on the grid (up to 0.9999) "
                "would have: forecasts too low or lead times too long for the target, worth a planner's look."
            ),
        )
    ],
    **SUPPLY,
    **DAILY_WAREHOUSE_WRITER,
)
def service_levels(
    context: dg.AssetExecutionContext,
    config: ServiceLevelConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    days, tuned = partition_days(context), {}
    with warehouse.connect() as con:
        products = con.execute("SELECT sku, lead_time_days, price FROM marts.dim_products").df()
        stored = StoredForecasts(con)  # a backfill's days share most of their replayed forecasts
        for i, day in enumerate(days, 1):
            tuned[day] = result = tune_day(con, day, config, products, stored)
            if result.rows.empty:
                _log(context, i, days, f"nothing to tune: {result.summary['metrics']['note']}")
                continue
            _write_day(con, files, day, {"service_levels": (TUNED_LEVELS, result.rows)})
            levels = dict(zip(result.rows["demand_class"], result.rows["service_level"], strict=True))
            _log(context, i, days, f"levels {levels}, replay fill {result.fill_rate:.3f}")
    passed, numbers = replay_check(tuned, config)
    check = dg.AssetCheckResult(
        check_name="replay_reaches_target",
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in numbers.items()},
    )
    summaries = [t.summary for t in tuned.values()]
    return dg.MaterializeResult(metadata=summary_metadata(summaries, days), check_results=[check])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey(["supply", "allocation_plan"]),
            kinds={"duckdb", "pandas", "scipy"},
            description=(
                "Which warehouse ships what, as of D (`supply.allocation_plan`, exported): D's order lines "
                "(open orders, dispatched from D+1) and the forecast of the next horizon_days, per SKU x customer "
                "region, assigned to warehouses by a transport linear programme (scipy HiGHS) that minimises "
                "parcel costs and late deliveries (past the region's promise) within each warehouse's stock and "
                "daily dispatch capacity; open-order units it cannot place have no warehouse_id, so the rows "
                "add up to the day's order lines. Metadata sets the plan beside the nearest-warehouse rule on "
                "the same lines and stock: shipping cost per order, share of orders on time, units held back, and "
                "the day's transfer cost (an investment in later days that one day cannot show; "
                "`python -m bench.allocation` replays ranges). For the logistics desk."
            ),
            deps=[
                dg.AssetKey(["marts", "dim_shipping_lanes"]),
                dg.AssetKey(["marts", "fct_inventory_daily"]),
                dg.AssetKey(["marts", "fct_order_items"]),
                dg.AssetKey(["marts", "dim_products"]),
                dg.AssetKey(["supply", "demand_forecast"]),
            ],
            **SUPPLY,
        ),
        dg.AssetSpec(
            dg.AssetKey(["supply", "transfer_orders"]),
            kinds={"duckdb", "pandas"},
            description=(
                "Stock to move between warehouses on D (`supply.transfer_orders`, exported): per SKU, from and to "
                "warehouse, whole units, bulk cost and the days until it arrives. The allocation moves stock when "
                "a region's forecast outruns what its fast, cheap warehouses hold and another warehouse has more "
                "than its own regions need within the horizon."
            ),
            deps=[dg.AssetKey(["supply", "allocation_plan"])],
            **SUPPLY,
        ),
    ],
    **DAILY_WAREHOUSE_WRITER,
)
def allocation(
    context: dg.AssetExecutionContext,
    config: AllocationConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
):
    days, built, plans, moves = partition_days(context), [], [], []
    with warehouse.connect() as con:
        for i, day in enumerate(days, 1):
            result = allocate_day(con, day, config)
            if result is None:
                _log(context, i, days, "no lanes, no inventory snapshot or no orders: no allocation")
                continue
            _write_day(
                con,
                files,
                day,
                {
                    "allocation_plan": (ALLOCATIONS, result.plan),
                    "transfer_orders": (TRANSFERS, result.transfers),
                },
            )
            built.append(day)
            plans.append(result.summary)
            moves.append(result.transfer_summary)
            metrics = result.summary["metrics"]
            _log(
                context,
                i,
                days,
                f"{len(result.plan)} plan rows, {len(result.transfers)} transfers; shipping cost per order "
                f"{metrics['plan_shipping_cost_per_order']:.2f} vs "
                f"{metrics['nearest_shipping_cost_per_order']:.2f} (nearest rule)",
            )
    if not built:
        plans, moves, built = [no_plan_summary()], [no_plan_summary()], days[-1:]
    yield from _results({"allocation_plan": plans, "transfer_orders": moves}, built, days)


supply_assets = [demand_forecast, forecast_backtest, service_levels, replenishment, allocation]
