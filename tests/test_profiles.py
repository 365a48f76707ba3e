"""Profiles (issue 4): point-in-time correctness, recovery of the simulator's tastes, formulas on a tiny shop.

The simulated tests read the session's warehouse (the small store's first days through the raw loader and a real
``dbt build``, tests/warehouses.py): the profiles of day 13 are built on a copy that forgot every later row and
again on the whole copy, which must not change them. The tiny shop is a hand-written landing day that goes through
the same loader and dbt models.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from ml.dbt import run_dbt
from ml.profiles import (
    build_profiles,
    content_neighbours,
    customer_segments,
    item_profiles,
    place_profiles,
    user_profiles,
)
from ml.profiles.places import beta_prior, smooth_rates
from ml.profiles.segments import SEGMENT_FEATURES, describe_centroid
from ml.profiles.users import PREF_STATE, STATE_KEYS_CAP, update_pref_state
from ml.sources.simulated import START_DATE, SimulatedStore
from tests.warehouses import build_handmade, copy_warehouse, forget_after

AS_OF = START_DATE + timedelta(days=13)
LAST = START_DATE + timedelta(days=19)
PROFILE_TABLES = {
    "user_profiles": ["customer_id"],
    "item_profiles": ["sku"],
    "place_profiles": ["channel", "placement", "region", "hour"],
    "basket_associations": ["antecedent", "consequent"],
    "customer_segments": ["customer_id"],
    "segment_summary": ["segment_id"],
}


def _snapshot(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, pd.DataFrame]:
    out = {}
    for table, keys in PROFILE_TABLES.items():
        frame = con.execute(f"select * from features.{table} where as_of_date = ?", [day]).df()
        out[table] = frame.sort_values(keys).reset_index(drop=True)
    return out


@pytest.fixture(scope="module")
def sim(simulated_warehouse, tmp_path_factory):
    """Day 13's profiles on a warehouse that knows nothing later, then on the whole warehouse: day 13, day 19
    (the decayed state from day 13's) and day 13 again."""
    folder = tmp_path_factory.mktemp("profiles")
    with duckdb.connect(str(copy_warehouse(simulated_warehouse, folder / "until_day_13"))) as early:
        assert forget_after(early, AS_OF) > 0
        first = build_profiles(early, AS_OF)
        before = _snapshot(early, AS_OF)
    con = duckdb.connect(str(copy_warehouse(simulated_warehouse, folder / "all_days")))
    build_profiles(con, AS_OF)
    later = {LAST: build_profiles(con, LAST)}
    rebuilt = build_profiles(con, AS_OF)
    after = _snapshot(con, AS_OF)
    yield {
        "con": con,
        "store": SimulatedStore(scale="small", seed=42),
        "first": first,
        "later": later,
        "rebuilt": rebuilt,
        "before": before,
        "after": after,
    }
    con.close()


def _assert_same(a, b, path: str = "") -> None:
    """Deep equality with a float tolerance (parallel sums may differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple | np.ndarray) and isinstance(b, list | tuple | np.ndarray):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        if math.isnan(a) or math.isnan(b):
            assert math.isnan(a) and math.isnan(b), path
        else:
            assert a == pytest.approx(b, rel=1e-9, abs=1e-9), path
    else:
        assert (a is b) or (pd.isna(a) is True and pd.isna(b) is True) or a == b, f"{path}: {a!r} != {b!r}"


def test_point_in_time_later_days_change_nothing(sim):
    before, after = sim["before"], sim["after"]
    for table in PROFILE_TABLES:
        assert len(before[table]) > 0, table
        assert list(before[table].columns) == list(after[table].columns), table
        assert len(before[table]) == len(after[table]), table
        for column in before[table].columns:
            _assert_same(before[table][column].tolist(), after[table][column].tolist(), f"{table}.{column}")
    # The later days really did add customers, products' sales and orders, so the check had teeth.
    con = sim["con"]
    n_later = con.execute(
        "select count(*) from features.user_profiles where as_of_date = ?", [LAST]
    ).fetchall()[0][0]
    assert n_later > len(before["user_profiles"])


def test_rerun_replaces_rows_instead_of_duplicating(sim):
    con = sim["con"]
    counts = con.execute(
        "select count(*), count(distinct customer_id) from features.user_profiles where as_of_date = ?",
        [AS_OF],
    ).fetchall()[0]
    assert counts[0] == counts[1] == len(sim["before"]["user_profiles"])
    assert sim["first"]["user_profiles"]["row_count"] == sim["rebuilt"]["user_profiles"]["row_count"]


def test_decayed_state_from_yesterday_equals_full_rebuild(sim):
    con = sim["con"]
    # LAST was built from the state of 6 days earlier (fast path); rebuild it from the daily aggregates.
    assert sim["later"][LAST]["user_profiles"]["metrics"]["pref_state_rebuilt"] == 0
    fast = con.execute(
        f"select customer_id, dimension, key, weight from {PREF_STATE} where as_of_date = ? order by all",
        [LAST],
    ).df()
    update_pref_state(con, LAST, rebuild=True)
    slow = con.execute(
        f"select customer_id, dimension, key, weight from {PREF_STATE} where as_of_date = ? order by all",
        [LAST],
    ).df()

    # Each fast-path step prunes the tail, so compare what the profile reads: every customer's leading key per
    # dimension and its weight.
    def leading(frame: pd.DataFrame) -> pd.DataFrame:
        ordered = frame.sort_values(
            ["customer_id", "dimension", "weight", "key"], ascending=[True, True, False, True]
        )
        return ordered.groupby(["customer_id", "dimension"]).first()

    lead_fast, lead_slow = leading(fast), leading(slow)
    assert len(lead_fast) > 5_000
    assert lead_fast.index.equals(lead_slow.index)
    same_key = lead_fast["key"] == lead_slow["key"]
    assert same_key.mean() > 0.99
    # A key pruned while it was minor (early days, or a brand beyond the cap) restarts from zero on the fast path,
    # so a few leading weights are lower there; the rest are identical.
    fast_w, slow_w = lead_fast.loc[same_key, "weight"], lead_slow.loc[same_key, "weight"]
    identical = np.isclose(fast_w, slow_w, rtol=1e-9)
    assert identical.mean() > 0.95
    assert (fast_w[~identical] <= slow_w[~identical]).all()


WINDOW_SUMS = {  # profile column: (customer_day column, days)
    "orders_30d": ("n_orders", 30),
    "orders_90d": ("n_orders", 90),
    "spend_30d": ("spend", 30),
    "spend_365d": ("spend", 365),
    "units_365d": ("units", 365),
    "sessions_30d": ("n_sessions", 30),
    "views_30d": ("n_views", 30),
    "rel_price_units_365d": ("rel_price_units", 365),
}


def _scanned_windows(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """The window sums of ``day`` by a plain scan of customer_day (what the running sums must equal)."""
    days = con.execute(
        "select customer_id, activity_date, n_orders, spend, units, n_sessions, n_views, rel_price_units "
        "from features.customer_day where activity_date <= ?",
        [day],
    ).df()
    age = (pd.Timestamp(day) - pd.to_datetime(days["activity_date"])).dt.days
    out = pd.DataFrame(index=pd.Index(sorted(days["customer_id"].unique()), name="customer_id"))
    for name, (column, length) in WINDOW_SUMS.items():
        out[name] = days[age < length].groupby("customer_id")[column].sum().astype(float)
    return out.fillna(0.0)


def _windows(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    cols = ", ".join(WINDOW_SUMS)
    frame = con.execute(
        f"select customer_id, {cols} from features.customer_windows where as_of_date = ?", [day]
    )
    return frame.df().set_index("customer_id").astype(float).sort_index()


def test_running_window_sums_equal_a_full_window_scan_on_every_path(simulated_warehouse, tmp_path):
    """dbt's customer windows are running sums: from the model's own row of the day before the window, or from a
    scan of customer_day when that row is missing, or from nothing on a first build. All equal a plain scan."""
    late = START_DATE + timedelta(days=60)
    with duckdb.connect(str(simulated_warehouse), read_only=True) as con:
        first_build = _windows(con, late)
        scanned = _scanned_windows(con, late).reindex(first_build.index, fill_value=0.0)
    assert len(first_build) > 1000 and (first_build["orders_30d"] > 0).sum() > 500
    pd.testing.assert_frame_equal(first_build, scanned, check_exact=False, rtol=1e-9)
    warehouse = copy_warehouse(simulated_warehouse, tmp_path)
    base = late - timedelta(days=4)  # the day before a run's window (the run's days and their lookback)
    run_dbt(warehouse, late, late, "customer_windows")  # from the model's own row of that day
    with duckdb.connect(str(warehouse)) as copy:
        from_previous = _windows(copy, late)
        copy.execute("delete from features.customer_windows where as_of_date = ?", [base])
    run_dbt(warehouse, late, late, "customer_windows")  # that row gone: a scan of customer_day up to it
    with duckdb.connect(str(warehouse), read_only=True) as copy:
        from_scan = _windows(copy, late)
    pd.testing.assert_frame_equal(from_previous, first_build, check_exact=False, rtol=1e-9)
    pd.testing.assert_frame_equal(from_scan, first_build, check_exact=False, rtol=1e-9)


def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` (average ranks for ties)."""
    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    return (ra * rb).sum(axis=1) / np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))


