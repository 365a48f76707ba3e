"""The daily forecast of day D from the mart, its weekly stored selection, backtests and the warehouse split."""

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.artifacts import ArtifactStore
from ml.forecast import TSB, backtest, backtest_for_day, daily_forecast, default_model, demand_from_mart
from ml.forecast.daily import SERVED_QUANTILES
from ml.forecast.marts import planning_demand, sku_dispersion
from ml.forecast.panel import next_periods
from ml.forecast.quantiles import nb1_quantile
from ml.forecast.selection import SELECTIONS, history_fingerprint, selection_anchor
from ml.inventory.policy import implied_dispersion, split_by_warehouse


def test_backtest_by_hand():
    fc = pd.DataFrame(
        {
            "unique_id": ["a", "a", "b", "b"],
            "ds": [1, 2, 1, 2],
            "step": [1, 2, 1, 2],
            "mean": [2.0, 2.0, 1.0, 1.0],
            "q50": [2.0, 2.0, 0.0, 0.0],
            "q90": [3.0, 3.0, 2.0, 2.0],
        }
    )
    # Actuals so far: day 1 only; SKU b has no row that day, so it sold nothing.
    actuals = pd.DataFrame({"unique_id": ["a"], "ds": [1], "y": [4.0]})
    overall, by_step = backtest(fc, actuals)
    assert overall["n_points"] == 2
    assert overall["WAPE"] == pytest.approx((2 + 1) / 4)
    assert overall["bias"] == pytest.approx((3 - 4) / 4)
    assert overall["coverage90"] == pytest.approx(0.5)
    assert list(by_step["step"]) == [1]
    hist = pd.DataFrame(
        {"unique_id": ["a"] * 3 + ["b"] * 3, "ds": [-2, -1, 0] * 2, "y": [1, 3, 1, 0, 2, 0.0]}
    )
    scaled, _ = backtest(fc, actuals, history=hist)
    # RMSSE: a -> sqrt(4 / 4) = 1, b -> sqrt(1 / 4) = 0.5 (scale2 = mean squared one-step change = 4 for both).
    assert scaled["RMSSE"] == pytest.approx(0.75)


def test_default_model_is_the_benchmarked_ensemble():
    m = default_model(kind="online_retail")
    assert set(m.candidates) >= {"gbm", "tsb", "croston_sba", "seasonal_naive"}
    assert {"orders", "price", "revenue"} <= set(m.covariates)


# -- the platform-facing API on the demand mart of the session's demand shop (built by dbt) ---------------------
N_SKUS = 24


@pytest.fixture(scope="module")
def mart(demand_shop):
    """The first 160 days of ``marts.fct_daily_sku_demand`` of the demand shop, dates as timestamps."""
    with duckdb.connect(str(demand_shop / "warehouse.duckdb"), read_only=True) as con:
        frame = con.execute(
            "SELECT * FROM marts.fct_daily_sku_demand WHERE demand_date < DATE '2025-01-01' + 160 ORDER BY ALL"
        ).df()
    frame = frame.astype(
        {c: float for c in ("units", "units_reversed_same_day", "revenue", "revenue_reversed_same_day")}
    )
    assert frame["sku"].nunique() == N_SKUS
    return frame.assign(demand_date=pd.to_datetime(frame["demand_date"]))


def test_demand_from_mart_maps_columns_and_price(mart):
    d = demand_from_mart(mart.head(3).assign(units=[2.0, 0.0, 4.0], revenue=[5.0, 0.0, 2.0]))
    assert list(d.columns) == ["unique_id", "ds", "y", "revenue", "orders", "price"]
    assert d["price"].iloc[0] == pytest.approx(2.5) and np.isnan(d["price"].iloc[1])
    with pytest.raises(ValueError):
        demand_from_mart(mart.drop(columns=["units"]))


