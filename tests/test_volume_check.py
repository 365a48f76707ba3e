"""`volume_vs_recent`: the day-over-day volume warning of `marts.fct_orders` / `fct_events`, on a small DuckDB
table with a weekly rhythm like Online Retail's (closed on Saturdays, half volume on Sundays)."""

from datetime import date, timedelta

import duckdb
import pytest

from ml.quality.reconcile import volume_vs_recent

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
