"""The PNG charts the UI shows: real images of the right data, not placeholders."""

from __future__ import annotations

import base64
import struct

import pandas as pd
import pytest

from ml.charts import PNG_SIGNATURE, forecast_vs_actuals_png, png_markdown, top_skus


def _frames():
    days = pd.date_range("2024-01-01", periods=30, freq="D")
    history = pd.DataFrame(
        [
            {"sku": s, "demand_date": d, "units": float(i % 5 + k)}
            for k, s in enumerate("ABC")
            for i, d in enumerate(days)
        ]
    )
    future = pd.date_range("2024-01-31", periods=28, freq="D")
    forecast = pd.DataFrame(
        [
            {"sku": s, "forecast_date": d, "horizon_day": h, "mean": m, "q50": m * 0.9, "q90": m * 1.5}
            for s, m in (("A", 1.0), ("B", 3.0), ("C", 2.0))
            for h, d in enumerate(future, 1)
        ]
    )
    return history, forecast


def test_top_skus_ranks_by_near_term_forecast_units():
    _, forecast = _frames()
    assert top_skus(forecast, n=2) == ["B", "C"]
    assert top_skus(forecast, n=10) == ["B", "C", "A"]


def test_forecast_chart_is_a_png_with_one_panel_per_sku():
    history, forecast = _frames()
    one = forecast_vs_actuals_png(history, forecast, ["B"])
    three = forecast_vs_actuals_png(history, forecast, ["B", "C", "A"])
    for png in (one, three):
        assert png.startswith(PNG_SIGNATURE)
    # IHDR holds width and height: the same width, three panels are taller than one.
    (w1, h1), (w3, h3) = (struct.unpack(">II", p[16:24]) for p in (one, three))
    assert w1 == w3 == 576  # 8 inches at 72 dpi
    assert h3 > 2.5 * h1 > 0
    with pytest.raises(ValueError, match="no SKUs"):
        forecast_vs_actuals_png(history, forecast, [])


def test_png_markdown_embeds_the_image_as_a_data_uri():
    history, forecast = _frames()
    png = forecast_vs_actuals_png(history, forecast, ["A"])
    text = png_markdown(png, alt="chart")
    assert text.startswith("![chart](data:image/png;base64,")
    assert base64.b64decode(text.split(",", 1)[1].rstrip(")")) == png
    assert len(png) < 200_000  # small enough for the event log