def test_planning_demand_takes_off_the_sales_undone_the_same_day(mart):
    rows = mart.head(3).assign(
        units=[5.0, 7.0, 0.0],
        units_reversed_same_day=[5.0, 2.0, 0.0],
        revenue=[10.0, 21.0, 0.0],
        revenue_reversed_same_day=[10.0, 6.0, 0.0],
    )
    net = planning_demand(rows)
    assert net["units"].tolist() == [0.0, 5.0, 0.0] and net["revenue"].tolist() == [0.0, 15.0, 0.0]
    assert rows["units"].tolist() == [5.0, 7.0, 0.0]  # the caller's frame is left as it was
    # The price the models see stays per unit sold: 15 / 5 on the second day, none on a day all undone.
    price = demand_from_mart(net)["price"]
    assert np.isnan(price.iloc[0]) and price.iloc[1] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="revenue_reversed_same_day"):
        planning_demand(rows.drop(columns=["revenue_reversed_same_day"]))


def test_next_periods_skips_days_the_shop_never_trades():
    cal = pd.bdate_range("2024-01-01", periods=40).to_numpy()  # Monday to Friday only
    nxt = pd.DatetimeIndex(next_periods(cal, 6))
    assert (nxt.dayofweek < 5).all() and nxt[0] == pd.Timestamp("2024-02-26") and len(nxt) == 6


@pytest.mark.parametrize("n_days", [1, 2, 8])
def test_next_periods_of_a_new_shop_are_the_next_calendar_days(n_days):
    """One or two dates say nothing about a weekly calendar: no weekday is closed before it has passed twice."""
    cal = pd.date_range("2025-01-01", periods=n_days, freq="D").to_numpy()
    nxt = pd.DatetimeIndex(next_periods(cal, 28))
    assert (nxt == pd.date_range(pd.Timestamp(cal[-1]) + pd.Timedelta(days=1), periods=28, freq="D")).all()


def test_daily_forecast_shape_and_no_look_ahead(mart):
    days = np.sort(mart["demand_date"].unique())
    day = days[120]
    fc = daily_forecast(mart, day, horizon=14)
    assert list(fc.columns) == [
        "origin_date", "sku", "forecast_date", "step", "mean", "q50", "q80", "q90", "q95", "q99", "model"
    ]  # fmt: skip
    assert len(fc) == N_SKUS * 14 and (fc["forecast_date"] > day).all() and fc["step"].max() == 14
    levels = fc[["q50", "q80", "q90", "q95", "q99"]].to_numpy()
    assert (np.diff(levels, axis=1) >= 0).all() and (levels[:, 0] >= 0).all() and (fc["mean"] >= 0).all()
    assert (fc["q99"] > fc["q90"]).any()  # the tail levels are not copies of q90
    # the calibration table: every served level for every group, the "all" group serving the small classes
    calibration = pd.DataFrame(fc.attrs["calibration"])
    assert set(calibration["level"]) == {0.5, 0.8, 0.9, 0.95, 0.99}
    assert (calibration.groupby("group").size() == 5).all() and "all" in set(calibration["group"])
    assert calibration["coverage_held_out"].between(0, 1).all()
    assert calibration["calibrated_level"].between(0.01, 0.999).all()
    assert fc["forecast_date"].iloc[0] == days[121]
    tampered = mart.copy()
    later = tampered["demand_date"] > day
    tampered.loc[later, "units"] *= 50
    tampered.loc[later, "revenue"] *= 50
    pd.testing.assert_frame_equal(fc, daily_forecast(tampered, day, horizon=14))


