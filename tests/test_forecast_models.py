"""Forecasting models on a simulated store with known demand: accuracy floor, quantile shape, no look-ahead."""

import numpy as np
import pandas as pd
import pytest

from ml.forecast.base import Forecaster
from ml.forecast.baselines import TSB, CrostonSBA, MovingAverage, Naive, SeasonalNaive, Zero
from ml.forecast.classify import adi_cv2, classify
from ml.forecast.ensemble import SelectedEnsemble
from ml.forecast.gbm import GlobalGBM
from ml.forecast.metrics import evaluate
from ml.forecast.panel import to_panel
from ml.forecast.protocol import make_split
from ml.forecast.synthetic import synthetic_store

M = 7
H = 28


def small_gbm():
    return GlobalGBM(
        horizon=H, season_length=M, known_covariates=("price", "promo"), max_iter=80, n_anchors=25
    )


def small_ensemble():
    return SelectedEnsemble(
        {"gbm": small_gbm, "tsb": TSB, "ma": lambda: MovingAverage(28)},
        horizon=H,
        n_origins=2,
        min_class_series=10,
    )


MODELS = {
    "moving_average": lambda: MovingAverage(28),
    "croston_sba": CrostonSBA,
    "tsb": TSB,
    "gbm": small_gbm,
    "ensemble": small_ensemble,
}


@pytest.fixture(scope="module")
def store():
    df, expected = synthetic_store(n_series=40, n_periods=260, season_length=M, seed=1)
    panel = to_panel(df, covariates=["price", "promo"])
    split = make_split(panel, horizon=H)
    return df, expected, panel, split


def _score(model: Forecaster, split, panel):
    train = split.train()
    fcov = {k: v[:, split.origin + 1 :] for k, v in panel.covariates.items()}
    fc = model.fit_panel(train).predict_panel(H, future_calendar=split.test_calendar, future_covariates=fcov)
    fc = fc.subset(split.ids)
    return fc, evaluate(split.actual(), fc.mean, split.history(), split.weights, fc.quantiles)


@pytest.fixture(scope="module")
def scores(store):
    _, _, panel, split = store
    out = {}
    for name, make in {**MODELS, "zero": Zero, "seasonal_naive": lambda: SeasonalNaive(M)}.items():
        out[name] = _score(make(), split, panel)
    return out


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_beats_zero_and_seasonal_naive(scores, name):
    wr = scores[name][1]["WRMSSE"]
    assert wr < scores["zero"][1]["WRMSSE"]
    assert wr < scores["seasonal_naive"][1]["WRMSSE"]


def test_global_model_tracks_the_known_expected_demand(store, scores):
    _, expected, panel, split = store
    pos = pd.Index(panel.ids).get_indexer(split.ids)
    truth = expected[pos, split.origin + 1 :]
    err = {n: np.mean((scores[n][0].mean - truth) ** 2) for n in ("gbm", "seasonal_naive", "tsb")}
    # Weekly profile and promotions are in the truth: the global model with calendar and covariates sees them.
    assert err["gbm"] < err["tsb"] < err["seasonal_naive"]


@pytest.mark.parametrize("name", [*MODELS, "zero", "seasonal_naive"])
def test_quantiles_are_ordered_and_non_negative(scores, name):
    fc = scores[name][0]
    q50, q90 = fc.quantiles[0.5], fc.quantiles[0.9]
    assert (fc.mean >= 0).all() and (q50 >= 0).all() and (q90 >= q50).all()
    assert np.isfinite(fc.mean).all() and np.isfinite(q90).all()


def test_calibrated_coverage_is_near_nominal(scores):
    assert 0.8 <= scores["ensemble"][1]["coverage90"] <= 0.97


def test_long_frame_api_returns_ordered_quantile_columns(store):
    df, _, _, _ = store
    origin = df["ds"].sort_values().unique()[-H - 1]
    out = TSB().fit(df, origin=origin).predict(5)
    assert list(out.columns) == ["unique_id", "ds", "step", "mean", "q50", "q90"]
    assert len(out) == 40 * 5 and (out["ds"] > origin).all()
    assert (out["q90"] >= out["q50"]).all()


