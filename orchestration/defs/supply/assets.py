"""Place and supply chain: demand forecasts, their backtest, the replenishment plan and stock-out alerts.

Daily-partitioned by the as-of day D; every step reads only data dated on or before D. The logic is in
``ml.forecast.service`` and ``ml.inventory``; these assets read the marts, call it, write ``supply.*`` (delete +
insert of the day, so re-runs never duplicate) and export the day as Parquet for the read API.
"""

from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field

from ml.exports import write_export
from ml.warehouse import ensure_schema, markdown_table, replace_partition_df, table_exists
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.metadata import png_markdown
from orchestration.partitions import DAILY_WAREHOUSE_WRITER, partition_days
from orchestration.resources import DataFilesResource, WarehouseResource

OWNERS = ["team:supply-chain"]
HISTORY_DAYS = 400
"""Demand history the daily forecast reads: enough for yearly patterns, bounded so a day's cost is flat."""
HORIZON = 28
ORDER_CYCLE_DAYS = 7


class SupplyConfig(dg.Config):
    service_level: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Target cycle service level of the plan (the probability of no stock-out in a cycle), below 1.",
    )
    order_cycle_days: int = Field(
        default=ORDER_CYCLE_DAYS,
        description="Days of demand an order covers beyond the reorder point (order-up-to = s + this).",
    )
    use_tuned_service_levels: bool = Field(
        default=False,
        description=(
            "Give each demand class the service level that supply/service_levels found on the latest replay "
            "(on or before D); service_level_by_class still overrides the classes it names."
        ),
    )
    service_level_by_class: dict[str, float] = Field(
        default={},
        description=(
            "Per demand class (smooth, erratic, intermittent, lumpy; ADI/CV² on the SKU's last 224 days of "
            "demand), a service level replacing service_level for that class, e.g. {lumpy: 0.999}. "
            "`python -m bench.inventory` finds such levels on replayed validation windows."
        ),
    )


def replace_day(con, table: str, frame: pd.DataFrame, day_column: str, day: date) -> None:
    """Replace ``day``'s rows of ``schema.table`` by ``frame`` in one transaction (see ml/warehouse.py)."""
    ensure_schema(con, table.split(".")[0])
    replace_partition_df(con, table, day_column, day, frame)


class ForecastConfig(dg.Config):
    model: Literal["fast", "full"] = Field(
        default="fast",
        description=(
            "fast: the local models (TSB, Croston-SBA, moving average, naive, seasonal naive), selected afresh "
            "every day; seconds for 10k SKUs. full: with the global gradient-boosting model (Online Retail "
            "benchmark: WRMSSE 0.982 against 0.988), selected and trained once a week (on Mondays, from the demand "
            "up to that Monday) and updated with each day's demand in between; selections are kept in "
            "artifacts/supply/forecast_selection/."
        ),
    )
    reselect_every_days: int = Field(
        default=7, description="With model full: days between two selections (7 = every Monday)."
    )


def _demand(con, day: date, start: date) -> pd.DataFrame:
    """``fct_daily_sku_demand`` in ``(start, day]`` as the supply chain plans on it: net of the sales undone the
    same day (:func:`ml.forecast.service.planning_demand`). Every supply asset reads demand through here."""
    from ml.forecast.service import planning_demand

    return planning_demand(
        con.execute(
            "SELECT * FROM marts.fct_daily_sku_demand WHERE demand_date <= ? AND demand_date > ?",
            [day, start],
        ).df()
    )


def _mart(con, day: date, history_from: date | None = None) -> pd.DataFrame:
    """Demand up to ``day``, starting ``HISTORY_DAYS`` before ``history_from`` (default: ``day``)."""
    return _demand(con, day, (history_from or day) - timedelta(days=HISTORY_DAYS))