def test_category_affinity_recovers_latent_tastes(sim):
    """Per customer, Spearman correlation between the recovered and the true category distribution.

    Threshold: a customer's true tastes put ~90% of the mass on 2-4 favourite categories and near-zero, randomly
    ordered mass on the other 16-18. Twenty days show only a few dozen views per customer, so the order of those
    near-zero categories is unobservable and caps the attainable correlation well below 1. The informative
    baseline is the popularity vector (the same for everyone), which scores about 0.05. We require a mean of
    0.5 (ten times the baseline) and that the recovered top category is one of the customer's true top two
    for most customers.
    """
    con, world = sim["con"], sim["store"].world
    truth = world.true_category_affinity
    categories = list(truth.columns)
    prof = con.execute(
        "select customer_id, category_affinity, top_category from features.user_profiles "
        "where as_of_date = ? and views_30d >= 20",
        [LAST],
    ).df()
    assert len(prof) > 500
    recovered = np.zeros((len(prof), len(categories)))
    for row, affinity in enumerate(prof["category_affinity"]):
        for entry in affinity:
            recovered[row, categories.index(entry["category"])] = entry["share"]
    true = truth.loc[prof["customer_id"]].to_numpy()
    popularity = np.broadcast_to(truth.mean().to_numpy(), true.shape)
    rhos, baseline = _rowwise_spearman(recovered, true), _rowwise_spearman(popularity, true)
    true_top2 = np.argsort(-true, axis=1)[:, :2]
    top = np.array([categories.index(c) for c in prof["top_category"]])
    top_hits = (true_top2 == top[:, None]).any(axis=1)
    assert np.mean(rhos) > 0.5
    assert np.mean(rhos) > np.mean(baseline) + 0.3
    assert np.mean(top_hits) > 0.8