@pytest.mark.parametrize("make", [Naive, TSB, CrostonSBA, small_gbm], ids=["naive", "tsb", "croston", "gbm"])
def test_no_forecast_for_origin_reads_later_data(store, make):
    df, _, _, _ = store
    days = np.sort(df["ds"].unique())
    origin = days[-H - 1]
    future = df["ds"] > origin
    tampered = df.copy()
    tampered.loc[future, "y"] = tampered.loc[future, "y"] * 100 + 50
    tampered.loc[future, "price"] = 999.0
    a = make().fit(df, origin=origin).predict(H)
    b = make().fit(tampered, origin=origin).predict(H)
    c = make().fit(df[~future]).predict(H)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


def test_ensemble_validates_only_before_its_origin(store):
    df, _, _, _ = store
    days = np.sort(df["ds"].unique())
    origin = days[-H - 1]
    seen = []

    class Spy(TSB):
        def _fit(self, panel):
            seen.append(panel.calendar[-1])
            super()._fit(panel)

    SelectedEnsemble({"spy": Spy, "ma": lambda: MovingAverage(28)}, horizon=H, n_origins=3).fit(
        df, origin=origin
    )
    assert seen and max(seen) <= origin
    # Three validation fits strictly before the origin, then the refit at the origin.
    assert sorted(seen)[:3] == [days[-H - 1 - k * H] for k in (3, 2, 1)]


def test_ensemble_validates_on_named_days_when_given(store):
    """A protocol may name its validation origins (a peak a year back): exactly those are fitted, oldest first,
    and a day that is not a period, or whose horizon passes the fit origin, is refused."""
    df, _, _, _ = store
    days = np.sort(df["ds"].unique())
    origin = days[-H - 1]
    named = [days[90], days[-H - 1 - 2 * H], days[110]]
    seen = []

    class Spy(TSB):
        def _fit(self, panel):
            seen.append(panel.calendar[-1])
            super()._fit(panel)

    ens = SelectedEnsemble(
        {"spy": Spy, "ma": lambda: MovingAverage(28)}, horizon=H, n_origins=3, validation_days=named
    ).fit(df, origin=origin)
    assert seen[:3] == sorted(named) and seen[3] == origin  # the three named days, then the refit
    assert ens.selection_summary()["validation_origins"] == [str(d)[:10] for d in sorted(named)]
    with pytest.raises(ValueError, match="passes the fit origin"):
        SelectedEnsemble({"ma": lambda: MovingAverage(28)}, horizon=H, validation_days=[days[-H - 1]]).fit(
            df, origin=origin
        )
    with pytest.raises(ValueError, match="not a period"):
        SelectedEnsemble({"ma": lambda: MovingAverage(28)}, horizon=H, validation_days=["1999-01-01"]).fit(
            df, origin=origin
        )


def test_split_history_can_start_later_for_the_scales(store):
    df, _, _, _ = store
    split = make_split(to_panel(df), horizon=H)
    since = pd.Timestamp(np.sort(df["ds"].unique())[50])
    full, late = split.history(), split.history(since)
    assert late.shape == (full.shape[0], full.shape[1] - 50)
    known = ~np.isnan(late)
    np.testing.assert_array_equal(late[known], full[:, 50:][known])
    # each row is unknown only before its first demand from that day on
    first = np.argmax(known, axis=1)
    assert (known == (np.arange(late.shape[1])[None, :] >= first[:, None])).all()
    assert (late[np.arange(len(first)), first] > 0).all()


def test_classification_by_hand():
    y = np.array(
        [
            [5, 5, 6, 5, 5, 6, 5, 5],  # every day, steady: smooth
            [1, 20, 1, 30, 2, 1, 25, 1],  # every day, volatile: erratic
            [5, 0, 0, 5, 0, 0, 6, 0],  # one day in three, steady: intermittent
            [1, 0, 0, 40, 0, 0, 2, 0],  # one day in three, volatile: lumpy
        ],
        dtype=float,
    )
    adi, cv2 = adi_cv2(y)
    assert adi[2] == pytest.approx(8 / 3)
    assert list(classify(adi, cv2)) == ["smooth", "erratic", "intermittent", "lumpy"]


