"""The daily recommender pieces (train -> evaluate next day -> recommend -> champion gate) on the simulated store.

The store's customers have known category tastes (``World.true_category_affinity``), so besides next-day hit rates
the tests check that personalised lists follow those tastes better than popularity does.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import torch

from ml.artifacts import ArtifactStore
from ml.recommend.bundles import BUNDLES, expired_bundles, load_bundle
from ml.recommend.champion import choose_champion
from ml.recommend.evaluation import evaluate_next_day, flatten_metrics
from ml.recommend.interactions import collapse_repeats
from ml.recommend.serving import recommend
from ml.recommend.training import train_candidates
from ml.sources.simulated import SimulatedStore
from tests.frames import assert_same_frame

torch.set_num_threads(1)

START = date(2025, 1, 1)
TRAIN_DAYS = 21
# small and fast: enough epochs at a high learning rate to learn the store's category structure in seconds
SASREC = {"hidden": 32, "max_len": 20, "batch_size": 256, "max_epochs": 5, "patience": 2, "lr": 1e-2}
SASREC |= {"emb_dropout": 0.2, "dropout": 0.1}


@pytest.fixture(scope="module")
def store():
    sim = SimulatedStore("small", seed=42)
    events, products = [], []
    for d in range(TRAIN_DAYS + 2):
        tables = sim.day_tables(START + timedelta(days=d), ["events", "products"])
        events.append(tables["events"].to_pandas())
        products.append(tables["products"].to_pandas())
    events = pd.concat(events, ignore_index=True).rename(columns={"ts": "event_ts"})
    return sim, events, pd.concat(products, ignore_index=True)


def _day(d: int) -> pd.Timestamp:
    return pd.Timestamp(START + timedelta(days=d), tz="UTC")


@pytest.fixture(scope="module")
def trained(store, tmp_path_factory):
    _, events, products = store
    as_of = START + timedelta(days=TRAIN_DAYS - 1)
    history = events[events["event_ts"] < _day(TRAIN_DAYS)]
    items = products[products["first_seen_ts"] < _day(TRAIN_DAYS)]
    artifacts = ArtifactStore(tmp_path_factory.mktemp("artifacts"))
    bundle = train_candidates(
        history, as_of, artifacts, items=items, seed=0, sasrec_time_budget=20, sasrec_config=SASREC
    )
    nxt = events[(events["event_ts"] >= _day(TRAIN_DAYS)) & (events["event_ts"] < _day(TRAIN_DAYS + 1))]
    return bundle, history, nxt[nxt["event_type"] == "purchase"], artifacts


def test_manifest_and_reload(trained):
    bundle, history, _, store = trained
    manifest = json.loads((bundle.path / "manifest.json").read_text())
    assert manifest["as_of"] == str(START + timedelta(days=TRAIN_DAYS - 1))
    assert manifest["data_window"]["events"] == len(history)
    assert pd.Timestamp(manifest["data_window"]["end_exclusive"]) == _day(TRAIN_DAYS)
    assert {"popularity", "itemknn", "ease", "transition", "sasrec", "content", "hybrid"} <= set(
        manifest["models"]
    )
    for entry in manifest["models"].values():
        assert entry["version"] and entry["train_seconds"] >= 0
    assert bundle.path == store.path(BUNDLES, manifest["as_of"]) and store.names(BUNDLES) == [
        manifest["as_of"]
    ]
    again = load_bundle(store, START + timedelta(days=TRAIN_DAYS - 1))
    customers = history["customer_id"].unique()[:30]
    a = recommend(bundle["ease"], customers, history, k=5)
    b = recommend(again["ease"], customers, history, k=5)
    pd.testing.assert_frame_equal(a, b)


def test_training_ignores_events_after_the_cutoff(store):
    _, events, _ = store
    as_of = START + timedelta(days=4)
    cut = train_candidates(events[events["event_ts"] < _day(5)], as_of, models=["popularity"])
    full = train_candidates(events, as_of, models=["popularity"])
    np.testing.assert_array_equal(cut.models["popularity"].pop_, full.models["popularity"].pop_)


def test_every_model_beats_random_and_popularity_next_day(trained):
    bundle, history, purchases, _ = trained
    metrics = evaluate_next_day(bundle, history, purchases, k=(10, 20))
    n_items = len(bundle.item_ids)
    pop = metrics["popularity"]["NDCG@10"]
    # random lists hit about 10 / n_items of each customer's targets
    assert pop > 2 * 10 / n_items
    for name in ("itemknn", "ease", "transition", "sasrec", "hybrid"):
        assert metrics[name]["NDCG@10"] > 1.2 * pop, (name, metrics[name]["NDCG@10"], pop)
        assert metrics[name]["recall@20"] >= metrics[name]["recall@10"]
        assert metrics[name]["coverage@10"] > metrics["popularity"]["coverage@10"]
    assert metrics["content"]["NDCG@10"] > pop  # text alone already personalises by category
    # customers whose next-day purchases are all re-purchases have no reachable target and are not evaluated
    bought = history.loc[history["event_type"] == "purchase", ["customer_id", "sku"]].drop_duplicates()
    fresh = purchases.merge(bought, how="left", indicator=True)
    assert (
        metrics["popularity"]["users"] == fresh.loc[fresh["_merge"] == "left_only", "customer_id"].nunique()
    )


def test_a_day_with_more_buyers_than_the_limit_is_judged_on_a_seeded_sample(trained, monkeypatch):
    import ml.recommend.evaluation as evaluation

    bundle, history, purchases, _ = trained
    buyers = purchases["customer_id"].nunique()
    full = evaluate_next_day(bundle, history, purchases, k=(10,), model_names=["popularity"])["popularity"]
    assert full["buyers"] == buyers and full["users"] <= buyers
    monkeypatch.setattr(evaluation, "MAX_EVALUATED_CUSTOMERS", buyers // 2)
    runs = [
        evaluate_next_day(bundle, history, purchases, k=(10,), model_names=["popularity", "itemknn"])
        for _ in range(2)
    ]
    sample = runs[0]["popularity"]
    assert sample["buyers"] == buyers
    assert 0 < sample["users"] <= buyers // 2 < full["users"]
    # the same customers for every candidate and on every re-run
    assert runs[0]["itemknn"]["users"] == sample["users"]
    assert runs[0] == runs[1]
    assert abs(sample["NDCG@10"] - full["NDCG@10"]) < 0.5 * full["NDCG@10"]


def test_lists_follow_the_true_category_tastes(store, trained):
    sim, _, _ = store
    bundle, history, purchases, _ = trained
    truth = sim.world.true_category_affinity
    category = sim.world.product_category
    customers = purchases["customer_id"].unique()

    def taste_of_lists(name: str) -> float:
        recs = recommend(bundle[name], customers, history, k=10)
        cats = category.reindex(recs["sku"]).to_numpy()
        aff = truth.to_numpy()[truth.index.get_indexer(recs["customer_id"]), truth.columns.get_indexer(cats)]
        return float(aff.mean())

    pop = taste_of_lists("popularity")
    for name in ("ease", "sasrec"):
        assert taste_of_lists(name) > 1.3 * pop, name


def test_cold_slices(trained):
    bundle, history, purchases, _ = trained
    # hide some next-day buyers' whole history: they become new customers
    buyers = purchases["customer_id"].unique()
    hidden = set(buyers[::3])
    visible = history[~history["customer_id"].isin(hidden)]
    metrics = evaluate_next_day(bundle, visible, purchases, k=(10,), model_names=["popularity", "ease"])
    cold = metrics["ease"]["cold_users"]
    assert cold["users"] == len(hidden)
    # new customers are served region popularity by every model, so EASE and popularity are comparable there
    assert cold["HR@10"] > 0
    assert metrics["ease"]["NDCG@10"] > metrics["ease"]["cold_users"]["NDCG@10"]
    assert "cold_items" in metrics["ease"]


def test_new_items_reach_lists_through_content(store):
    _, events, products = store
    as_of = START + timedelta(days=TRAIN_DAYS - 1)
    history = events[events["event_ts"] < _day(TRAIN_DAYS)]
    # ten items have never been seen by the collaborative models (as if they launched today)
    new = np.sort(history["sku"].value_counts().index[20:30].to_numpy())
    train = history[~history["sku"].isin(new)]
    bundle = train_candidates(
        train, as_of, items=products, models=["popularity", "segment_popularity", "content", "ease"]
    )
    assert set(new) <= set(bundle.item_ids) and not np.isin(new, bundle.item_ids[bundle.trained_items]).any()
    customers = train["customer_id"].unique()[:300]
    content = recommend(bundle["content"], customers, train, k=20)
    ease = recommend(bundle["ease"], customers, train, k=20)
    assert content["sku"].isin(new).any()
    # nobody has bought a new item, so its reason can only be its category (one of the customer's) or popularity
    new_rows = content[content["sku"].isin(new)]
    assert new_rows["reason"].str.startswith(("new in a category you like", "popular")).all()
    liked = new_rows[new_rows["reason"].str.startswith("new in")]
    assert len(liked) > 0
    category = products.drop_duplicates("sku").set_index("sku")["category"]
    for customer, sku, reason in zip(liked["customer_id"], liked["sku"], liked["reason"], strict=True):
        assert category[sku] in reason
        their = train.loc[train["customer_id"] == customer, "sku"]
        assert category[sku] in set(category.reindex(their).dropna())
    assert not ease["sku"].isin(new).any()  # EASE has no column for them: zero scores, never on top


def test_recommendations_exclude_purchases_and_reasons_cite_history(trained):
    bundle, history, purchases, _ = trained
    customers = list(purchases["customer_id"].unique()[:80]) + ["NEW-CUSTOMER"]
    in_stock = bundle.item_ids[::2]
    items = pd.DataFrame({"sku": in_stock, "title": [f"Title {s}" for s in in_stock]})
    mine = history[history["customer_id"].isin(customers)]
    seen = set(zip(mine["customer_id"], mine["sku"], strict=True))
    purchased = mine[mine["event_type"] == "purchase"]
    bought = set(zip(purchased["customer_id"], purchased["sku"], strict=True))
    for name in ("transition", "sasrec", "itemknn", "popularity"):
        recs = recommend(bundle[name], customers, history, k=10, items=items)
        assert list(recs.columns[:7]) == [
            "customer_id",
            "rank",
            "sku",
            "score",
            "model_name",
            "model_version",
            "reason",
        ]
        assert (recs["model_name"] == name).all() and (recs["model_version"] == bundle.versions[name]).all()
        assert recs["sku"].isin(in_stock).all()
        assert (
            recs.groupby("customer_id")["rank"].apply(lambda r: list(r) == list(range(1, len(r) + 1))).all()
        )
        assert not any((c, s) in bought for c, s in zip(recs["customer_id"], recs["sku"], strict=True))
        cites = recs[recs["reason_sku"].notna()]
        assert len(cites) > 0
        assert all((c, s) in seen for c, s in zip(cites["customer_id"], cites["reason_sku"], strict=True))
        # the cited item is named by the title passed in ``items`` (or the catalogue title it had at training)
        titled = set(in_stock)
        for reason, sku in zip(cites["reason"], cites["reason_sku"], strict=True):
            assert reason.startswith(("bought together with", "similar to")), reason
            assert (f"Title {sku}" if sku in titled else bundle.titles[sku]) in reason
        new = recs[recs["customer_id"] == "NEW-CUSTOMER"]
        assert len(new) == 10 and new["reason"].str.startswith("popular").all()


def test_bought_together_reasons_come_from_the_basket_pairs_given(trained):
    """Without basket pairs no list says "bought together"; with a pair (X, Y) where X is in the customer's
    history and Y in the list, Y's reason names X."""
    import scipy.sparse as sp

    bundle, history, purchases, _ = trained
    customer = str(purchases["customer_id"].iloc[0])
    plain = recommend(bundle["itemknn"], [customer], history, k=10)
    assert not plain["reason"].str.startswith("bought together").any()
    seen = history.loc[history["customer_id"].astype(str) == customer, "sku"].astype(str)
    x = pd.Index(bundle.item_ids).get_loc(seen.iloc[-1])
    y_sku = plain["sku"].iloc[3]
    y = pd.Index(bundle.item_ids).get_loc(y_sku)
    n = len(bundle.item_ids)
    pairs = sp.csr_matrix(([2.5], ([x], [y])), shape=(n, n), dtype=np.float32)
    explained = recommend(bundle["itemknn"], [customer], history, k=10, together=pairs)
    assert explained["sku"].tolist() == plain["sku"].tolist()  # reasons change, never the list
    row = explained[explained["sku"] == y_sku].iloc[0]
    assert row["reason"] == f"bought together with {bundle.titles[seen.iloc[-1]]}"
    assert row["reason_sku"] == seen.iloc[-1]