def test_user_profile_columns_are_consistent(sim):
    prof = sim["before"]["user_profiles"]
    buyers = prof[prof["orders_365d"] > 0]
    assert (buyers["orders_30d"] <= buyers["orders_90d"]).all()
    assert (buyers["orders_90d"] <= buyers["orders_365d"]).all()
    assert buyers[["r_score", "f_score", "m_score"]].isin([1, 2, 3, 4, 5]).all().all()
    assert prof.loc[prof["orders_365d"] == 0, "r_score"].isna().all()
    # Higher recency score means a more recent purchase.
    by_score = buyers.groupby("r_score")["recency_days"].mean()
    assert by_score.is_monotonic_decreasing
    assert set(prof["lifecycle_stage"]) <= {"new", "loyal", "active", "at_risk", "churned"}
    # Day 13 of a store that opened on day 0: everyone is still "new".
    assert (prof["lifecycle_stage"] == "new").all()
    shares = prof["category_affinity"].dropna().map(lambda a: sum(e["share"] for e in a))
    np.testing.assert_allclose(shares, 1.0, atol=1e-4)
    day_parts = (
        prof[["night_share", "morning_share", "afternoon_share", "evening_share"]].dropna().sum(axis=1)
    )
    np.testing.assert_allclose(day_parts, 1.0, atol=1e-6)
    assert prof["preferred_channel"].dropna().isin(["app", "web", "email", "paid_search", "social"]).all()
    # The hour profile keeps each customer's strongest hours (a bounded state), its shares summing to 1.
    hours = prof["hour_profile"].dropna()
    assert hours.map(len).max() == STATE_KEYS_CAP["hour"]
    np.testing.assert_allclose(hours.map(lambda h: sum(e["share"] for e in h)), 1.0, atol=1e-4)
    state = (
        sim["con"]
        .execute(
            f"select dimension, max(n) from (select as_of_date, dimension, customer_id, count(*) as n "
            f"from {PREF_STATE} group by all) where dimension in ('hour', 'brand') group by all"
        )
        .fetchall()
    )
    assert dict(state) == {"hour": STATE_KEYS_CAP["hour"], "brand": STATE_KEYS_CAP["brand"]}