def test_quantile_level_calibration_hits_the_target_coverage():
    from ml.forecast.quantiles import calibrate_levels, pooled_coverage

    rng = np.random.default_rng(0)
    mean = rng.gamma(0.5, 4, (400, 28))
    phi = rng.uniform(1.5, 20, 400)
    # Actual demand twice the forecast: the nominal 0.9 level under-covers, the calibrated one does not.
    true = mean * 2.0
    y = rng.negative_binomial(true / (phi[:, None] - 1), 1 / phi[:, None]).astype(float)
    recs = [(phi, mean, y)]
    lv = calibrate_levels(recs, (0.9,))[0.9]
    r = [(phi[:, None], mean, y)]
    assert pooled_coverage(r, 0.9) < 0.9 <= pooled_coverage(r, lv)
    assert pooled_coverage(r, lv - 1e-6) < 0.9


def test_update_keeps_the_trees_and_recomputes_the_features(store):
    _, _, panel, split = store
    early = panel.head(split.origin - 9)
    model = small_gbm().fit_panel(early)
    trees = model.model_
    before = model.predict_panel(H).mean
    # Updating with the very history it was fitted on changes nothing: the features are recomputed as at fit.
    np.testing.assert_allclose(model.update(early).predict_panel(H).mean, before)
    moved = model.update(panel.head(split.origin + 1))
    assert moved.model_ is trees  # not retrained
    assert moved.panel_.n_periods == split.origin + 1
    after = moved.predict_panel(H, future_calendar=split.test_calendar)
    assert after.ds[0] == split.test_calendar[0]
    assert not np.allclose(after.mean[:, :5], before[:, :5])  # the ten newer days moved the forecast


def test_update_of_a_local_model_is_a_refit(store):
    _, _, panel, split = store
    updated = TSB().fit_panel(panel.head(split.origin - 9)).update(panel.head(split.origin + 1))
    fresh = TSB().fit_panel(panel.head(split.origin + 1))
    np.testing.assert_allclose(updated.predict_panel(H).mean, fresh.predict_panel(H).mean)


def test_ensemble_reused_at_a_validation_origin_reproduces_its_validation_forecasts(store):
    from ml.forecast.ensemble import _combine

    _, _, panel, split = store
    ens = small_ensemble().fit_panel(split.train())
    members = dict(ens.members_)
    rec = ens.records_[0]
    v = rec.origin
    again = ens.with_members_fitted(panel.head(v + 1))
    assert set(again.members_) == set(ens.used_members())
    assert again.weights_ is ens.weights_ and ens.members_ == members  # the original is left alone
    fcov = {k: c[:, v + 1 : v + 1 + H] for k, c in panel.head(v + 1 + H).covariates.items()}
    fc = again.predict_panel(H, panel.calendar[v + 1 : v + 1 + H], fcov).subset(rec.ids)
    expected = np.zeros_like(rec.actual)
    for cls, w in ens.weights_.items():
        sel = rec.classes == cls
        if cls != "all" and sel.any():
            expected[sel] = _combine(rec.means, w)[sel]
    np.testing.assert_allclose(fc.mean, expected, rtol=1e-9, atol=1e-9)


def test_ensemble_update_moves_the_origin_and_keeps_the_selection(store):
    _, _, panel, split = store
    ens = small_ensemble().fit_panel(panel.head(split.origin - 4))
    weights = {k: dict(w) for k, w in ens.weights_.items()}
    ens.update(panel.head(split.origin + 1))
    assert ens.weights_ == weights
    assert set(ens.members_) == set(ens.used_members())
    assert all(m.panel_.n_periods == split.origin + 1 for m in ens.members_.values())
    fc = ens.predict_panel(H, future_calendar=split.test_calendar)
    assert fc.mean.shape == (panel.n_series, H) and (fc.quantiles[0.9] >= fc.quantiles[0.5]).all()


class _Inflated(TSB):
    """TSB times 1.6: far off in total, the kind of member the bias gate keeps out of the combination."""

    def _predict_mean(self, h, calendar, future_covariates):
        return 1.6 * super()._predict_mean(h, calendar, future_covariates)