def test_basket_pairs_read_the_days_associations_onto_the_bundles_items():
    import duckdb

    from ml.recommend.daily import basket_pairs

    con = duckdb.connect()
    items = np.array(["A", "B", "C"], dtype=object)
    assert basket_pairs(con, date(2025, 1, 2), items).nnz == 0  # no table yet: no pairs
    con.execute("create schema features")
    con.execute(
        "create table features.basket_associations as select * from (values "
        "(DATE '2025-01-02', 'A', 'B', 3.0), (DATE '2025-01-02', 'B', 'A', 3.0), "
        "(DATE '2025-01-02', 'A', 'Z', 9.0), (DATE '2025-01-01', 'C', 'A', 7.0)) "
        "v(as_of_date, antecedent, consequent, lift)"
    )
    m = basket_pairs(con, date(2025, 1, 2), items)
    assert m.shape == (3, 3) and m.nnz == 2  # Z is not in the bundle, C-A is another day
    assert m[0, 1] == 3.0 and m[1, 0] == 3.0 and m[2, 0] == 0.0


def test_warm_start_and_carry_over(trained, store, tmp_path):
    bundle, history, purchases, _ = trained
    _, events, products = store
    as_of = START + timedelta(days=TRAIN_DAYS)
    later = events[events["event_ts"] < _day(TRAIN_DAYS + 1)]
    carried = train_candidates(
        later,
        as_of,
        ArtifactStore(tmp_path),
        items=products,
        warm_start_from=bundle,
        retrain_sasrec=False,
        models=["popularity", "segment_popularity", "sasrec"],
    )
    assert carried.versions["sasrec"] == bundle.versions["sasrec"]
    old, new = bundle.models["sasrec"], carried.models["sasrec"]
    shared = np.intersect1d(old.item_ids_, new.item_ids_)
    o = old.net_.item_emb.weight.detach().numpy()[np.searchsorted(old.item_ids_, shared) + 1]
    n = new.net_.item_emb.weight.detach().numpy()[np.searchsorted(new.item_ids_, shared) + 1]
    np.testing.assert_array_equal(o, n)
    warm = train_candidates(
        later,
        as_of,
        items=products,
        warm_start_from=bundle,
        retrain_sasrec=True,
        warm_epochs=1,
        models=["popularity", "segment_popularity", "sasrec"],
    )
    assert warm.versions["sasrec"] != bundle.versions["sasrec"]
    assert "warm-started" in warm.manifest["models"]["sasrec"]["note"]