@dg.asset(
    key=dg.AssetKey(["supply", "demand_forecast"]),
    group_name="supply",
    owners=OWNERS,
    kinds={"duckdb", "pandas", "scikit-learn"},
    description=(
        "Demand forecast per SKU for the next 28 trading days after D, with mean and the 0.5 and 0.9 quantiles "
        "(`supply.demand_forecast`; exported to `exports/demand_forecast/`). The model is chosen per demand class "
        "on rolling validation origins before D (ml/forecast); run config `model: full` adds the global "
        "gradient-boosting model with a weekly selection. For planners and the replenishment plan."
    ),
    deps=[dg.AssetKey(["marts", "fct_daily_sku_demand"])],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
)
def demand_forecast(
    context: dg.AssetExecutionContext,
    config: ForecastConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    from ml.forecast.service import daily_forecast, selection_anchor

    weekly = config.model == "full"
    days = partition_days(context)
    frame, mart, selection = pd.DataFrame(), pd.DataFrame(), {}
    with warehouse.connect() as con:
        for i, day in enumerate(days, 1):
            # A weekly selection must see the same history whichever day of its week builds it.
            anchor = selection_anchor(day, config.reselect_every_days).date() if weekly else day
            mart = _mart(con, day, history_from=anchor)
            if mart.empty:
                context.log.info(f"[{i}/{len(days)}] {day}: no demand history yet, nothing to forecast")
                continue
            fc = daily_forecast(
                mart,
                day,
                horizon=HORIZON,
                model=config.model,
                selection_dir=Path(files.artifacts_dir) / "supply" / "forecast_selection" if weekly else None,
                reselect_every_days=config.reselect_every_days,
            )
            selection = fc.attrs.get("selection", {})
            if selection.get("replaced"):
                context.log.warning(
                    f"{day}: the demand up to {selection['selected_on']} changed since the week's stored "
                    "model selection was made (data re-landed or marts rebuilt); selected again on the new history"
                )
            frame = pd.DataFrame(
                {
                    "as_of_date": pd.Timestamp(day).date(),
                    "sku": fc["sku"].astype(str),
                    "forecast_date": pd.to_datetime(fc["forecast_date"]).dt.date,
                    "horizon_day": fc["step"].astype(int),
                    "mean": fc["mean"].astype(float),
                    "q50": fc["q50"].astype(float),
                    "q90": fc["q90"].astype(float),
                    "model_name": fc["model"].astype(str),
                }
            )
            replace_day(con, "supply.demand_forecast", frame, "as_of_date", day)
            write_export(frame, files.path("exports"), "demand_forecast", day)
            context.log.info(f"[{i}/{len(days)}] {day}: {frame['sku'].nunique()} SKUs × {HORIZON} days")
    metadata = {"as_of": days[-1].isoformat(), "days_built": len(days), "dagster/row_count": len(frame)}
    if not frame.empty:
        next_week = frame[frame["horizon_day"] <= 7]
        top = (
            next_week.groupby("sku")[["mean", "q90"]]
            .sum()
            .sort_values("mean", ascending=False)
            .head(10)
            .reset_index()
        )
        metadata |= {
            "skus": int(frame["sku"].nunique()),
            "units_next_7_days": float(next_week["mean"].sum()),
            "units_next_7_days_q90_sum": float(next_week["q90"].sum()),
            "models": dg.MetadataValue.json(frame.groupby("model_name")["sku"].nunique().to_dict()),
            "model_selected_on": selection.get("selected_on", ""),
            "model_selection_reused": bool(selection.get("reused", False)),
            # which history a weekly selection was fitted on (a change mid-week means the data changed); the
            # daily model is fitted on the day's history and has none to show
            **({"model_selection_history": selection["history"]} if selection.get("history") else {}),
            "top_skus_next_7_days": dg.MetadataValue.md(markdown_table(top)),
            "forecast_chart": _forecast_chart(mart, frame),
        }
    return dg.MaterializeResult(metadata=metadata)


def _forecast_chart(history: pd.DataFrame, forecast: pd.DataFrame) -> dg.MarkdownMetadataValue:
    """The last 8 weeks of actual units and the next 4 weeks' forecast with its q50-q90 band, top 4 SKUs."""
    from ml.charts import forecast_vs_actuals_png, top_skus

    as_of = forecast["as_of_date"].iloc[0]
    png = forecast_vs_actuals_png(
        history, forecast, top_skus(forecast, n=4), title=f"Top SKUs: actual units to {as_of}, forecast after"
    )
    return png_markdown(png, alt=f"forecast vs actuals, top SKUs, as of {as_of}")


@dg.asset(
    key=dg.AssetKey(["supply", "forecast_backtest"]),
    group_name="supply",
    owners=OWNERS,
    kinds={"duckdb", "pandas"},
    description=(
        "Accuracy of the forecasts made 1, 7, 14 and 28 trading days before D against the actuals that have "
        "arrived since (`supply.forecast_backtest`): WAPE, bias, pinball loss, 0.9 coverage, RMSSE, WRMSSE. The "
        "lag-1 and lag-7 numbers plot over partitions."
    ),
    deps=[dg.AssetKey(["supply", "demand_forecast"]), dg.AssetKey(["marts", "fct_daily_sku_demand"])],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
)
def forecast_backtest(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    from ml.forecast.service import backtest_for_day

    days = partition_days(context)
    result = pd.DataFrame()
    with warehouse.connect() as con:
        for i, day in enumerate(days, 1):
            forecasts = con.execute(
                "SELECT as_of_date AS origin_date, sku, forecast_date, horizon_day AS step, mean, q50, q90 "
                "FROM supply.demand_forecast WHERE as_of_date < ? AND as_of_date >= ?",
                [day, day - timedelta(days=60)],
            ).df()
            if forecasts.empty:
                continue
            result = backtest_for_day(forecasts, _mart(con, day), day)
            if result.empty:
                continue
            result = result.assign(day=pd.Timestamp(day).date(), origin_date=result["origin_date"].dt.date)
            replace_day(con, "supply.forecast_backtest", result, "day", day)
            context.log.info(f"[{i}/{len(days)}] {day}: {len(result)} lags scored")
    metadata: dict = {"as_of": days[-1].isoformat(), "dagster/row_count": len(result)}
    for row in result.itertuples(index=False):
        for name in ("WAPE", "bias", "coverage90", "WRMSSE"):
            value = getattr(row, name, None)
            if value is not None and pd.notna(value):
                metadata[f"lag{row.lag}_{name}"] = float(value)
    if not result.empty:
        metadata["by_lag"] = dg.MetadataValue.md(markdown_table(result.drop(columns=["day"])))
    return dg.MaterializeResult(metadata=metadata)


def _plan_for_day(con, day: date, config: SupplyConfig) -> pd.DataFrame:
    from ml.inventory import plan_from_marts

    forecast = con.execute(
        "SELECT sku, horizon_day AS step, mean, q50, q90 FROM supply.demand_forecast WHERE as_of_date = ?",
        [day],
    ).df()
    inventory = con.execute(
        "SELECT sku, warehouse_id, snapshot_date, on_hand, on_order, units_sold FROM marts.fct_inventory_daily "
        "WHERE snapshot_date <= ? AND snapshot_date > ?",
        [day, day - timedelta(days=28)],
    ).df()
    if forecast.empty or inventory.empty:
        return pd.DataFrame()
    products = con.execute("SELECT * FROM marts.dim_products").df()
    from ml.forecast.service import demand_classes, sku_dispersion

    recent = _recent_demand(con, day)
    levels = dict(config.service_level_by_class)
    if config.use_tuned_service_levels:
        levels = {**_tuned_levels(con, day), **levels}
    plan = plan_from_marts(
        forecast,
        inventory,
        products,
        as_of=day,
        service_level=config.service_level,
        order_cycle=config.order_cycle_days,
        service_level_by_class=levels,
        demand_class=demand_classes(recent) if levels else None,
        dispersion=sku_dispersion(recent),
    )
    plan.insert(0, "as_of_date", pd.Timestamp(day).date())
    return plan


def _tuned_levels(con, day: date) -> dict[str, float]:
    """The levels per class of the latest ``supply.service_levels`` day on or before ``day`` (none yet: {})."""
    if not table_exists(con, "supply.service_levels"):
        return {}
    rows = con.execute(
        "SELECT demand_class, service_level FROM supply.service_levels WHERE as_of_date = "
        "(SELECT max(as_of_date) FROM supply.service_levels WHERE as_of_date <= ?)",
        [day],
    ).fetchall()
    return {c: float(level) for c, level in rows}


def _recent_demand(con, day: date) -> pd.DataFrame:
    """``fct_daily_sku_demand`` over the ``RECENT_DAYS`` days up to ``day`` (nothing later): what a SKU's demand
    class and its own dispersion are measured on."""
    from ml.forecast.service import RECENT_DAYS

    return _demand(con, day, day - timedelta(days=RECENT_DAYS))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            dg.AssetKey(["supply", "replenishment_plan"]),
            group_name="supply",
            owners=OWNERS,
            kinds={"duckdb", "pandas"},
            description=(
                "Per SKU × warehouse as of D (`supply.replenishment_plan`, exported): lead-time demand quantile "
                "from the forecast, safety stock, reorder point, order quantity for the target service level (one, "
                "or per demand class: run config service_level_by_class), "
                "stock-out risk within the lead time, and the alternate supplier when only its shorter lead time "
                "prevents a stock-out. For buyers and suppliers."
            ),
            deps=[
                dg.AssetKey(["supply", "demand_forecast"]),
                dg.AssetKey(["marts", "fct_inventory_daily"]),
                # read only with run config use_tuned_service_levels
                dg.AssetKey(["supply", "service_levels"]),
            ],
            automation_condition=DOWNSTREAM_AUTOMATION,
        ),
        dg.AssetSpec(
            dg.AssetKey(["supply", "stockout_alerts"]),
            group_name="supply",
            owners=OWNERS,
            kinds={"duckdb", "pandas"},
            description=(
                "The SKU × warehouse rows whose stock-out risk within the lead time exceeds 1 − service level, "
                "ranked by revenue at risk (`supply.stockout_alerts`, exported). What a buyer acts on first."
            ),
            deps=[dg.AssetKey(["supply", "replenishment_plan"])],
            automation_condition=DOWNSTREAM_AUTOMATION,
        ),
    ],
    **DAILY_WAREHOUSE_WRITER,
)
def replenishment(
    context: dg.AssetExecutionContext,
    config: SupplyConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
):
    from ml.inventory import plan_by_class, stockout_alerts

    days = partition_days(context)
    plan = alerts = pd.DataFrame()
    with warehouse.connect() as con:
        for i, day in enumerate(days, 1):
            plan = _plan_for_day(con, day, config)
            if plan.empty:
                context.log.info(
                    f"[{i}/{len(days)}] {day}: no forecast or no inventory snapshot (the source has none): no plan"
                )
                continue
            alerts = stockout_alerts(plan, service_level=config.service_level)
            replace_day(con, "supply.replenishment_plan", plan, "as_of_date", day)
            replace_day(con, "supply.stockout_alerts", alerts, "as_of_date", day)
            write_export(plan, files.path("exports"), "replenishment_plan", day)
            write_export(alerts, files.path("exports"), "stockout_alerts", day)
            context.log.info(f"[{i}/{len(days)}] {day}: {len(plan)} plan rows, {len(alerts)} alerts")
    note = {} if not plan.empty else {"note": "no plan: the source delivers no inventory snapshots"}
    plan_md = {
        "dagster/row_count": len(plan),
        "as_of": days[-1].isoformat(),
        **note,
    }
    if not plan.empty:
        plan_md |= {
            "rows_to_order": int((plan["order_qty"] > 0).sum()),
            "units_to_order": float(plan["order_qty"].sum()),
            "mean_stockout_risk": float(plan["stockout_risk"].mean()),
            "rows_using_alternate_supplier": int(plan.get("use_alternate", pd.Series(dtype=bool)).sum()),
            **(
                {"by_demand_class": dg.MetadataValue.md(markdown_table(by_class))}
                if not (by_class := plan_by_class(plan)).empty
                else {}
            ),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    plan.sort_values("stockout_risk", ascending=False)[
                        [
                            c
                            for c in (
                                "sku",
                                "warehouse_id",
                                "on_hand",
                                "reorder_point",
                                "order_qty",
                                "stockout_risk",
                                "supplier_id",
                                "use_alternate",
                            )
                            if c in plan.columns
                        ]
                    ]
                )
            ),
        }
    yield dg.MaterializeResult(asset_key=dg.AssetKey(["supply", "replenishment_plan"]), metadata=plan_md)
    alert_md = {"dagster/row_count": len(alerts), "as_of": days[-1].isoformat(), **note}
    if not alerts.empty:
        alert_md |= {
            "revenue_at_risk": float(alerts["revenue_at_risk"].sum()),
            "top_alerts": dg.MetadataValue.md(
                markdown_table(
                    alerts[
                        [
                            c
                            for c in (
                                "sku",
                                "warehouse_id",
                                "on_hand",
                                "stockout_risk",
                                "revenue_at_risk",
                                "use_alternate",
                                "alt_supplier_id",
                            )
                            if c in alerts.columns
                        ]
                    ]
                )
            ),
        }
    yield dg.MaterializeResult(asset_key=dg.AssetKey(["supply", "stockout_alerts"]), metadata=alert_md)