def test_a_forecast_splits_by_warehouse_with_thinned_quantiles(mart):
    day = np.sort(mart["demand_date"].unique())[120]
    skus = sorted(mart["sku"].unique())
    shares = pd.DataFrame(
        {
            "sku": np.repeat(skus, 2),
            "warehouse_id": ["WH1", "WH2"] * len(skus),
            "share": [0.75, 0.25] * len(skus),
        }
    )
    whole = daily_forecast(mart, day, horizon=7)
    split = split_by_warehouse(whole, shares)
    assert len(split) == 2 * len(whole) and "warehouse_id" in split
    summed = split.groupby(["sku", "step"])["mean"].sum()
    np.testing.assert_allclose(summed.to_numpy(), whole.set_index(["sku", "step"])["mean"].loc[summed.index])
    # The 25% warehouse's q90 is the thinned NB1's, recomputed (not a quarter of the SKU's q90).
    phi = implied_dispersion(
        whole.pivot(index="sku", columns="step", values="mean").to_numpy(),
        whole.pivot(index="sku", columns="step", values="q90").to_numpy(),
    )
    wh2 = split[split["warehouse_id"] == "WH2"].pivot(index="sku", columns="step", values=["mean", "q90"])
    expect = nb1_quantile(wh2["mean"].to_numpy(), 1 + 0.25 * (phi[:, None] - 1), 0.9)
    np.testing.assert_allclose(wh2["q90"].to_numpy(), expect)
    assert (split["q90"] >= split["q50"]).all()


def test_backtest_for_day_scores_forecasts_made_k_days_earlier(mart):
    days = np.sort(mart["demand_date"].unique())
    # the older forecast holds q50 and q90 only (as days stored before the served levels grew); the newer all five
    older = daily_forecast(mart, days[110], horizon=14, model=TSB())
    newer = daily_forecast(mart, days[116], horizon=14, model=TSB(quantiles=SERVED_QUANTILES))
    forecasts = pd.concat([older, newer])
    out = backtest_for_day(forecasts, mart, days[117], lags=(1, 7, 30))
    assert list(out["lag"]) == [1, 7]  # no forecast was made 30 days before
    one = out.set_index("lag").loc[1]
    assert one["origin_date"] == days[116] and one["n_points"] == N_SKUS
    # By hand: the TSB forecast made at day 116 against the actuals of day 117.
    fc = forecasts[(forecasts["origin_date"] == days[116]) & (forecasts["forecast_date"] == days[117])]
    act = mart[mart["demand_date"] == days[117]].set_index("sku")["units"].reindex(fc["sku"]).to_numpy()
    assert one["WAPE"] == pytest.approx(np.abs(fc["mean"].to_numpy() - act).sum() / act.sum())
    assert one["coverage90"] == pytest.approx(np.mean(act <= fc["q90"].to_numpy()))
    for level in ("80", "95", "99"):
        assert one[f"coverage{level}"] == pytest.approx(np.mean(act <= fc[f"q{level}"].to_numpy()))
    assert one["coverage99"] >= one["coverage95"] >= one["coverage90"]
    seven = out.set_index("lag").loc[7]
    assert np.isnan(seven["coverage95"]) and np.isfinite(seven["coverage90"])  # no q95 that day: not scored
    assert seven["n_points"] == N_SKUS * 7 and np.isfinite(out["WRMSSE"]).all()