def test_choose_champion():
    rows = []
    for d in range(10):
        rows += [
            {"date": f"2025-02-{d + 1:02d}", "model": "popularity", "NDCG@10": 0.10},
            {"date": f"2025-02-{d + 1:02d}", "model": "sasrec", "NDCG@10": 0.10 if d < 5 else 0.13},
            {"date": f"2025-02-{d + 1:02d}", "model": "ease", "NDCG@10": 0.12},
        ]
    df = pd.DataFrame(rows)
    last5 = choose_champion(df, margin=0.1, last_days=5)
    assert last5["champion"] == "sasrec" and "sasrec" in last5["reason"] and last5["beats_baseline"]
    assert len(last5["window"]) == 5
    all10 = choose_champion(df, margin=0.1, last_days=10)
    assert all10["champion"] == "ease"  # sasrec's mean over 10 days (0.115) is below ease's 0.12
    strict = choose_champion(df, margin=0.5, last_days=5, previous_champion="ease")
    assert strict["champion"] == "ease" and "previous champion" in strict["reason"]
    assert not strict["beats_baseline"]
    none = choose_champion(df, margin=0.5, last_days=5)
    assert none["champion"] == "popularity" and "serving popularity" in none["reason"]
    assert not none["beats_baseline"]
    flat = flatten_metrics("2025-03-01", {"m": {"NDCG@10": 0.2, "cold_users": {"NDCG@10": 0.1}}})
    assert flat.loc[0, "cold_users.NDCG@10"] == 0.1