def _realised_fill(con, forecasts, mart, products, trading, config) -> dict:
    """Out of sample: the levels this asset set ``window_days`` trading days before D, replayed over the days
    since (up to D, nothing later) exactly as they were tuned. {} until such levels and forecasts exist."""
    from ml.forecast.service import demand_classes_as_of
    from ml.inventory.tuning import ForwardReplay

    days = config.window_days
    if len(trading) < days + 1 or forecasts.empty or not table_exists(con, "supply.service_levels"):
        return {}
    set_on = pd.Timestamp(trading[-(days + 1)])
    stored = con.execute("SELECT * FROM supply.service_levels WHERE as_of_date = ?", [set_on.date()]).df()
    if stored.empty:
        return {}
    # only the window's decision days: the frame is re-typed and pivoted again here
    since = forecasts[pd.to_datetime(forecasts["as_of_date"]) >= set_on]
    forward = ForwardReplay(since, mart, products, order_cycle=config.order_cycle_days)
    window = forward.window(set_on, days, demand_classes_as_of(mart, set_on))  # the plan's classes that day
    if window is None:
        return {}
    result = forward.run(
        window, dict(zip(stored["demand_class"], stored["service_level"].astype(float), strict=True))
    )
    out = {
        "realised_levels_set_on": str(set_on.date()),
        "realised_fill_rate": float(result.fill_rate),
        "realised_avg_inventory_units": float(result.avg_inventory_units),
        "realised_target_met": bool(result.fill_rate >= float(stored["target_fill_rate"].iloc[0])),
    }
    # The yardstick out of sample too: the naive cover tuned that day (a table from before this column has none).
    naive = forward.run_naive(window, stored.get("naive_cover_days", pd.Series([None])).iloc[0])
    if naive is not None:
        out |= {
            "realised_naive_fill_rate": float(naive.fill_rate),
            "realised_naive_avg_inventory_units": float(naive.avg_inventory_units),
        }
        if naive.avg_inventory_units:
            out["realised_inventory_vs_naive"] = float(
                result.avg_inventory_units / naive.avg_inventory_units - 1
            )
    return out