def test_lifecycle_stages_follow_documented_rules(sim):
    prof = sim["con"].execute("select * from features.user_profiles where as_of_date = ?", [LAST]).df()
    new = prof["tenure_days"] < 30
    assert (prof.loc[new, "lifecycle_stage"] == "new").all()
    loyal = ~new & (prof["recency_days"] <= 29) & (prof["orders_90d"] >= 3)
    assert (prof.loc[loyal, "lifecycle_stage"] == "loyal").all()


def test_item_profiles_embedding_and_formulas(sim):
    items = sim["before"]["item_profiles"]
    metrics = sim["first"]["item_profiles"]["metrics"]
    # Titles and descriptions name the category's nouns, so the nearest item by text is nearly always from the
    # same category (20 categories: chance would be about 5-10%).
    assert metrics["embedding_nn_same_category"] > 0.9
    emb = np.stack(items["text_embedding"].to_numpy())
    assert emb.shape[1] == 32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sold = items[items["units_30d"] > 0]
    np.testing.assert_allclose(sold["days_of_cover"], sold["on_hand"] / sold["velocity_30d"], rtol=1e-9)
    np.testing.assert_allclose(
        sold["velocity_30d"], sold["units_30d"] / np.minimum(30, sold["novelty_days"] + 1)
    )
    rates = items[["view_to_cart_30d", "view_to_purchase_30d"]].dropna()
    assert ((rates >= 0) & (rates <= 1)).all().all()
    assert set(items["price_band"].dropna()) == {"low", "mid", "high"}
    sku = sold.sort_values("units_30d").iloc[-1]["sku"]
    neighbours = content_neighbours(sim["con"], AS_OF, sku, k=5)
    category = items.set_index("sku").loc[sku, "category"]
    assert (neighbours["category"] == category).mean() >= 0.8


def test_place_profiles_smoothing(sim):
    places = sim["before"]["place_profiles"]
    assert places["views"].sum() > 0
    for channel, cells in places.groupby("channel"):
        pooled = cells["carts"].sum() / cells["views"].sum()
        viewed = cells[cells["views"] > 0]
        # The posterior mean lies between the cell's own rate and the channel's pooled rate.
        lo = np.minimum(viewed["ctr_raw"], pooled) - 1e-12
        hi = np.maximum(viewed["ctr_raw"], pooled) + 1e-12
        assert ((viewed["ctr"] >= lo) & (viewed["ctr"] <= hi)).all(), channel


def test_beta_prior_shrinks_small_cells_more():
    rng = np.random.default_rng(1)
    true = rng.beta(20, 180, size=200)  # rates around 0.1
    trials = np.concatenate([np.full(190, 2000), np.full(10, 3)])
    successes = rng.binomial(trials, true)
    a, b = beta_prior(successes.astype(float), trials.astype(float))
    assert a / (a + b) == pytest.approx(successes.sum() / trials.sum())
    assert 50 < a + b < 800  # the true prior strength is 200
    frame = pd.DataFrame({"k": successes, "n": trials, "g": "x"})
    smoothed = smooth_rates(frame, "k", "n", "g").to_numpy()
    raw = successes / trials
    prior_mean = a / (a + b)
    big_move = np.abs(smoothed - raw)[:190].mean()
    small_move = np.abs(smoothed - raw)[190:].mean()
    assert small_move > 10 * big_move
    assert np.all(np.abs(smoothed[190:] - prior_mean) < np.abs(raw[190:] - prior_mean) + 1e-12)


def test_segments_have_data_driven_descriptions(sim):
    seg = sim["before"]["segment_summary"]
    metrics = sim["first"]["customer_segments"]["metrics"]
    assert 3 <= metrics["k"] <= 8 and len(seg) == metrics["k"]
    assert seg["segment"].is_unique
    assert seg["customers"].sum() == len(sim["before"]["customer_segments"])
    words = {high: (name, 1) for name, (_, _, high, _) in SEGMENT_FEATURES.items()}
    words |= {low: (name, -1) for name, (_, _, _, low) in SEGMENT_FEATURES.items()}
    for row in seg.itertuples():
        for word in row.segment.split(" #")[0].split(", "):
            if word in words:
                name, sign = words[word]
                assert sign * getattr(row, f"z_{name}") >= 0.5, (row.segment, name)
            else:
                assert word in {"typical buyers", "app", "web", "email", "paid_search", "social"}, word
    # Later days: segment ids are matched to the previous day's and movement is reported.
    moved = sim["later"][LAST]["customer_segments"]["metrics"]["moved_share_vs_previous_day"]
    assert moved is not None and 0 <= moved < 1