def test_repeated_events_collapse_and_history_is_capped():
    ts = pd.date_range("2025-01-01", periods=5, freq="h", tz="UTC")
    events = pd.DataFrame(
        {
            "customer_id": ["c1"] * 5,
            "sku": ["a", "a", "b", "a", "c"],
            "event_ts": ts,
            "event_type": ["view", "purchase", "view", "view", "cart"],
        }
    )
    assert collapse_repeats(events, None)["sku"].tolist() == ["a", "b", "a", "c"]
    assert collapse_repeats(events, 2)["sku"].tolist() == ["a", "c"]


def test_an_encoded_log_gives_the_sequences_of_the_plain_one(store):
    """The log read with categorical ids (what the warehouse gives) and the same log with plain strings give the
    same cleaned rows, collapsed history and sequences: the codes only change how the ids are held."""
    from ml.recommend.data import Sequences
    from ml.recommend.interactions import ID_COLUMNS, clean_events, concat_logs, to_sequences

    _, events, _ = store
    plain = events.assign(customer_id=events["customer_id"].astype(str), sku=events["sku"].astype(str))
    half = len(plain) // 2
    # two reads with different id sets, joined as read_interactions joins the clickstream and the order lines
    encoded = concat_logs(
        [
            plain.iloc[:half].assign(
                **{c: plain[c].iloc[:half].astype("category") for c in ID_COLUMNS if c in plain}
            ),
            plain.iloc[half:].assign(
                **{c: plain[c].iloc[half:].astype("category") for c in ID_COLUMNS if c in plain}
            ),
        ]
    )
    assert isinstance(encoded["sku"].dtype, pd.CategoricalDtype) and len(encoded) == len(plain)
    a, b = clean_events(plain), clean_events(encoded)
    for column in ("customer_id", "sku", "event_type"):
        assert b[column].cat.categories.is_monotonic_increasing
        assert a[column].astype(str).tolist() == b[column].astype(str).tolist()
    assert a["event_ts"].tolist() == b["event_ts"].tolist()
    vocab = np.array(sorted(plain["sku"].unique())[:-5], dtype=object)  # some items outside the vocabulary
    collapsed = collapse_repeats(a)
    as_strings = collapsed[collapsed["sku"].astype(str).isin(set(vocab))].astype(
        {"customer_id": str, "sku": str}
    )
    # the sequences as built from plain strings: factorised users, items looked up row by row
    expected = Sequences.from_frame(
        pd.DataFrame(
            {
                "user": as_strings["customer_id"].to_numpy(),
                "item": as_strings["sku"].to_numpy(),
                "ts": as_strings["event_ts"].astype("int64").to_numpy(),
            }
        ),
        item_ids=vocab,
    )
    from_codes = to_sequences(collapse_repeats(b), vocab)
    assert expected.user_ids.tolist() == from_codes.user_ids.tolist()
    np.testing.assert_array_equal(expected.indptr, from_codes.indptr)
    np.testing.assert_array_equal(expected.items, from_codes.items)
    customers = np.array(sorted(plain["customer_id"].unique())[:30] + ["nobody"], dtype=object)
    subset = to_sequences(collapse_repeats(b), vocab, customers)
    rows = pd.Index(expected.user_ids).get_indexer(customers[:30])
    assert all(np.array_equal(subset[i], expected[r]) for i, r in enumerate(rows))
    assert len(subset[len(customers) - 1]) == 0  # the unknown customer: an empty sequence