class ServiceLevelConfig(dg.Config):
    target_fill_rate: float = Field(
        default=0.95, gt=0, le=1, description="Unit fill rate the replayed policy must reach over the window."
    )
    window_days: int = Field(
        default=28,
        ge=7,
        description="Demand days replayed, ending on D (fewer, down to 7, while fewer daily forecasts are stored).",
    )
    n_windows: int = Field(
        default=2,
        ge=1,
        description=(
            "Consecutive windows of window_days (as many full ones as the stored forecasts cover) over which the "
            "levels must reach the target (see fill_rule): steadier levels from one day to the next."
        ),
    )
    # pooled was chosen by a rule fixed before the run on the first seven months of Online Retail, where both rules
    # reached the target on the days after and pooled held 8% less stock (docs/benchmarks/forecast.md, "Choosing
    # the fill rule on a full year"). On the later months it filled 0.945 against every_window's 0.953.
    fill_rule: Literal["every_window", "pooled"] = Field(
        default="pooled",
        description=(
            "every_window: the target on each window (follows the hardest recent month; the safer choice when "
            "the target must hold); pooled: on the units of all windows together (leaner; a hard month is offset "
            "by an easy one)."
        ),
    )
    order_cycle_days: int = Field(
        default=ORDER_CYCLE_DAYS, description="As in the plan: days of demand an order covers beyond s."
    )