def test_describe_centroid_reads_the_numbers():
    z = pd.Series(
        {"value": 1.4, "frequency": 0.2, "recency": -0.9, "discount": 0.7, "price": 0.1, "engagement": 0.0}
    )
    assert describe_centroid(z, ("app", 1.6)) == "high value, recent, discount driven, app"
    assert describe_centroid(-z, ("app", 1.0)) == "low value, lapsing, full price"
    assert describe_centroid(z * 0.1, None) == "typical buyers"


TINY_DAY = date(2025, 3, 3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple:
    """A shop's one day, as it landed: five orders {A,B}, {A,B}, {A,B,C}, {A}, {C}; a cancelled {A,C}; and a
    return of one B. Loaded and modelled by the real raw loader and dbt; returns (folder, warehouse)."""
    folder = tmp_path_factory.mktemp("tiny_shop")
    listed = "2025-03-01 09:00:00+00:00"
    at = f"{TINY_DAY} 10:00:00+00:00"
    products = [
        ("A", "red mug", "a ceramic mug", "kitchen", "X", 10.0),
        ("B", "blue mug", "a ceramic mug", "kitchen", "X", 12.0),
        ("C", "tea", "green tea leaves", "grocery", "Y", 4.0),
    ]
    orders = [
        ("O1", "u1", "AB"),
        ("O2", "u2", "AB"),
        ("O3", "u1", "ABC"),
        ("O4", "u3", "A"),
        ("O5", "u2", "C"),
    ]
    orders += [("O6", "u3", "AC")]
    tables = {
        "customers": [
            {"customer_id": c, "first_seen_ts": pd.Timestamp(listed), "region": "london", "country": "GB"}
            for c in ("u1", "u2", "u3")
        ],
        "suppliers": [
            {
                "supplier_id": "S1",
                "name": "mugs ltd",
                "country": "GB",
                "lead_time_days": 5,
                "min_order_qty": 1,
                "first_seen_ts": pd.Timestamp(listed),
            }
        ],
        "products": [
            {
                "sku": sku,
                "title": t,
                "description": d,
                "category": c,
                "brand": b,
                "price": p,
                "currency": "GBP",
                "supplier_id": "S1",
                "lead_time_days": 5,
                "first_seen_ts": pd.Timestamp(listed),
            }
            for sku, t, d, c, b, p in products
        ],
        "orders": [
            {
                "order_id": o,
                "ts": pd.Timestamp(at),
                "customer_id": u,
                "channel": "web",
                "region": "london",
                "country": "GB",
                "currency": "GBP",
                "order_total": 10.0 * len(skus),
                "status": "cancelled" if o == "O6" else "placed",
            }
            for o, u, skus in orders
        ]
        + [
            {
                "order_id": "R1",
                "ts": pd.Timestamp(f"{TINY_DAY} 12:00:00+00:00"),
                "customer_id": "u1",
                "channel": "web",
                "region": "london",
                "country": "GB",
                "currency": "GBP",
                "order_total": -12.0,
                "status": "placed",
            }
        ],
        "order_items": [
            {
                "order_id": o,
                "line_no": n,
                "ts": pd.Timestamp(at),
                "sku": sku,
                "qty": 1,
                "unit_price": 10.0,
                "discount": 0.0,
                "warehouse_id": "WH1",
            }
            for o, _, skus in orders
            for n, sku in enumerate(skus, start=1)
        ]
        + [
            {
                "order_id": "R1",
                "line_no": 1,
                "ts": pd.Timestamp(f"{TINY_DAY} 12:00:00+00:00"),
                "sku": "B",
                "qty": -1,
                "unit_price": 12.0,
                "discount": 0.0,
                "warehouse_id": "WH1",
            }
        ],
    }
    return folder, build_handmade(folder, TINY_DAY, tables)


def _tiny_con(tiny, tmp_path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(copy_warehouse(tiny[1], tmp_path)))


def test_basket_associations_exact_values(tiny, tmp_path):
    from ml.profiles import basket_summary

    warehouse = copy_warehouse(tiny[1], tmp_path)
    day = TINY_DAY
    run_dbt(warehouse, day, day, "basket_associations", extra_vars={"min_pair_orders": 1})
    con = duckdb.connect(str(warehouse))
    out = basket_summary(con, day)
    assert out["metrics"]["orders_in_window"] == 5
    rules = con.execute("select * from features.basket_associations where as_of_date = ?", [day]).df()
    ab = rules[(rules["antecedent"] == "A") & (rules["consequent"] == "B")].iloc[0]
    # n(A)=4, n(B)=3, n(A,B)=3, N=5 (the cancelled order does not count).
    assert ab["support"] == pytest.approx(3 / 5)
    assert ab["confidence"] == pytest.approx(3 / 4)
    assert ab["lift"] == pytest.approx((3 / 4) / (3 / 5))
    ba = rules[(rules["antecedent"] == "B") & (rules["consequent"] == "A")].iloc[0]
    assert ba["confidence"] == pytest.approx(1.0)
    bc = rules[(rules["antecedent"] == "B") & (rules["consequent"] == "C")].iloc[0]
    assert bc["lift"] == pytest.approx((1 / 3) / (2 / 5))
    con.close()
    run_dbt(warehouse, day, day, "basket_associations", extra_vars={"min_pair_orders": 2})
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert basket_summary(con, day)["row_count"] == 2  # only A<->B remains


def test_item_return_and_cancellation_rate_on_a_tiny_shop(tiny, tmp_path):
    con = _tiny_con(tiny, tmp_path)
    day = TINY_DAY
    item_profiles(con, day)
    items = (
        con.execute("select * from features.item_profiles where as_of_date = ?", [day]).df().set_index("sku")
    )
    # A: 4 sold, 1 in the cancelled order -> 1 / 5; B: 3 sold, 1 returned -> 1 / 3.
    assert items.loc["A", "return_cancel_rate_90d"] == pytest.approx(1 / 5)
    assert items.loc["B", "return_cancel_rate_90d"] == pytest.approx(1 / 3)
    assert items.loc["A", "purchases_30d"] == 4
    out = user_profiles(con, day)
    assert out["row_count"] == 3  # u1, u2, u3 (guest-free), all seen today
    users = con.execute("select * from features.user_profiles where as_of_date = ?", [day]).df()
    u1 = users.set_index("customer_id").loc["u1"]
    assert (u1["orders_30d"], u1["spend_30d"], u1["recency_days"]) == (2, 50.0, 0)
    assert place_profiles(con, day)["metrics"]["gmv_28d"] == pytest.approx(90.0)  # 9 sale lines of 10


def test_segments_skip_a_day_with_too_few_buyers(tiny, tmp_path):
    con = _tiny_con(tiny, tmp_path)
    day = TINY_DAY
    user_profiles(con, day)
    out = customer_segments(con, day)
    assert out["row_count"] == 0 and out["metrics"]["k"] is None
    assert "too few" in out["markdown"]["segments"]


def test_profiles_refuse_a_day_the_feature_layer_has_not_built(tiny, tmp_path):
    con = _tiny_con(tiny, tmp_path)
    with pytest.raises(ValueError, match="has not built 2025-03-04"):
        user_profiles(con, date(2025, 3, 4))


def test_lifecycle_flows_account_for_every_customer_of_both_days(simulated_warehouse):
    from ml.profiles.lifecycle import lifecycle_flows_summary

    day = START_DATE + timedelta(days=40)  # customers of the first month are leaving the 'new' stage
    with duckdb.connect(str(simulated_warehouse), read_only=True) as con:
        flows = con.execute(
            "select from_stage, to_stage, customers from features.lifecycle_flows where as_of_date = ?", [day]
        ).df()
        stages = {
            d: dict(
                con.execute(
                    "select lifecycle_stage, count(*) from features.customer_windows where as_of_date = ? group by 1",
                    [d],
                ).fetchall()
            )
            for d in (day - timedelta(days=1), day)
        }
        moved_by_hand = con.execute(
            "select count(*) from features.customer_windows t join features.customer_windows y "
            "on t.customer_id = y.customer_id and y.as_of_date = t.as_of_date - 1 "
            "where t.as_of_date = ? and t.lifecycle_stage <> y.lifecycle_stage",
            [day],
        ).fetchall()[0][0]
        summary = lifecycle_flows_summary(con, day)
    assert flows.groupby("to_stage")["customers"].sum().to_dict() == stages[day]
    known = flows[flows["from_stage"] != "not_known"]
    assert known.groupby("from_stage")["customers"].sum().to_dict() == stages[day - timedelta(days=1)]
    assert summary["metrics"]["customers_moved"] == moved_by_hand > 0
    assert summary["metrics"]["customers_newly_known"] == int(
        flows.loc[flows["from_stage"] == "not_known", "customers"].sum()
    )
    assert summary["markdown"]["flows"].startswith("| from \\ to |")
