"""``python -m bench.forecast`` end to end on a tiny generic long CSV."""

import json

import pytest

from bench.forecast import main
from ml.forecast.synthetic import synthetic_store

KEYS = {"WRMSSE", "RMSSE", "MASE", "WAPE", "bias", "pinball50", "pinball90", "coverage90", "seconds"}


@pytest.fixture(scope="module")
def tiny_csv(tmp_path_factory):
    df, _ = synthetic_store(n_series=12, n_periods=200, season_length=7, seed=2)
    path = tmp_path_factory.mktemp("data") / "tiny.csv"
    df[df["y"] > 0].to_csv(path, index=False)  # a sales file: zero days are implicit
    return path


def test_bench_runs_on_a_generic_csv(tiny_csv, tmp_path):
    out_path = tmp_path / "out.json"
    out = main(
        [
            "--data",
            str(tiny_csv),
            "--out",
            str(out_path),
            "--season-length",
            "7",
            "--n-origins",
            "2",
            "--models",
            "ensemble",
            "tsb",
            "zero",
        ]
    )
    saved = json.loads(out_path.read_text())
    assert saved["dataset"] == "tiny.csv" and saved["protocol"]["kind"] == "generic"
    assert saved["n_series"] == out["n_series"] == 12
    assert set(saved["models"]) == {"ensemble", "tsb", "zero"}
    for row in saved["models"].values():
        assert set(row) >= KEYS
    assert saved["models"]["zero"]["bias"] == -1.0
    assert saved["models"]["ensemble"]["WRMSSE"] < saved["models"]["zero"]["WRMSSE"]
    # every served level is scored, and the levels nest
    cover = [saved["models"]["ensemble"][f"coverage{q}"] for q in ("50", "80", "90", "95", "99")]
    assert cover == sorted(cover) and 0 < cover[0] < cover[-1] <= 1
    assert set(saved["by_class"]["ensemble"]) <= {"smooth", "erratic", "intermittent", "lumpy"}
    assert saved["selection"]["validation_origins"] and saved["machine"] and saved["date"]
    intervals = saved["uncertainty"]["models"]
    assert set(intervals) == {"ensemble", "tsb", "zero"} and "vs_reference" not in saved["uncertainty"]
    assert intervals["zero"]["bias"] == [-1.0, -1.0]
    lo, hi = intervals["ensemble"]["WRMSSE"]
    assert lo < hi and lo <= saved["models"]["ensemble"]["WRMSSE"] + 1e-4


def test_bench_runs_a_statsforecast_peer(tiny_csv, tmp_path):
    pytest.importorskip("statsforecast")
    out = main(
        [
            "--data",
            str(tiny_csv),
            "--out",
            str(tmp_path / "p.json"),
            "--season-length",
            "7",
            "--models",
            "statsforecast:TSB",
            "statsforecast:SeasonalNaive",
        ]
    )
    assert set(out["models"]) == {"statsforecast:TSB", "statsforecast:SeasonalNaive"}
    for row in out["models"].values():
        assert 0 <= row["coverage90"] <= 1


def test_help_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "--season-length" in capsys.readouterr().out