def test_bias_gate_keeps_members_biased_on_validation_out_of_the_combination(store):
    _, _, panel, split = store
    cands = {"tsb": TSB, "inflated": _Inflated}
    gated = SelectedEnsemble(cands, horizon=H, n_origins=2, min_class_series=10).fit_panel(split.train())
    b = gated.validation_bias_
    assert b["inflated"] == pytest.approx(1.6 * (1 + b["tsb"]) - 1)  # pooled over both origins
    assert abs(b["tsb"]) <= 0.05 < b["inflated"]
    assert gated.eligible_ == ["tsb"]
    assert all(set(w) == {"tsb"} for w in gated.weights_.values())
    summary = gated.selection_summary()
    assert summary["eligible"] == ["tsb"] and summary["max_validation_bias"] == 0.05
    by_origin = summary["validation"]
    for inflated, tsb in zip(
        by_origin["inflated"]["bias_by_origin"], by_origin["tsb"]["bias_by_origin"], strict=True
    ):
        assert inflated == pytest.approx(1.6 * (1 + tsb) - 1, abs=1e-3)
    # Without the gate every candidate is eligible again.
    open_ = SelectedEnsemble(cands, horizon=H, n_origins=2, min_class_series=10, max_validation_bias=None)
    assert open_.fit_panel(split.train()).eligible_ == ["tsb", "inflated"]


def test_a_stored_model_forecasts_the_same_after_update(store):
    import pickle

    _, _, panel, split = store
    ens = small_ensemble().fit_panel(panel.head(split.origin - 4))
    stored = pickle.loads(pickle.dumps(ens.for_storage()))
    assert stored.panel_ is None and stored.records_ is None
    assert stored.selection_summary() == ens.selection_summary()
    newer = panel.head(split.origin + 1)
    a = ens.update(newer).predict_panel(H, future_calendar=split.test_calendar)
    b = stored.update(newer).predict_panel(H, future_calendar=split.test_calendar)
    np.testing.assert_allclose(a.mean, b.mean)
    np.testing.assert_allclose(a.quantiles[0.9], b.quantiles[0.9])


def test_wrmsse_row_weights_by_hand():
    from ml.forecast.features import AnchorStats

    y = np.array([[2.0, 0.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 6.0, 0.0, 0.0]])
    df = pd.DataFrame(
        {"unique_id": np.repeat(["a", "b", "c"], 4), "ds": np.tile(np.arange(4), 3), "y": y.ravel()}
    )
    panel = to_panel(df)
    model = GlobalGBM(weighting="wrmsse", price=None)
    model.stats_ = AnchorStats(panel, 2)
    rows = np.ones(3, bool)
    # Volume weights (no price) 4, 4, 6 -> normalised to mean 1; level = mean of the 4 days: 1, 1, 1.5;
    # scale² = mean squared day-to-day change: 4, 0 (no scale: weight 0), 24.
    rev = np.array([4.0, 4.0, 6.0]) / 14 * 3
    raw = rev * np.array([1.0 / 4, 0.0, 1.5**2 / 24])
    np.testing.assert_allclose(model._row_weights(panel, 3, rows), raw / raw.mean())
    model.weighting = "wrmsse_sqrt"
    np.testing.assert_allclose(model._row_weights(panel, 3, rows), np.sqrt(raw / raw.mean()))


def test_recency_weights_halve_every_half_life():
    y = np.array([[2.0, 0.0, 2.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 3.0]])
    df = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 5), "ds": np.tile(np.arange(5), 2), "y": y.ravel()})
    panel = to_panel(df)
    from ml.forecast.features import AnchorStats

    plain = GlobalGBM(price=None)
    decayed = GlobalGBM(price=None, anchor_half_life=2.0)
    plain.stats_ = decayed.stats_ = AnchorStats(panel, 2)
    rows = np.ones(2, bool)
    base = plain._anchor_weights(panel, 4, 3, rows)
    np.testing.assert_allclose(
        plain._anchor_weights(panel, 10, 3, rows), base
    )  # no decay without a half-life
    np.testing.assert_allclose(decayed._anchor_weights(panel, 5, 3, rows), base * 0.5)  # 2 periods old: half
    np.testing.assert_allclose(decayed._anchor_weights(panel, 7, 3, rows), base * 0.25)


