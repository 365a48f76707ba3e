"""How bench.pipeline splits a long history into measured days and backfilled fills, and how it compares the
measured windows (the benchmark itself is not a test: python -m bench.pipeline)."""

from __future__ import annotations

import argparse

import pytest

from bench.pipeline import parse_args, parse_windows, resume_plan, run_plan, window_summary


def test_windows_parse_sorted_and_reject_overlaps_and_bad_text():
    assert parse_windows("359-365,24-30") == [(24, 30), (359, 365)]
    assert parse_windows("7") == [(7, 7)]
    for bad in ("24-30,30-31", "0-3", "5-2", "a-b"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_windows(bad)


def test_a_window_past_the_last_day_or_with_the_whole_backfill_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--days", "30", "--measure-windows", "24-31"])
    assert "past --days 30" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--days", "30", "--measure-windows", "24-30"])
    assert "needs --skip-backfill" in capsys.readouterr().err
    args = parse_args(["--out", "x.json", "--days", "30", "--measure-windows", "24-30", "--skip-backfill"])
    assert args.measure_windows == [(24, 30)]


def test_the_plan_fills_the_gaps_between_windows_and_runs_every_window_day_alone():
    assert run_plan(3, None) == [("day", 1, 1), ("day", 2, 2), ("day", 3, 3)]
    plan = run_plan(365, [(24, 30), (359, 365)])
    assert plan[0] == ("fill", 1, 23)
    assert plan[1:8] == [("day", n, n) for n in range(24, 31)]
    assert plan[8] == ("fill", 31, 358)
    assert plan[9:] == [("day", n, n) for n in range(359, 366)]
    # every day up to the last window is built exactly once
    covered = [n for _, a, b in plan for n in range(a, b + 1)]
    assert covered == list(range(1, 366))
    # a window starting on day 1 needs no fill before it
    assert run_plan(5, [(1, 2), (4, 5)]) == [
        ("day", 1, 1),
        ("day", 2, 2),
        ("fill", 3, 3),
        ("day", 4, 4),
        ("day", 5, 5),
    ]


def _day(n: int, wall: float, layers: dict[str, float]) -> dict:
    return {
        "day_number": n,
        "wall_seconds": wall,
        "peak_rss_mib": 100.0 + n,
        "layers": {name: {"seconds": s} for name, s in layers.items()},
    }


def test_the_window_summary_compares_window_means_and_the_last_days_per_layer():
    days = [
        _day(1, 10.0, {"marts": 4.0, "recommend": 6.0}),
        _day(2, 20.0, {"marts": 4.0, "recommend": 16.0}),
        _day(9, 12.0, {"marts": 6.0, "recommend": 6.0}),
        _day(10, 30.0, {"marts": 6.0, "recommend": 24.0}),
    ]
    summary = window_summary(days, [(1, 2), (9, 10)])
    assert summary["windows"][0]["mean_seconds"] == 15.0
    assert summary["windows"][1]["mean_seconds"] == 21.0
    assert summary["windows"][1]["peak_rss_mib"] == 110.0
    assert summary["mean_last_over_first_window"] == 1.4
    assert summary["layer_mean_last_over_first_window"] == {"marts": 1.5, "recommend": 1.364}
    assert summary["day_10_over_day_2"] == 1.5
    assert summary["layer_last_day_ratio"] == {"marts": 1.5, "recommend": 1.5}
    assert "last_window_over_middle_windows" not in summary


def test_a_middle_window_is_compared_with_the_last_one_too():
    days = [
        _day(1, 10.0, {"marts": 4.0, "recommend": 6.0}),
        _day(5, 16.0, {"marts": 4.0, "recommend": 12.0}),
        _day(6, 24.0, {"marts": 5.0, "recommend": 19.0}),
        _day(9, 12.0, {"marts": 6.0, "recommend": 6.0}),
        _day(10, 30.0, {"marts": 6.0, "recommend": 24.0}),
    ]
    summary = window_summary(days, [(1, 1), (5, 6), (9, 10)])
    assert summary["mean_last_over_first_window"] == 2.1
    (middle,) = summary["last_window_over_middle_windows"]
    assert middle["days"] == [5, 6]
    assert middle["mean_last_over_window"] == 1.05
    assert middle["layer_mean_last_over_window"] == {"marts": 1.333, "recommend": 0.968}
    assert middle["day_10_over_day_6"] == 1.25
    assert middle["layer_last_day_ratio"] == {"marts": 1.2, "recommend": 1.263}


def test_step_profile_reads_each_steps_time_and_memory_from_the_run_and_layers_sum_them():
    import time

    import dagster as dg

    from bench.pipeline import layer_profile, step_layers, step_profile

    @dg.asset(group_name="first")
    def upstream() -> int:
        time.sleep(1.0)
        return 1

    @dg.asset(group_name="second")
    def downstream(upstream: int) -> int:
        time.sleep(1.0)
        return upstream + 1

    instance = dg.DagsterInstance.ephemeral()
    began = time.time()
    result = dg.materialize([upstream, downstream], instance=instance)
    ended = time.time()
    # memory that rises by 1 MiB every 50 ms over the run: a later step starts and peaks higher
    samples, t = [], began - 0.1
    while t <= ended + 0.1:
        samples.append((t, int((t - began) * 20 + 100) * 2**20))
        t += 0.05
    steps = step_profile(instance, result.run_id, samples)
    assert set(steps) == {"upstream", "downstream"}
    for profile in steps.values():
        assert 1.0 <= profile["seconds"] < 10
        assert profile["start_rss_mib"] < profile["peak_rss_mib"]
    # downstream starts at least a second (20 MiB) after upstream did
    assert steps["downstream"]["start_rss_mib"] >= steps["upstream"]["start_rss_mib"] + 19
    assert steps["downstream"]["peak_rss_mib"] > steps["upstream"]["peak_rss_mib"]
    layers = layer_profile(steps, step_layers([upstream, downstream]))
    assert layers["first"]["peak_rss_mib"] == steps["upstream"]["peak_rss_mib"]
    assert layers["second"]["seconds"] == steps["downstream"]["seconds"]
    assert layers["first"]["steps"] == layers["second"]["steps"] == 1


def test_a_resumed_benchmark_runs_only_the_days_its_kept_directory_lacks(tmp_path, capsys):
    plan = run_plan(30, [(5, 6), (20, 30)])
    assert resume_plan(plan, 1) == plan
    assert resume_plan(plan, 6) == [("day", 6, 6), ("fill", 7, 19), *[("day", n, n) for n in range(20, 31)]]
    assert resume_plan(plan, 10) == [("fill", 10, 19), *[("day", n, n) for n in range(20, 31)]]
    assert resume_plan(run_plan(3, None), 3) == [("day", 3, 3)]
    out = tmp_path / "o.json"
    args = parse_args(
        ["--days", "3", "--out", str(out), "--skip-backfill", "--resume", str(tmp_path), "--from-day", "3"]
    )
    assert args.resume == tmp_path and args.from_day == 3
    for bad in (["--resume", str(tmp_path)], ["--from-day", "3"]):
        with pytest.raises(SystemExit):
            parse_args(["--days", "3", "--out", str(out), "--skip-backfill", *bad])
    with pytest.raises(SystemExit):
        parse_args(["--days", "3", "--out", str(out), "--resume", str(tmp_path), "--from-day", "3"])
    assert "--skip-backfill" in capsys.readouterr().err


def test_only_takes_assets_of_the_daily_job_and_refuses_unknown_ones(capsys):
    args = parse_args(
        ["--out", "x.json", "--layers", "all", "--only", "recommend/recommendations,supply/allocation_plan"]
    )
    assert args.only == ["recommend/recommendations", "supply/allocation_plan"]
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--layers", "all", "--only", "recommend/recommendation"])
    assert "not assets of the daily job: recommend/recommendation" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--out", "x.json", "--only", "recommend/recommendations"])
    assert "--only needs --layers all" in capsys.readouterr().err


def test_a_result_names_the_commit_it_measured():
    import subprocess

    from bench import source_commit

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert source_commit().split("+")[0] == head


def test_run_steps_reads_each_runs_range_status_and_step_seconds_from_a_dagster_home(tmp_path):
    """bench.run_steps on a real instance: two ranged runs of a partitioned two-step job, one failing."""
    import json
    import time

    import dagster as dg
    from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    from bench.run_steps import main, run_timings

    days = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-01-09")

    @dg.asset(partitions_def=days, backfill_policy=dg.BackfillPolicy.single_run())
    def slow(context):
        time.sleep(0.3)
        if context.partition_key_range.start == "2025-01-05":
            raise RuntimeError("a failed part")
        return dg.MaterializeResult()  # nothing for an IO manager to store

    @dg.asset(partitions_def=days, deps=[slow], backfill_policy=dg.BackfillPolicy.single_run())
    def fast():
        return dg.MaterializeResult()

    home = tmp_path / "dagster_home"
    home.mkdir()
    job = dg.define_asset_job("daily_pipeline", partitions_def=days)
    defs = dg.Definitions(assets=[slow, fast], jobs=[job])
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for first, last in (("2025-01-01", "2025-01-04"), ("2025-01-05", "2025-01-08")):
            defs.resolve_job_def("daily_pipeline").execute_in_process(
                instance=instance,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: first,
                    ASSET_PARTITION_RANGE_END_TAG: last,
                },
                raise_on_error=False,
            )
        runs = run_timings(instance, "daily_pipeline")
    assert [(r["first_partition"], r["last_partition"], r["status"]) for r in runs] == [
        ("2025-01-01", "2025-01-04", "SUCCESS"),
        ("2025-01-05", "2025-01-08", "FAILURE"),
    ]
    first = runs[0]
    assert list(first["steps"]) == ["slow", "fast"]  # slowest first
    assert first["steps"]["slow"] >= 0.3 and first["seconds"] >= first["steps"]["slow"]
    assert list(runs[1]["steps"]) == ["slow"]  # the step after the failure never started
    out = tmp_path / "steps.json"
    assert main(["--dagster-home", str(home), "--out", str(out)]) == 0
    assert [r["status"] for r in json.loads(out.read_text())["runs"]] == ["SUCCESS", "FAILURE"]