def test_bench_without_the_peer_libraries_scores_ours_and_says_so(tiny_csv, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("statsforecast") is not None:
        pytest.skip("statsforecast is installed here: the peer path is tested above")
    out = main(
        ["--data", str(tiny_csv), "--out", str(tmp_path / "o.json"), "--models", "zero", "statsforecast:TSB"]
    )
    assert set(out["models"]) == {"zero"}
    assert any("peers not run" in n for n in out["notes"])
    assert "scoring our models only" in capsys.readouterr().err


def test_store_level_diagnostic_by_hand(tiny_csv, tmp_path):
    import numpy as np
    import pandas as pd

    from bench.forecast_level import main as level_main

    out = level_main(
        ["--data", str(tiny_csv), "--out", str(tmp_path / "level.json"), "--n-origins", "2", "--step", "28"]
    )
    rows = out["origins"]
    assert [r["window"] for r in rows] == ["validation", "validation", "test"]
    # The test row by hand: the 12 series are all in scope; totals per day over the zero-filled calendar.
    df = pd.read_csv(tiny_csv)
    total = df.pivot_table(index="ds", values="y", aggfunc="sum").sort_index()["y"].to_numpy()
    o = len(total) - 28 - 1
    assert rows[-1]["origin"] == sorted(df["ds"].unique())[o][:10]
    assert rows[-1]["next_vs_last28"] == round(total[o + 1 :].mean() / total[o - 27 : o + 1].mean(), 3)
    assert rows[-1]["bias_last28_mean"] == round(total[o - 27 : o + 1].mean() / total[o + 1 :].mean() - 1, 3)
    assert np.isfinite([r["bias_ses_0.05"] for r in rows]).all()


def test_extra_gbm_variants_join_the_selection_and_are_reported(tmp_path):
    # Dated, long enough that last season's November-December is at least half a year before the late anchors.
    df, _ = synthetic_store(n_series=12, n_periods=400, season_length=7, seed=3, start="2023-10-01")
    path = tmp_path / "dated.csv"
    df[df["y"] > 0].to_csv(path, index=False)
    out_path = tmp_path / "out.json"
    variants = ["gbm_last_peak", "gbm_recency"]
    main(
        ["--data", str(path), "--out", str(out_path), "--season-length", "7", "--n-origins", "2"]
        + ["--models", "gbm", "--extra-candidates", *variants]
    )
    saved = json.loads(out_path.read_text())
    assert set(saved["models"]) == {"gbm", *variants}
    validation = saved["selection"]["validation"]
    for name in ["gbm", *variants]:
        assert len(validation[name]["WRMSSE_by_origin"]) == 2
        assert 0 < validation[name]["WRMSSE_mean"] < 2
    # Different settings, different forecasts (the variants are not the production GBM under another name).
    scores = {name: saved["models"][name]["WRMSSE"] for name in ["gbm", *variants]}
    assert len(set(scores.values())) == 3, scores


def test_bench_takes_named_validation_days_and_a_later_scale_start(tiny_csv, tmp_path):
    """The second edition's knobs: validation origins named by date, and the scoring rules (scope, scales,
    classes) reading the history from a later date, so a longer history is scored as the first edition was."""
    import pandas as pd

    days = sorted(pd.read_csv(tiny_csv, parse_dates=["ds"])["ds"].unique())
    named = [str(pd.Timestamp(days[100]).date()), str(pd.Timestamp(days[130]).date())]
    common = [
        "--data",
        str(tiny_csv),
        "--season-length",
        "7",
        "--models",
        "ensemble",
        "zero",
        "--bootstrap",
        "50",
    ]
    plain = main([*common, "--out", str(tmp_path / "a.json"), "--n-origins", "2"])
    later = main(
        [
            *common,
            "--out",
            str(tmp_path / "b.json"),
            "--validation-days",
            ",".join(named),
            "--score-history-from",
            str(pd.Timestamp(days[100]).date()),
        ]
    )
    saved = json.loads((tmp_path / "b.json").read_text())
    assert saved["protocol"]["validation_origins"] == named
    assert saved["protocol"]["score_history_from"] == named[0]
    assert saved["selection"]["validation_origins"] == named
    # the zero forecast's bias does not depend on the scale; its WRMSSE does
    assert later["models"]["zero"]["bias"] == plain["models"]["zero"]["bias"] == -1.0
    assert later["models"]["zero"]["WRMSSE"] != plain["models"]["zero"]["WRMSSE"]


def test_the_second_edition_scores_two_years_as_the_first_edition_scored_one():
    """Both Online Retail years, scored with the history from 2010-12-01: the same 2,808 SKUs in scope, the same
    weights, scales, demand classes and test actuals as the first edition on (I) alone (no forecast is made)."""
    import numpy as np
    import pandas as pd

    from ml.forecast.classify import adi_cv2, classify
    from ml.forecast.metrics import naive_scales
    from ml.forecast.protocol import Split, load_panel, make_split, read_demand_csv, read_online_retail_years
    from ml.sources.online_retail import DEFAULT_CSV, DEFAULT_YEAR_BEFORE

    day = pd.Timestamp("2010-12-01")
    two = load_panel(read_online_retail_years(DEFAULT_CSV, DEFAULT_YEAR_BEFORE), "online_retail")
    assert two.n_periods == 604 and str(two.calendar[0])[:10] == "2009-12-01"
    whole = make_split(two)
    shorter = make_split(two.since(day))
    second = Split(two, whole.origin, whole.horizon, shorter.ids, shorter.weights)
    first = make_split(load_panel(*read_demand_csv(DEFAULT_CSV)))
    assert second.origin_ds == first.origin_ds and len(first.ids) == 2_808
    assert len(whole.ids) > 2_808  # without the rule, SKUs sold in the year before would join the scope
    assert list(second.ids) == list(first.ids) and np.allclose(second.weights, first.weights)
    h2, h1 = second.history(day), first.history()
    np.testing.assert_array_equal(np.isnan(h2), np.isnan(h1))
    np.testing.assert_allclose(naive_scales(h2)[1], naive_scales(h1)[1])
    assert (classify(*adi_cv2(h2)) == classify(*adi_cv2(h1))).all()
    np.testing.assert_array_equal(second.actual(), first.actual())
    assert second.train().n_periods == whole.origin + 1 > first.origin + 1  # the models see the earlier year


def test_the_year_before_configurations_and_their_level_factor(tmp_path):
    """Configuration (2) of the second edition: the ensemble over the GBM with the year-before features, scaled
    by the level factor of the named origins; its two ablations are the same forecasts without the factor and
    the plain ensemble with its own factor."""
    import pandas as pd

    df, _ = synthetic_store(n_series=12, n_periods=520, season_length=7, seed=4, start="2022-01-01")
    path = tmp_path / "two_years.csv"
    df[df["y"] > 0].to_csv(path, index=False)
    days = sorted(pd.read_csv(path, parse_dates=["ds"])["ds"].unique())
    named = [str(pd.Timestamp(days[i]).date()) for i in (380, 420, 450)]
    configs = ["ensemble", "ensemble_yoy", "ensemble_yoy_no_level", "ensemble_level", "gbm", "gbm_yoy"]
    args = ["--data", str(path), "--season-length", "7", "--bootstrap", "50", "--validation-days"]
    out = main(
        [*args, ",".join(named), "--level-factor-days", named[0], "--out", str(tmp_path / "o.json")]
        + ["--models", *configs]
    )
    assert set(out["models"]) == set(configs)
    sel = out["selection"]
    yoy_factor = sel["ensemble_yoy"]["level_factor"]
    plain_factor = sel["ensemble_level_factor"]
    assert sel["ensemble_yoy"]["level_factor_days"] == [named[0]] and out["protocol"]["level_factor_origins"]
    assert yoy_factor != 1.0 and plain_factor != 1.0
    m = out["models"]
    # Scaling every forecast by the factor scales the pooled forecast: 1 + bias moves by exactly the factor.
    assert abs((1 + m["ensemble_yoy"]["bias"]) - yoy_factor * (1 + m["ensemble_yoy_no_level"]["bias"])) < 2e-3
    assert abs((1 + m["ensemble_level"]["bias"]) - plain_factor * (1 + m["ensemble"]["bias"])) < 2e-3
    # The year-before features change the global model (the history reaches a year before its anchors).
    assert m["gbm_yoy"]["WRMSSE"] != m["gbm"]["WRMSSE"]
    assert "gbm_yoy" in sel["ensemble_yoy"]["validation"] and "gbm" not in sel["ensemble_yoy"]["validation"]
    # Without --year-before and unnamed, 'all' leaves the year-before configurations out.
    few = main([*args, named[1], "--models", "all", "--out", str(tmp_path / "p.json"), "--bootstrap", "20"])
    assert "ensemble_yoy" not in few["models"] and "ensemble" in few["models"]