def test_last_peak_features_by_hand():
    from ml.forecast.features import AnchorStats, anchor_features, smoother_states

    days = pd.date_range("2020-11-01", "2021-09-30", freq="D")
    # "xmas" sells 4 a day in November and 8 a day in December, 1 a day otherwise; "new" starts in March 2021.
    xmas = np.where(days.month == 11, 4.0, np.where(days.month == 12, 8.0, 1.0))
    new_days = days[days >= "2021-03-01"]
    df = pd.concat(
        [
            pd.DataFrame({"unique_id": "xmas", "ds": days, "y": xmas}),
            pd.DataFrame({"unique_id": "new", "ds": new_days, "y": 2.0}),
        ]
    )
    panel = to_panel(df)
    st = AnchorStats(panel, 6, peak_months=(11, 12))
    at = {
        d: int(np.searchsorted(panel.calendar, np.datetime64(d)))
        for d in ("2021-04-30", "2021-06-01", "2021-08-31")
    }
    xi = list(panel.ids).index("xmas")
    # 2021-04-30 minus 182 days is 2020-10-30: no peak period is old enough yet.
    assert np.isnan(st.last_peak_mean(at["2021-04-30"])).all()
    # 2021-06-01 minus 182 days is 2020-12-01: all of November and one December day.
    np.testing.assert_allclose(st.last_peak_mean(at["2021-06-01"])[xi], (30 * 4 + 8) / 31)
    a = at["2021-08-31"]
    peak = st.last_peak_mean(a)
    np.testing.assert_allclose(peak[xi], (30 * 4 + 31 * 8) / 61)
    assert np.isnan(peak[list(panel.ids).index("new")])  # not alive last season
    f, lvl = anchor_features(st, a, smoother_states(panel.y, [a]), None)
    life = xmas[: a + 1].mean()
    np.testing.assert_allclose(f["last_peak_share"][xi], peak[xi] / life)
    np.testing.assert_allclose(f["last_peak_rel"][xi], peak[xi] / 1.0)  # the last 112 days sold 1 a day
    # Nothing after the anchor is read: a changed future leaves the features as they were.
    changed = df.copy()
    changed.loc[changed["ds"] > days[a], "y"] = 100.0
    st2 = AnchorStats(to_panel(changed), 6, peak_months=(11, 12))
    f2, _ = anchor_features(st2, a, smoother_states(to_panel(changed).y, [a]), None)
    for name in ("last_peak_share", "last_peak_rel"):
        np.testing.assert_allclose(f2[name], f[name])
    # Integer calendars have no months: the features are simply absent.
    numbered = to_panel(df.assign(ds=(df["ds"] - days[0]).dt.days))
    st_int = AnchorStats(numbered, 6, peak_months=(11, 12))
    assert "last_peak_rel" not in anchor_features(st_int, a, smoother_states(numbered.y, [a]), None)[0]


def test_year_before_features_by_hand():
    """The SKU's and the store's movement after the same date a year before (364 days: the same weekday), the
    store's level against then, and last year's seasonal factor of the target's week; nothing after the anchor
    is read, and a history shorter than a year gives NaN."""
    from ml.forecast.features import AnchorStats, anchor_features, smoother_states, target_features

    days = pd.date_range("2020-01-01", "2021-12-31", freq="D")
    anchor_day = pd.Timestamp("2021-06-01")
    year_ago = anchor_day - pd.Timedelta(days=364)
    # "peak" sells 3 a day in the 28 days after the date a year before the anchor, 1 a day otherwise; "flat"
    # sells 2 a day throughout; "young" starts in 2021.
    boost = (days > year_ago) & (days <= year_ago + pd.Timedelta(days=28))
    df = pd.concat(
        [
            pd.DataFrame({"unique_id": "peak", "ds": days, "y": np.where(boost, 3.0, 1.0)}),
            pd.DataFrame({"unique_id": "flat", "ds": days, "y": 2.0}),
            pd.DataFrame({"unique_id": "young", "ds": days[days >= "2021-01-01"], "y": 1.0}),
        ]
    )
    panel = to_panel(df)
    st = AnchorStats(panel, 7, year_before=True)
    a = int(np.searchsorted(panel.calendar, np.datetime64(anchor_day)))
    assert pd.Timestamp(panel.calendar[st.year_ago[a]]) == year_ago
    ids = list(panel.ids)
    pk, fl, yg = ids.index("peak"), ids.index("flat"), ids.index("young")
    f, lvl = anchor_features(st, a, smoother_states(panel.y, [a]), None)
    np.testing.assert_allclose(f["ly_after_rel"][[pk, fl]], [3.0 / lvl[pk], 2.0 / lvl[fl]])
    np.testing.assert_allclose(f["ly_growth_log"][pk], np.log1p(84) - np.log1p(28))
    assert np.isnan(f["ly_after_rel"][yg]) and np.isnan(f["ly_growth_log"][yg])  # not alive a year before
    # The store: 1 + 2 a day now and in the 28 days before the date a year ago, 3 + 2 in the 28 after it.
    np.testing.assert_allclose(f["store_yoy"], (28 * 3 + 28 * 1) / (28 * 3))  # "young" adds 1 a day now
    np.testing.assert_allclose(f["store_ly_growth"], 28 * 5 / (28 * 3))
    safe = np.where(lvl > 0, lvl, 1.0)
    t = target_features(st, a, 5, 0, safe)
    # The target's week a year before (periods b+3 .. b+8) lies inside the boost.
    np.testing.assert_allclose(t["ly_target_rel"][pk], 3.0 / lvl[pk])
    np.testing.assert_allclose(t["store_season_target"], 5.0 / 3.0)
    t_late = target_features(st, a, 40, 0, safe)  # the target's week a year before is after the boost
    np.testing.assert_allclose(t_late["store_season_target"], 3.0 / 3.0)
    # Nothing after the anchor is read.
    changed = df.copy()
    changed.loc[changed["ds"] > anchor_day, "y"] = 100.0
    st2 = AnchorStats(to_panel(changed), 7, year_before=True)
    f2, _ = anchor_features(st2, a, smoother_states(to_panel(changed).y, [a]), None)
    t2 = target_features(st2, a, 5, 0, safe)
    for name in ("ly_after_rel", "ly_growth_log", "store_yoy", "store_ly_growth"):
        np.testing.assert_allclose(f2[name], f[name])
    for name in ("ly_target_rel", "store_season_target"):
        np.testing.assert_allclose(t2[name], t[name])
    # Less than a year (plus the window) before the anchor: NaN, not a guess.
    early = int(np.searchsorted(panel.calendar, np.datetime64("2021-01-10")))
    f_early, _ = anchor_features(st, early, smoother_states(panel.y, [early]), None)
    assert np.isnan(f_early["store_yoy"]).all() and np.isnan(f_early["ly_after_rel"]).all()
    # Off by default: the production features are unchanged.
    assert (
        "store_yoy" not in anchor_features(AnchorStats(panel, 7), a, smoother_states(panel.y, [a]), None)[0]
    )