def test_the_daily_backtest_reads_only_the_origins_its_lags_score(mart):
    """``backtest_day`` fetches the few origins the lags pick; it must score exactly what reading every stored
    forecast of its window did."""
    from ml.forecast.base import QUANTILE_COLUMN
    from ml.supply.backtesting import FORECAST_DAYS_READ, backtest_day
    from ml.supply.demand import demand_history
    from ml.supply.forecasting import FORECASTS, ForecastSettings, forecast_day

    days = [d.date() for d in pd.to_datetime(np.sort(mart["demand_date"].unique()))]
    day = days[128]
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts; CREATE SCHEMA supply")
    con.register("mart_frame", mart.assign(demand_date=mart["demand_date"].dt.date))
    con.execute("CREATE TABLE marts.fct_daily_sku_demand AS SELECT * FROM mart_frame")
    # older than the window, every day from 100 to 116, and the day itself (not scored: not earlier than D),
    # stored as the demand_forecast asset stores them
    stored = [
        forecast_day(con, origin, ForecastSettings()).rows for origin in [days[60], *days[100:117], day]
    ]
    con.register("stored", pd.concat(stored))
    con.execute(f"CREATE TABLE {FORECASTS} AS SELECT * FROM stored")

    every_stored = con.execute(
        f"SELECT as_of_date AS origin_date, sku, forecast_date, horizon_day AS step, mean, "
        f"COLUMNS('^{QUANTILE_COLUMN.pattern}$') FROM {FORECASTS} WHERE as_of_date < ? AND as_of_date >= ?",
        [day, day - pd.Timedelta(days=FORECAST_DAYS_READ)],
    ).df()
    expected = backtest_for_day(every_stored, demand_history(con, day), day)
    got = backtest_day(con, day)
    assert dict(zip(got["lag"], got["origin_date"], strict=True)) == {
        1: days[116],
        7: days[116],
        14: days[114],
        28: days[100],
    }
    pd.testing.assert_frame_equal(
        got.drop(columns=["day"]).reset_index(drop=True),
        expected.drop(columns=["day"])
        .assign(origin_date=expected["origin_date"].dt.date)
        .reset_index(drop=True),
    )


def test_selection_anchor_is_the_monday_on_or_before():
    assert selection_anchor("2025-01-08") == pd.Timestamp("2025-01-06")  # Wednesday -> Monday
    assert selection_anchor("2025-01-06") == pd.Timestamp("2025-01-06")
    assert selection_anchor("2025-01-05") == pd.Timestamp("2024-12-30")  # Sunday -> the Monday before
    assert selection_anchor("2025-01-08", every_days=1) == pd.Timestamp("2025-01-08")


def _small_selection():
    from ml.forecast import MovingAverage, SelectedEnsemble

    return SelectedEnsemble({"tsb": TSB, "ma": lambda: MovingAverage(28)}, horizon=14, n_origins=2)


def test_weekly_selection_is_stored_reused_and_order_independent(mart, tmp_path):
    days = pd.DatetimeIndex(np.sort(mart["demand_date"].unique()))
    anchor = selection_anchor(days[120])
    wed, fri = anchor + pd.Timedelta(days=2), anchor + pd.Timedelta(days=4)
    assert {wed, fri} <= set(days)
    store = ArtifactStore(tmp_path)
    first = daily_forecast(mart, fri, horizon=14, model=_small_selection(), selection_store=store)
    fingerprint = history_fingerprint(demand_from_mart(mart), anchor)
    stored = f"selection-{anchor.date()}-ensemble-{fingerprint}.pkl"
    info = store.info(SELECTIONS, stored)
    assert first.attrs["selection"] == {
        "selected_on": str(anchor.date()),
        "reused": False,
        "history": fingerprint,
        "replaced": 0,
        "artifact": info.as_metadata(),
    }
    assert store.names(SELECTIONS) == [stored] and info.size_bytes == info.path.stat().st_size > 0
    again = daily_forecast(mart, wed, horizon=14, model=_small_selection(), selection_store=store)
    assert again.attrs["selection"]["reused"] is True
    assert again.attrs["selection"]["artifact"]["sha256"] == info.sha256
    assert (
        again.attrs["calibration"] == first.attrs["calibration"] != []
    )  # the stored selection keeps its table
    # The same as selecting at the anchor and updating to Wednesday by hand, and as a run with nothing stored.
    demand = demand_from_mart(mart)
    by_hand = _small_selection().fit(demand, origin=anchor)
    by_hand.update(_panel(demand, wed))
    expected = by_hand.predict_panel(14, future_calendar=next_periods(by_hand.panel_.calendar, 14))
    np.testing.assert_allclose(again["mean"].to_numpy(), expected.mean.ravel())
    fresh = daily_forecast(
        mart, wed, horizon=14, model=_small_selection(), selection_store=ArtifactStore(tmp_path / "new")
    )
    pd.testing.assert_frame_equal(again, fresh)
    # Nothing after Wednesday is read, by the stored selection or by the update.
    tampered = mart.copy()
    later = pd.to_datetime(tampered["demand_date"]) > wed
    tampered.loc[later, "units"] *= 50
    other = daily_forecast(
        tampered, wed, horizon=14, model=_small_selection(), selection_store=ArtifactStore(tmp_path / "t")
    )
    pd.testing.assert_frame_equal(again, other)