def test_collapse_repeats_accepts_an_empty_history():
    empty = pd.DataFrame(
        {"customer_id": [], "sku": [], "event_ts": pd.to_datetime([], utc=True), "event_type": []}
    )
    assert collapse_repeats(empty).empty


def test_retention_keeps_the_recent_bundles_and_what_unfinished_runs_read(tmp_path):
    store = ArtifactStore(tmp_path)
    for day in range(1, 11):
        store.write(
            BUNDLES, f"2025-01-{day:02d}", lambda f: (f / "manifest.json").write_text("{}"), folder=True
        )
    store.write(BUNDLES, "notes", lambda f: f.write_text("not a bundle"))
    # three days back from the newest (01-10): 01-08 .. 01-10 stay; an unfinished run reads 01-04
    assert expired_bundles(store, 3, protected={date(2025, 1, 4)}) == [
        f"2025-01-{d:02d}" for d in (1, 2, 3, 5, 6, 7)
    ]
    assert expired_bundles(store, 30) == [] and expired_bundles(ArtifactStore(tmp_path / "none"), 3) == []
    assert load_bundle(store, date(2025, 1, 11)) is None


def test_the_runs_a_retention_must_spare():
    from orchestration.defs.recommend.retention import days_a_run_reads

    assert days_a_run_reads({"dagster/partition": "2025-01-05"}) == {date(2025, 1, 4), date(2025, 1, 5)}
    ranged = {
        "dagster/asset_partition_range_start": "2025-01-05",
        "dagster/asset_partition_range_end": "2025-01-07",
    }
    assert days_a_run_reads(ranged) == {date(2025, 1, d) for d in range(4, 8)}
    assert days_a_run_reads({}) == set() and days_a_run_reads({"dagster/partition": "all"}) == set()