def test_the_level_factor_is_the_pooled_actual_over_forecast_at_its_days(store):
    df, _, _, _ = store
    days = np.sort(df["ds"].unique())
    origin = days[-H - 1]
    named = [days[100], days[130]]
    plain = SelectedEnsemble({"ma": lambda: MovingAverage(28)}, horizon=H, validation_days=named).fit(
        df, origin=origin
    )
    scaled = SelectedEnsemble(
        {"ma": lambda: MovingAverage(28)}, horizon=H, validation_days=named, level_factor_days=[named[1]]
    ).fit(df, origin=origin)
    rec = [r for r in scaled.records_ if pd.Timestamp(scaled.panel_.calendar[r.origin]) == named[1]][0]
    factor = rec.actual.sum() / rec.means["ma"].sum()
    assert abs(factor - 1) > 0.01
    np.testing.assert_allclose(scaled.level_factor_, factor)
    assert plain.level_factor_ == 1.0 and scaled.selection_summary()["level_factor"] == round(factor, 4)
    a, b = plain.predict(H), scaled.predict(H)
    np.testing.assert_allclose(b["mean"], a["mean"] * factor)
    with pytest.raises(ValueError, match="among the validation_days"):
        SelectedEnsemble(
            {"ma": lambda: MovingAverage(28)}, validation_days=named, level_factor_days=[days[5]]
        )


def test_panel_since_starts_each_series_at_its_first_demand_from_then():
    panel = to_panel(
        pd.DataFrame(
            {
                "unique_id": ["old", "old", "old", "new", "gone"],
                "ds": pd.to_datetime(["2024-01-01", "2024-01-03", "2024-01-05", "2024-01-04", "2024-01-01"]),
                "y": [2.0, 0.0, 3.0, 1.0, 5.0],
            }
        )
    )
    later = panel.since("2024-01-02")
    assert sorted(later.ids) == ["new", "old"]
    by_id = dict(zip(later.ids, later.y, strict=True))
    assert str(later.calendar[0])[:10] == "2024-01-03"
    # "old" sold on the 1st and the 5th: from the 3rd on it starts at its next demand, the 5th
    np.testing.assert_array_equal(np.isnan(by_id["old"]), [True, True, False])
    assert by_id["old"][2] == 3.0 and by_id["new"][1] == 1.0 and "gone" not in set(later.ids)
