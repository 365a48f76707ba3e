"""Small PNG charts for the UI: pictures ops would rather look at than a table of numbers.

Rendered with matplotlib's Agg backend (no screen needed) into PNG bytes; :func:`png_markdown` embeds one in
markdown as a data URI, so the Dagster UI's markdown metadata shows the image itself.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # before pyplot: a headless backend, whatever the environment says

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def top_skus(forecast: pd.DataFrame, n: int = 4, horizon_days: int = 7) -> list[str]:
    """The ``n`` SKUs with the most forecast units over the first ``horizon_days`` (ties broken by SKU)."""
    near = forecast[forecast["horizon_day"] <= horizon_days]
    totals = (
        near.groupby("sku")["mean"].sum().reset_index().sort_values(["mean", "sku"], ascending=[False, True])
    )
    return totals["sku"].astype(str).head(n).tolist()


def forecast_vs_actuals_png(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    skus: list[str],
    history_days: int = 56,
    title: str = "",
) -> bytes:
    """One panel per SKU: the last ``history_days`` of actual units, then the forecast mean with its q50–q90 band.

    ``history``: ``sku, demand_date, units``; ``forecast``: ``sku, forecast_date, mean, q50, q90``.
    """
    if not skus:
        raise ValueError("no SKUs to plot")
    fig, axes = plt.subplots(len(skus), 1, figsize=(8, 1.9 * len(skus)), sharex=True, squeeze=False)
    history = history.assign(demand_date=pd.to_datetime(history["demand_date"]))
    forecast = forecast.assign(forecast_date=pd.to_datetime(forecast["forecast_date"]))
    start = forecast["forecast_date"].min() - pd.Timedelta(days=history_days)
    for ax, sku in zip(axes[:, 0], skus, strict=True):
        past = history[(history["sku"].astype(str) == sku) & (history["demand_date"] >= start)]
        past = past.sort_values("demand_date")
        future = forecast[forecast["sku"].astype(str) == sku].sort_values("forecast_date")
        ax.plot(past["demand_date"], past["units"], color="#333333", lw=1.2, label="actual units")
        ax.fill_between(
            future["forecast_date"],
            future["q50"],
            future["q90"],
            color="#4c78a8",
            alpha=0.25,
            label="q50–q90",
        )
        ax.plot(future["forecast_date"], future["mean"], color="#4c78a8", lw=1.6, label="forecast mean")
        ax.set_ylabel(str(sku), rotation=0, ha="right", va="center", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=3, frameon=False)
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=72)
    plt.close(fig)
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str) -> str:
    """Markdown showing a PNG inline (a data URI): a picture in the metadata, not a link to a file."""
    encoded = base64.b64encode(png).decode("ascii")
    return f"![{alt}](data:image/png;base64,{encoded})"