def test_daily_evaluation_ranks_ties_pessimistically():
    """A hit counts at the number of other items scored at least as high, as in the benchmark: a model that
    scores everything alike cannot profit from the order a sort happened to leave."""
    import scipy.sparse as sp

    from ml.recommend.evaluation import _ranking_metrics
    from ml.recommend.scoring import pessimistic_positions

    scores = np.array([[0.5, 0.5, 0.5, 0.5, 0.1], [0.9, 0.5, 0.5, 0.2, -np.inf]], dtype=np.float32)
    top = np.array([[2, 0], [0, 1]])  # the lists as a sort left them
    values = np.take_along_axis(scores, top, axis=1)
    ranks = pessimistic_positions(scores, values)
    assert ranks.tolist() == [[3, 3], [0, 2]]  # four items tie at 0.5: each is ranked behind all of them
    relevant = sp.csr_matrix(np.array([[0, 0, 1, 0, 0], [0, 1, 0, 0, 0]], dtype=np.float32))
    n_rel = np.array([1, 1])
    by_position = _ranking_metrics(top, relevant, n_rel, (1, 3))
    pessimistic = _ranking_metrics(top, relevant, n_rel, (1, 3), ranks)
    assert by_position["HR@1"] == 0.5  # user 0's tied item happened to be sorted first
    assert pessimistic["HR@1"] == 0.0 and pessimistic["HR@3"] == 0.5  # user 1's hit at rank 2 (a tie)
    assert pessimistic["NDCG@3"] == pytest.approx((1 / np.log2(4)) / 2)
    assert by_position["NDCG@3"] > pessimistic["NDCG@3"]


def test_models_do_not_depend_on_the_order_the_warehouse_returned_the_events(store):
    """Two runs of one day read the same events in different orders (a parallel scan): the cleaned history, and
    so the sequences and EASE, must be the same."""
    from ml.recommend.baselines import EASE
    from ml.recommend.interactions import clean_events, to_sequences

    _, events, _ = store
    a = clean_events(events)
    b = clean_events(events.sample(frac=1.0, random_state=7))
    assert_same_frame(a.reset_index(drop=True), b.reset_index(drop=True))
    items = np.array(sorted(a["sku"].unique()), dtype=object)
    customers = np.array(sorted(a["customer_id"].unique()), dtype=object)
    fitted = []
    for frame in (a, b):
        model = EASE()
        model._fit(to_sequences(collapse_repeats(frame), items, customers))
        fitted.append(model.b_)
    np.testing.assert_array_equal(fitted[0], fitted[1])
    # the same instant keeps the funnel order: a view before the cart before the purchase
    funnel = a["event_type"].map({"view": 0, "cart": 1, "purchase": 2}).astype(int)
    steps = funnel.groupby([a["customer_id"], a["event_ts"]], observed=True).diff().dropna()
    assert len(steps) and (steps >= 0).all()


