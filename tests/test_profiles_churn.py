"""Churn risk on the simulated store: AUC on a later window, with labels known only from history.

The session's 68 small simulated days (dbt-built, tests/warehouses.py): on day 67 the model is fitted on the snapshot of day 7 (label: no order in days 8..37)
and scored on the snapshot of day 37 (label: no order in days 38..67); that out-of-time AUC is the metric.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb

from ml.profiles import user_profiles
from ml.sources.simulated import START_DATE
from tests.warehouses import SIM_DAYS, copy_warehouse


def test_churn_auc_on_a_later_window_is_clearly_above_chance(simulated_warehouse, tmp_path):
    con = duckdb.connect(str(copy_warehouse(simulated_warehouse, tmp_path)))
    as_of = START_DATE + timedelta(days=SIM_DAYS - 1)
    metrics = user_profiles(con, as_of)["metrics"]
    assert metrics["churn_auc_later_window"] == 1
    assert metrics["churn_eval_rows"] > 1000
    # About 3-4% of these customers skip a whole month; 0.5 would be a coin flip. With ~45 positives the AUC's
    # standard error is about 0.04, so 0.65 is more than three standard errors above chance.
    assert metrics["churn_auc"] > 0.65
    risk = con.execute(
        "select churn_risk, orders_30d, recency_days from features.user_profiles where as_of_date = ?",
        [as_of],
    ).df()
    scored = risk.dropna(subset=["churn_risk"])
    assert ((scored["churn_risk"] >= 0) & (scored["churn_risk"] <= 1)).all()
    # Customers who have not bought for two weeks are riskier than those who bought this week.
    lapsed = scored[scored["recency_days"] >= 14]["churn_risk"].mean()
    recent = scored[scored["recency_days"] <= 6]["churn_risk"].mean()
    assert lapsed > 2 * recent
