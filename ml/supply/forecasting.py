"""``supply.demand_forecast``: day D's forecast per SKU for the next trading days, mean and quantiles."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import duckdb
import pandas as pd
from pydantic import BaseModel, Field

from ml.artifacts import ArtifactStore
from ml.summary import summary
from ml.supply.demand import demand_history
from ml.warehouse import markdown_table

FORECASTS = "supply.demand_forecast"
HORIZON = 28
"""Trading days forecast after D."""


class ForecastSettings(BaseModel):
    model: Literal["fast", "full"] = Field(
        default="fast",
        description=(
            "fast: the local models (TSB, Croston-SBA, moving average, naive, seasonal naive), selected afresh "
            "every day; seconds for 10k SKUs. full: adds the global gradient-boosting model, selected and trained "
            "once a week (on Mondays, from the demand up to that Monday) and updated with each day's demand in "
            "between; selections are kept in the artifact store (forecast_selections)."
        ),
    )
    reselect_every_days: int = Field(
        default=7, ge=1, description="With model full: days between two selections (7 = every Monday)."
    )


@dataclass
class DayForecast:
    rows: pd.DataFrame
    """The day's rows of :data:`FORECASTS`: ``as_of_date, sku, forecast_date, horizon_day, mean``, one column per
    served quantile (``q50, q80, q90, q95, q99``) and ``model_name``."""
    history: pd.DataFrame
    """The demand the forecast was fitted on (for the chart)."""
    selection: dict = field(default_factory=dict)
    """Which selection served (:func:`ml.forecast.daily.daily_forecast`'s ``attrs["selection"]``)."""
    calibration: list[dict] = field(default_factory=list)
    """The selection's quantile coverage per demand class on validation (``attrs["calibration"]``)."""


def forecast_day(
    con: duckdb.DuckDBPyConnection, day: date, settings: ForecastSettings, store: ArtifactStore | None = None
) -> DayForecast | None:
    """Forecast the :data:`HORIZON` trading days after ``day`` from the demand up to it (None: no demand yet).

    With ``settings.model == "full"`` the week's selection is read from (or written to) ``store``; it must see
    the same history whichever day of its week builds it, so the history starts before the selection anchor.
    """
    from ml.forecast.base import quantile_column
    from ml.forecast.daily import SERVED_QUANTILES, daily_forecast
    from ml.forecast.selection import selection_anchor

    weekly = settings.model == "full"
    anchor = selection_anchor(day, settings.reselect_every_days).date() if weekly else day
    history = demand_history(con, day, history_from=anchor)
    if history.empty:
        return None
    fc = daily_forecast(
        history,
        day,
        horizon=HORIZON,
        model=settings.model,
        selection_store=store if weekly else None,
        reselect_every_days=settings.reselect_every_days,
    )
    rows = pd.DataFrame(
        {
            "as_of_date": pd.Timestamp(day).date(),
            "sku": fc["sku"].astype(str),
            "forecast_date": pd.to_datetime(fc["forecast_date"]).dt.date,
            "horizon_day": fc["step"].astype(int),
            "mean": fc["mean"].astype(float),
            **{quantile_column(q): fc[quantile_column(q)].astype(float) for q in SERVED_QUANTILES},
            "model_name": fc["model"].astype(str),
        }
    )
    return DayForecast(
        rows=rows,
        history=history,
        selection=fc.attrs.get("selection", {}),
        calibration=fc.attrs.get("calibration", []),
    )


def calibration_frame(calibration: list[dict]) -> pd.DataFrame:
    """The calibration rows as ops read them: per demand class and level, the validation points, the coverage of
    the uncalibrated quantile, the level served and the coverage on the latest validation origin when calibrated
    on the earlier ones."""
    frame = pd.DataFrame(calibration)
    frame["serves"] = frame["serves"].map(", ".join)
    for col in ("coverage_uncalibrated", "calibrated_level", "coverage_held_out"):
        frame[col] = frame[col].round(3)
    return frame[
        [
            "group",
            "serves",
            "level",
            "points",
            "coverage_uncalibrated",
            "calibrated_level",
            "coverage_held_out",
        ]
    ]


def forecast_summary(result: DayForecast) -> dict:
    """Numbers that plot (SKUs, units of the next 7 days), which models and which selection served, the top SKUs
    and a chart of the last 8 weeks of actuals against the forecast."""
    from ml.charts import forecast_vs_actuals_png, png_markdown, top_skus
    from ml.forecast.base import quantile_column
    from ml.forecast.ensemble import ALL

    frame, selection = result.rows, result.selection
    next_week = frame[frame["horizon_day"] <= 7]
    top = next_week.groupby("sku")[["mean", "q90"]].sum().sort_values("mean", ascending=False).head(10)
    as_of = frame["as_of_date"].iloc[0]
    png = forecast_vs_actuals_png(
        result.history,
        frame,
        top_skus(frame, n=4),
        title=f"Top SKUs: actual units to {as_of}, forecast after",
    )
    return summary(
        len(frame),
        metrics={
            "skus": int(frame["sku"].nunique()),
            "units_next_7_days": float(next_week["mean"].sum()),
            "units_next_7_days_q90_sum": float(next_week["q90"].sum()),
            # coverage on the latest validation origin (all series, levels calibrated on the earlier origins)
            **{
                f"validation_coverage_held_out_{quantile_column(row['level'])}": float(
                    row["coverage_held_out"]
                )
                for row in result.calibration
                if row["group"] == ALL
                and row["level"] in (0.9, 0.95)
                and not math.isnan(row["coverage_held_out"])
            },
            "model_selected_on": selection.get("selected_on", ""),
            "model_selection_reused": bool(selection.get("reused", False)),
            # the history a weekly selection was fitted on (a change mid-week means the data changed); the
            # daily model is fitted on the day's history and has none to show
            **({"model_selection_history": selection["history"]} if selection.get("history") else {}),
        },
        markdown={
            "top_skus_next_7_days": markdown_table(top.reset_index()),
            **(
                {"quantile_calibration": markdown_table(calibration_frame(result.calibration))}
                if result.calibration
                else {}
            ),
            "forecast_chart": png_markdown(png, alt=f"forecast vs actuals, top SKUs, as of {as_of}"),
        },
        json={
            "models": frame.groupby("model_name")["sku"].nunique().to_dict(),
            **({"model_selection_artifact": selection["artifact"]} if selection.get("artifact") else {}),
        },
    )
