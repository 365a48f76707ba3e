"""`volume_vs_recent`: the platform's one volume rule, the warning check `no_day_over_day_volume_drop` on the marts,
on a small DuckDB table with a weekly rhythm like Online Retail's (closed on Saturdays, half volume on Sundays)."""

from datetime import date, timedelta

import duckdb
import pytest

from ml.quality.reconcile import (
    VOLUME_CLOSED_WEEKS,
    VOLUME_HISTORY_DAYS,
    VOLUME_MIN_RATIO,
    VOLUME_WEEKDAY_WEEKS,
    volume_rule,
    volume_summary,
    volume_vs_recent,
)

START = date(2024, 1, 1)  # a Monday


def _orders(per_day: dict[date, int]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE orders (order_date DATE)")
    for day, n in per_day.items():
        con.execute("INSERT INTO orders SELECT ?::DATE FROM range(?)", [day, n])
    return con


def _check(con: duckdb.DuckDBPyConnection, day: date):
    (result,) = volume_vs_recent(con, "orders", "order_date", [day])
    return result


def _weekly(weeks: int, overrides: dict[date, int] | None = None) -> dict[date, int]:
    """100 orders Monday..Friday, 50 on Sunday, none on Saturday."""
    per_day = {}
    for i in range(weeks * 7):
        day = START + timedelta(days=i)
        per_day[day] = {5: 0, 6: 50}.get(day.weekday(), 100)
    return per_day | (overrides or {})


def test_a_sunday_is_judged_against_sundays_and_a_saturday_is_a_closing_day():
    con = _orders(_weekly(6))
    sunday, saturday = START + timedelta(days=34), START + timedelta(days=33)
    r = _check(con, sunday)
    # against the previous 7 days' median (100) a Sunday's 50 would be a 0.5 ratio at the edge; against
    # Sundays it is 1.0
    assert (r.rows, r.recent_median, r.baseline, r.ok) == (50, 50.0, "same weekday", True)
    r = _check(con, saturday)
    assert (r.rows, r.regular_closing_day, r.ok) == (0, True, True)
    assert r.as_metadata()["regular_closing_day"] is True


def test_an_outage_on_a_trading_day_still_warns():
    wednesday = START + timedelta(days=30)
    con = _orders(_weekly(6, {wednesday: 0}))
    r = _check(con, wednesday)
    assert (r.rows, r.recent_median, r.regular_closing_day, r.ok) == (0, 100.0, False, False)
    half = _orders(_weekly(6, {wednesday: 40}))
    r = _check(half, wednesday)
    assert r.ratio == pytest.approx(0.4) and not r.ok


def test_the_first_weeks_use_the_previous_days_and_cannot_call_a_day_closed():
    con = _orders(_weekly(2))
    first_saturday, second_saturday = START + timedelta(days=5), START + timedelta(days=12)
    r = _check(con, first_saturday)
    # no earlier Saturday: an empty day against the previous days' median (100) warns
    assert (r.baseline, r.recent_median, r.regular_closing_day, r.ok) == (
        "previous days",
        100.0,
        False,
        False,
    )
    r = _check(con, second_saturday)
    assert not r.regular_closing_day and not r.ok  # one earlier empty Saturday is not yet a pattern
    third = _orders(_weekly(3))
    assert _check(third, START + timedelta(days=19)).regular_closing_day


def test_a_closed_weekday_that_reopens_is_judged_again():
    # Saturdays closed for 4 weeks then open at 80: an empty Saturday after that is a drop again
    per_day = _weekly(8)
    for week in range(4, 7):
        per_day[START + timedelta(days=7 * week + 5)] = 80
    con = _orders(per_day)
    r = _check(con, START + timedelta(days=7 * 7 + 5))
    assert (r.rows, r.regular_closing_day, r.baseline, r.recent_median, r.ok) == (
        0,
        False,
        "same weekday",
        80.0,
        False,
    )


def test_a_range_is_judged_day_by_day_as_each_day_alone():
    wednesday = START + timedelta(days=30)
    con = _orders(_weekly(7, {wednesday: 0}))
    days = [START + timedelta(days=i) for i in range(7, 49)]
    ranged = volume_vs_recent(con, "orders", "order_date", days)
    assert ranged == [_check(con, d) for d in days]
    assert [r.day for r in ranged if not r.ok] == [
        START + timedelta(days=12),
        wednesday,
    ]  # 2nd Saturday, outage


def test_the_thresholds_are_named_once_and_are_the_defaults():
    import inspect

    defaults = {
        k: p.default
        for k, p in inspect.signature(volume_vs_recent).parameters.items()
        if p.default is not p.empty
    }
    assert defaults == {
        "history_days": VOLUME_HISTORY_DAYS,
        "min_ratio": VOLUME_MIN_RATIO,
        "closed_weeks": VOLUME_CLOSED_WEEKS,
        "weekday_weeks": VOLUME_WEEKDAY_WEEKS,
    }
    assert (VOLUME_MIN_RATIO, VOLUME_WEEKDAY_WEEKS, VOLUME_CLOSED_WEEKS, VOLUME_HISTORY_DAYS) == (
        0.5,
        4,
        8,
        7,
    )
    assert volume_rule().startswith(
        "rows on each day >= 50% of the median of the same weekday over the last 4 weeks"
    )


def test_the_summary_names_days_checked_below_closing_and_the_worst_day():
    wednesday, thursday = START + timedelta(days=30), START + timedelta(days=31)
    con = _orders(_weekly(6, {wednesday: 0, thursday: 30}))
    days = [START + timedelta(days=i) for i in range(28, 35)]  # Monday .. Sunday of week 5
    summary = volume_summary(volume_vs_recent(con, "orders", "order_date", days))
    assert summary == {
        "passed": False,
        "days_checked": 7,
        "days_below": 2,
        "regular_closing_days": 1,  # the Saturday
        # the worst of the days below: the outage
        "table": "orders",
        "day": wednesday.isoformat(),
        "rows": 0,
        "recent_median": 100.0,
        "ratio_to_recent": 0.0,
        "min_ratio": VOLUME_MIN_RATIO,
        "regular_closing_day": False,
        "baseline": "same weekday",
    }
    # a good week shows its lowest judged ratio, never the closing day's
    calm = volume_summary(volume_vs_recent(_orders(_weekly(6, {thursday: 80})), "orders", "order_date", days))
    assert (calm["passed"], calm["days_below"], calm["day"], calm["ratio_to_recent"]) == (
        True,
        0,
        thursday.isoformat(),
        0.8,
    )


def test_the_dagster_check_warns_on_each_watched_mart_and_never_blocks(tmp_path):
    """The one place volume is judged: no_day_over_day_volume_drop on the marts of every landing feed, with
    severity WARN; a range backfill judges its days in one evaluation."""
    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from orchestration.defs.quality.assets import VOLUME_WATCHED, volume_checks
    from tests.pipeline_helpers import all_assets, resources_for

    assert VOLUME_WATCHED == {
        "fct_events": "event_date",
        "fct_orders": "order_date",
        "fct_order_items": "order_date",
        "fct_inventory_daily": "snapshot_date",
    }
    specs = {spec.asset_key.path[-1]: spec for c in volume_checks for spec in c.check_specs}
    assert set(specs) == set(VOLUME_WATCHED)
    assert all(s.name == "no_day_over_day_volume_drop" and not s.blocking for s in specs.values())
    assert volume_rule() in specs["fct_orders"].description
    # nothing else in the code location judges volume (no dbt test, no GX row-count rule)
    every_check = {key for a in all_assets() for key in getattr(a, "check_keys", ())}
    volume_named = {(k.asset_key.path[-1], k.name) for k in every_check if "volume" in k.name}
    assert volume_named == {(m, "no_day_over_day_volume_drop") for m in VOLUME_WATCHED}

    first = date(2025, 1, 6)  # a Monday, in the partitions of the default (simulated) source
    wednesday = first + timedelta(days=30)
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA marts; CREATE TABLE marts.fct_orders (order_date DATE)")
        for i in range(42):
            day = first + timedelta(days=i)
            n = 0 if day == wednesday else {5: 0, 6: 50}.get(day.weekday(), 100)
            con.execute("INSERT INTO marts.fct_orders SELECT ?::DATE FROM range(?)", [day, n])
    result = dg.materialize(
        all_assets(),
        selection=dg.AssetSelection.checks(
            dg.AssetCheckKey(dg.AssetKey(["marts", "fct_orders"]), specs["fct_orders"].name)
        ),
        resources=resources_for(tmp_path),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: (first + timedelta(days=28)).isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: (first + timedelta(days=34)).isoformat(),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success  # a warning does not fail the run
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    md = {k: v.value for k, v in evaluation.metadata.items()}
    assert (md["days_checked"], md["days_below"], md["regular_closing_days"]) == (7, 1, 1)
    assert (md["day"], md["rows"], md["recent_median"]) == (wednesday.isoformat(), 0, 100.0)
    assert "passed" not in md