def _panel(demand, day):
    from ml.forecast.panel import to_panel

    return to_panel(demand, covariates=(), origin=pd.Timestamp(day))


def test_a_damaged_stored_selection_is_replaced(mart, tmp_path):
    days = pd.DatetimeIndex(np.sort(mart["demand_date"].unique()))
    day = days[120]
    anchor = selection_anchor(day)
    fingerprint = history_fingerprint(demand_from_mart(mart), anchor)
    store = ArtifactStore(tmp_path)
    path = store.path(SELECTIONS, f"selection-{anchor.date()}-ensemble-{fingerprint}.pkl")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle")
    with pytest.warns(UserWarning, match="could not be loaded"):
        fc = daily_forecast(mart, day, horizon=14, model=_small_selection(), selection_store=store)
    assert fc.attrs["selection"]["reused"] is False
    again = daily_forecast(mart, day, horizon=14, model=_small_selection(), selection_store=store)
    assert again.attrs["selection"]["reused"] is True  # the damaged file was overwritten by a good one
    assert store.names(SELECTIONS) == [path.name]
    pd.testing.assert_frame_equal(fc, again)


def test_a_selection_stored_for_other_quantile_levels_is_made_again(mart, tmp_path):
    """A week's selection stored by a version serving q50 and q90 only cannot serve the five levels: the first
    day of the new version selects again (and calibrates every level) instead of failing or serving two."""
    from ml.forecast import MovingAverage, SelectedEnsemble

    day = pd.DatetimeIndex(np.sort(mart["demand_date"].unique()))[120]
    store = ArtifactStore(tmp_path)
    old = daily_forecast(mart, day, horizon=14, model=_small_selection(), selection_store=store)
    assert "q95" not in old.columns and old.attrs["selection"]["reused"] is False
    five = SelectedEnsemble(
        {"tsb": TSB, "ma": lambda: MovingAverage(28)}, horizon=14, n_origins=2, quantiles=SERVED_QUANTILES
    )
    new = daily_forecast(mart, day, horizon=14, model=five, selection_store=store)
    assert new.attrs["selection"]["reused"] is False and len(store.names(SELECTIONS)) == 1
    assert {"q80", "q95", "q99"} <= set(new.columns)
    assert {row["level"] for row in new.attrs["calibration"]} == set(SERVED_QUANTILES)
    np.testing.assert_allclose(new["mean"].to_numpy(), old["mean"].to_numpy())  # the same selection otherwise


def test_sku_dispersion_from_the_mart_by_hand():
    days = pd.date_range("2025-02-03", periods=8, freq="D")
    mart = pd.DataFrame(
        {
            "sku": ["steady"] * 8 + ["lumpy"] * 8,
            "demand_date": list(days) * 2,
            "units": [2.0] * 8 + [0.0, 0.0, 0.0, 12.0] * 2,
            "revenue": 1.0,
            "n_orders": 1,
        }
    )
    phi = sku_dispersion(mart)
    # steady: variance 0, floored at 1; lumpy: mean 3, variance (2 * 81 + 6 * 9) / 8 = 27, so 27 / 3 = 9.
    assert phi["steady"] == 1.0 and phi["lumpy"] == pytest.approx(9.0)
    assert sku_dispersion(mart.iloc[:0]).empty