@dg.asset(
    key=dg.AssetKey(["supply", "service_levels"]),
    group_name="supply",
    owners=OWNERS,
    kinds={"duckdb", "pandas"},
    description=(
        "Service level per demand class that would have met the fill-rate target over the last days up to D "
        "(`supply.service_levels`, exported): the plan's policy replayed day by day on the stored daily forecasts and the "
        "actual demand, with each product's lead time and lost sales; the smallest uniform level that reaches "
        "the target, refined per class where stock buys less fill. Metadata: the replay's fill rate and stock "
        "against one level for all and against a naive moving-average cover tuned to the same target; and, out of "
        "sample, `realised_fill_rate`: the levels set window_days trading days earlier replayed over the days "
        "since (did they hold?). The plan uses these levels with run config `use_tuned_service_levels: true`."
    ),
    deps=[
        dg.AssetKey(["supply", "demand_forecast"]),
        dg.AssetKey(["marts", "fct_daily_sku_demand"]),
        dg.AssetKey(["marts", "dim_products"]),
    ],
    automation_condition=DOWNSTREAM_AUTOMATION,
    check_specs=[
        dg.AssetCheckSpec(
            "replay_reaches_target",
            asset=dg.AssetKey(["supply", "service_levels"]),
            description=(
                "The replayed policy reached the fill-rate target (over the windows replayed, by the run's "
                "fill_rule) on every day tuned in this run. A failure means "
                "no level on the grid (up to 0.9999) would have: forecasts too low or lead times too long for "
                "the target, worth a planner's look."
            ),
        )
    ],
    **DAILY_WAREHOUSE_WRITER,
)
def service_levels(
    context: dg.AssetExecutionContext,
    config: ServiceLevelConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    from ml.forecast.service import demand_classes_as_of
    from ml.inventory.tuning import recent_service_levels

    days = partition_days(context)
    metadata: dict = {"as_of": days[-1].isoformat()}
    fills: dict[str, float] = {}
    missed: dict[str, float] = {}  # days whose levels did not reach the target by the fill rule
    realised_fills: dict[str, float] = {}
    with warehouse.connect() as con:
        products = con.execute("SELECT sku, lead_time_days, price FROM marts.dim_products").df()
        for i, day in enumerate(days, 1):
            mart = _mart(con, day)
            # The replay's decisions are the last window_days * n_windows + 1 trading days at most: only their
            # forecasts are read (every horizon day: the forecast's implied dispersion averages over them).
            trading = np.sort(pd.to_datetime(mart["demand_date"]).unique())
            first = (
                trading[-min(len(trading), config.window_days * config.n_windows + 1)]
                if len(trading)
                else None
            )
            forecasts = (
                con.execute(
                    "SELECT as_of_date, sku, horizon_day, mean, q90 FROM supply.demand_forecast "
                    "WHERE as_of_date <= ? AND as_of_date >= ?",
                    [day, pd.Timestamp(first).date()],
                ).df()
                if first is not None and table_exists(con, "supply.demand_forecast")
                else pd.DataFrame()
            )
            result = recent_service_levels(
                forecasts,
                mart,
                products,
                demand_classes_as_of(mart, day),  # the classes the plan uses on the day
                target=config.target_fill_rate,
                window_days=config.window_days,
                n_windows=config.n_windows,
                order_cycle=config.order_cycle_days,
                fill_rule=config.fill_rule,
            )
            realised = _realised_fill(con, forecasts, mart, products, trading, config)
            if realised:
                realised_fills[day.isoformat()] = realised["realised_fill_rate"]
            if isinstance(result, str):
                context.log.info(f"[{i}/{len(days)}] {day}: nothing to tune: {result}")
                metadata = {"as_of": day.isoformat(), "note": result, "dagster/row_count": 0, **realised}
                continue
            frame = pd.DataFrame(
                {
                    "as_of_date": pd.Timestamp(day).date(),
                    "demand_class": list(result.levels),
                    "service_level": list(result.levels.values()),
                    "uniform_level": result.uniform_level,
                    "window_start": result.window[0],
                    "window_end": result.window[1],
                    "target_fill_rate": config.target_fill_rate,
                    # the yardstick's cover, so the days after can replay it too (NaN until it can be tuned)
                    "naive_cover_days": np.nan
                    if result.naive_cover_days is None
                    else result.naive_cover_days,
                }
            )
            replace_day(con, "supply.service_levels", frame, "as_of_date", day)
            write_export(frame, files.path("exports"), "service_levels", day)
            ours, uniform, naive = result.by_class, result.uniform, result.naive
            fills[day.isoformat()] = float(ours.fill_rate)
            if not result.reached:
                missed[day.isoformat()] = float(ours.fill_rate)  # the newest window's fill, for the planner
            metadata = {
                "as_of": day.isoformat(),
                "dagster/row_count": len(frame),
                "window": f"{result.window[0]} .. {result.window[1]}",  # the newest; metrics below are its
                "windows_replayed": int(result.n_windows),
                "fill_rule": config.fill_rule,
                "skus_replayed": int(result.n_skus),
                "replay_fill_rate": float(ours.fill_rate),
                "replay_avg_inventory_units": float(ours.avg_inventory_units),
                "uniform_level": float(result.uniform_level),
                "uniform_avg_inventory_units": float(uniform.avg_inventory_units),
                # where the stock sits and what it buys, per class, against the naive cover on the same SKUs
                "levels": dg.MetadataValue.md(markdown_table(result.classes, 4)),
                **realised,
            }
            if naive is not None:  # the yardstick needs 28 days of demand before the window
                metadata |= {
                    "naive_cover_days": float(result.naive_cover_days),
                    "naive_fill_rate": float(naive.fill_rate),
                    "naive_avg_inventory_units": float(naive.avg_inventory_units),
                }
                if naive.avg_inventory_units:
                    metadata["inventory_vs_naive"] = float(
                        ours.avg_inventory_units / naive.avg_inventory_units - 1
                    )
            context.log.info(
                f"[{i}/{len(days)}] {day}: levels {result.levels}, replay fill {ours.fill_rate:.3f} with "
                f"{ours.avg_inventory_units:,.0f} units"
            )
    check = dg.AssetCheckResult(
        check_name="replay_reaches_target",
        passed=not missed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "days_tuned": len(fills),
            "days_missing_target": len(missed),
            # out of sample: the levels set window_days trading days before each day, over the days since
            "days_realised": len(realised_fills),
            "days_realised_below_target": sum(f < config.target_fill_rate for f in realised_fills.values()),
            **({"missed": dg.MetadataValue.json(missed)} if missed else {}),
        },
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


supply_assets = [demand_forecast, forecast_backtest, service_levels, replenishment]