def test_without_a_time_budget_two_trainings_are_identical_and_a_binding_budget_is_reported(store):
    """A day re-run must give the same model; the wall-clock budget is the one input that is not data, so the
    bundle says when it ended the training, and no budget reproduces it exactly."""
    _, events, _ = store
    as_of = START + timedelta(days=6)
    history = events[events["event_ts"] < _day(7)]
    customers = history["customer_id"].unique()[:40]

    config = SASREC | {"max_epochs": 2}  # a repeat of two epochs shows determinism as well as one of five

    def train(budget):
        bundle = train_candidates(
            history, as_of, models=["sasrec"], seed=0, sasrec_time_budget=budget, sasrec_config=config
        )
        return bundle, recommend(bundle["sasrec"], customers, history, k=10)

    first, lists = train(None)
    second, again = train(None)
    pd.testing.assert_frame_equal(lists, again)
    weights = [b.models["sasrec"].net_.state_dict() for b in (first, second)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not first.models["sasrec"].stopped_by_budget_
    assert "time budget" not in first.manifest["models"]["sasrec"]["note"]

    cut, _ = train(1e-6)
    epochs = len(cut.models["sasrec"].config.history)
    assert cut.models["sasrec"].stopped_by_budget_ and epochs == 1 < config["max_epochs"]
    # a budget shorter than one epoch stops between batches: one batch trained, and the note says so
    last = cut.models["sasrec"].config.history[-1]
    assert last["batches"] == 1 < last["batches_in_epoch"]
    note = cut.manifest["models"]["sasrec"]["note"]
    assert (
        f"ended by the time budget after 1 epochs (the last cut short after 1 of its {last['batches_in_epoch']}"
        in note
    )
    assert "a re-run on a faster or busier machine can keep another epoch" in note


def test_ranks_do_not_depend_on_how_many_users_a_score_batch_holds(monkeypatch):
    from ml.recommend import metrics
    from ml.recommend.data import Sequences

    rng = np.random.default_rng(0)
    histories = Sequences.from_lists([list(rng.choice(50, 4, replace=False)) for _ in range(30)], n_items=50)
    scores = rng.random((30, 50)).astype(np.float32)
    targets = rng.integers(0, 50, 30)
    seen = []

    def score(batch):
        seen.append(len(batch))
        return scores[batch]

    whole = metrics.ranks_for(score, histories, targets)
    assert seen == [30]
    seen.clear()
    monkeypatch.setattr(metrics, "SCORE_BATCH_BYTES", 4 * 50 * 7)  # 7 users' scores per batch
    assert metrics.ranks_for(score, histories, targets).tolist() == whole.tolist()
    assert seen == [7, 7, 7, 7, 2]


def test_pessimistic_positions_count_every_item_scored_at_least_as_high():
    """The one-pass version against the definition, on scores with many ties, excluded items and short lists."""
    from ml.recommend.scoring import pessimistic_positions, top_k

    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, (40, 300)).astype(np.float32)  # six values over 300 items: ties everywhere
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    scores[0, 3:] = -np.inf  # a customer with fewer allowed items than the list is long
    _, values = top_k(scores, 10)
    by_definition = np.stack(
        [(scores >= values[:, j : j + 1]).sum(axis=1) - 1 for j in range(values.shape[1])], axis=1
    )
    assert pessimistic_positions(scores, values).tolist() == by_definition.tolist()


def test_interactions_read_without_a_clickstream_and_without_regions():
    """The real shop's source has order lines only (no clickstream) and may have no regions: the log still
    reads, every purchase once, ids as categoricals."""
    import duckdb

    from ml.recommend.interactions import read_interactions

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.fct_events (customer_id varchar, sku varchar, event_ts timestamp, event_type varchar, "
        "region varchar, event_date date, event_id varchar)"
    )
    con.execute(
        "create table marts.fct_order_items as select * from (values "
        "('c2', 'S9', TIMESTAMP '2025-01-02 10:00:00', NULL::varchar, DATE '2025-01-02', true, 'o2', 1), "
        "('c1', 'S1', TIMESTAMP '2025-01-01 09:00:00', NULL, DATE '2025-01-01', true, 'o1', 1), "
        "('c1', 'S2', TIMESTAMP '2025-01-01 09:00:00', NULL, DATE '2025-01-01', false, 'o1', 2)) "
        "v(customer_id, sku, order_ts, region, order_date, is_sale, order_id, line_no)"
    )
    log = read_interactions(con, date(2025, 1, 1), date(2025, 1, 2))
    assert log["customer_id"].astype(str).tolist() == ["c1", "c2"] and log["sku"].astype(str).tolist() == [
        "S1",
        "S9",
    ]
    assert (log["event_type"] == "purchase").all() and log["region"].isna().all()
    assert isinstance(log["sku"].dtype, pd.CategoricalDtype)
