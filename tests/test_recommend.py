"""Recommendation models, metrics and the paper-protocol benchmark on tiny, planted-structure data."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from ml.recommend import (
    EASE,
    Blend,
    ContentKNN,
    ItemKNN,
    LeaveOneOut,
    Popularity,
    SASRec,
    SASRecConfig,
    SegmentPopularity,
    Sequences,
    Transition,
    attribute_matrix,
    evaluate,
    metrics_from_ranks,
    read_sequence_file,
    target_ranks,
    text_features,
    validation_users,
)
from ml.recommend.base import Recommender
from ml.recommend.sasrec import fit_with_refit

torch.set_num_threads(1)

N_CLUSTERS, PER_CLUSTER = 5, 12
N_ITEMS = N_CLUSTERS * PER_CLUSTER


def planted_store(n_users: int = 400, seed: int = 0) -> tuple[Sequences, np.ndarray]:
    """Users with one latent taste cluster each, buying along a cluster-specific cycle.

    Next item: the cycle successor of the last item (70 %), another item of the user's cluster (25 %), any item
    (5 %). Items have skewed popularity inside each cluster, so popularity is a real but beatable baseline.
    Returns the sequences and each user's cluster.
    """
    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, N_CLUSTERS, n_users)
    perms = [rng.permutation(PER_CLUSTER) for _ in range(N_CLUSTERS)]
    skew = 1.0 / np.arange(1, PER_CLUSTER + 1)
    skew /= skew.sum()
    seqs = []
    for c in clusters:
        base = c * PER_CLUSTER
        pos = int(rng.choice(PER_CLUSTER, p=skew))
        seq = [base + perms[c][pos]]
        for _ in range(int(rng.integers(6, 14)) - 1):
            r = rng.random()
            if r < 0.7:
                pos = (pos + 1) % PER_CLUSTER
                item = base + perms[c][pos]
            elif r < 0.95:
                pos = int(rng.choice(PER_CLUSTER, p=skew))
                item = base + perms[c][pos]
            else:
                item = int(rng.integers(N_ITEMS))
            seq.append(item)
        seqs.append(seq)
    return Sequences.from_lists(seqs, N_ITEMS), clusters


@pytest.fixture(scope="module")
def store() -> tuple[LeaveOneOut, np.ndarray]:
    seqs, clusters = planted_store()
    return LeaveOneOut.split(seqs), clusters


def test_score(model: Recommender, loo: LeaveOneOut) -> float:
    return evaluate(
        lambda b: model.score(histories=loo.test_train.subset(b)), loo.test_train, loo.test_target
    )["NDCG@10"]


test_score.__test__ = False  # a helper, not a test


# ----------------------------------------------------------------------------------------------------- metrics
def test_pessimistic_ranks_match_hand_computed_values():
    scores = np.array(
        [
            [0.5, 0.9, 0.5, 0.1, 0.0],  # target 0 ties with item 2 and is beaten by item 1 -> rank 2
            [0.2, 0.2, 0.2, 0.2, 0.2],  # all tied -> the target is last: rank 4
            [0.1, 0.3, 0.2, 0.9, 0.0],  # target 3 is the strict maximum -> rank 0
        ],
        dtype=np.float32,
    )
    ranks = target_ranks(scores.copy(), np.array([0, 1, 3]))
    assert ranks.tolist() == [2, 4, 0]
    m = metrics_from_ranks(ranks, ks=(1, 3, 5))
    assert m["HR@1"] == pytest.approx(1 / 3)
    assert m["HR@3"] == pytest.approx(2 / 3)
    assert m["HR@5"] == pytest.approx(1.0)
    assert m["NDCG@3"] == pytest.approx((1 / math.log2(4) + 1.0) / 3)
    assert m["NDCG@5"] == pytest.approx((1 / math.log2(4) + 1 / math.log2(6) + 1.0) / 3)


def test_history_items_are_excluded_but_never_the_target():
    scores = np.array([[0.5, 0.9, 0.5, 0.1], [0.5, 0.9, 0.5, 0.1]], dtype=np.float32)
    # user 0 has bought items 1 and 2 before; user 1 re-buys item 0 (the target is in the history)
    hist = Sequences.from_lists([[1, 2], [0, 1]], 4)
    ranks = target_ranks(scores.copy(), np.array([0, 0]), hist)
    assert ranks.tolist() == [0, 1]  # user 1: item 2 (0.5) still ties with the target
    assert metrics_from_ranks(ranks, ks=(1,))["NDCG@1"] == pytest.approx(0.5)


def test_nan_scores_count_against_the_target():
    scores = np.array([[np.nan, 0.1, 0.2]], dtype=np.float32)
    assert target_ranks(scores, np.array([0])).tolist() == [2]


def test_slots_reserved_for_new_items_place_each_kind_in_its_own_order():
    from ml.recommend.blend import cold_slot_ranks, slot_positions

    # every third slot is a new item's: warm ranks 0, 1 at 0, 1; warm 2 at 3; cold 0 at 2, cold 1 at 5
    assert slot_positions(np.array([0, 1, 2, 3, 0, 1]), np.array([0, 0, 0, 0, 1, 1], bool), 3).tolist() == [
        0,
        1,
        3,
        4,
        2,
        5,
    ]
    with pytest.raises(ValueError, match="at least 2"):
        slot_positions(np.array([0]), np.array([False]), 1)
    # items 3 and 4 are new: the main model gives them nothing, the content scores order them
    main = np.array([[0.5, 0.3, 0.2, 0.0, 0.0], [0.5, 0.3, 0.2, 0.0, 0.0]], dtype=np.float32)
    content = np.array([[0.0, 0.0, 0.0, 0.2, 0.8], [0.0, 0.0, 0.0, 0.2, 0.8]], dtype=np.float32)
    hist = Sequences.from_lists([[0], [1]], 5)
    ranks = cold_slot_ranks(
        [lambda b: main[b]],
        ["score"],
        lambda b: content[b],
        np.array([0, 0, 0, 1, 1], bool),
        hist,
        np.array([3, 2]),
        [(1.0,)],
        [None, 2],
    )
    # no slot: new item 3 ties with item 4 at the bottom (rank 3 of 4 after the history is removed)
    assert ranks[0, 0].tolist() == [3, 1]
    # a slot every second place: user 0's list is 1, [4], 2, [3] -> item 3 at 3; user 1's: 0, [4], 2 -> item 2 at 2
    assert ranks[0, 1].tolist() == [3, 2]


class _FixedScores(Recommender):
    def __init__(self, scores: np.ndarray):
        self.scores = scores

    def _fit(self, seqs: Sequences) -> None:
        pass

    def _score(self, histories: Sequences, users: np.ndarray) -> np.ndarray:
        return self.scores[: len(histories)].copy()


def test_the_served_cold_slots_are_the_benchmarks_lists():
    from ml.recommend.blend import ColdSlots, cold_slot_ranks

    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    main = rng.random((n_users, n_items)).astype(np.float32)
    main[:, 10:14] = 0.9  # four warm items tied near the top: the served list takes them in catalogue order
    content = rng.random((n_users, n_items)).astype(np.float32)
    training = Sequences.from_lists(
        [list(rng.choice(np.arange(8, n_items), size=3, replace=False)) for _ in range(n_users)], n_items
    )
    model = ColdSlots(_FixedScores(main), _FixedScores(content), every=3).fit(training)
    assert model.is_cold_.tolist() == [True] * 8 + [False] * 32  # items 0-7 were never in training
    nothing = Sequences.from_lists([[] for _ in range(n_users)], n_items)
    targets = rng.integers(0, n_items, n_users)
    served = target_ranks(model._score(nothing, np.arange(n_users)), targets)
    bench = cold_slot_ranks(
        [lambda b: main[b]], ["score"], lambda b: content[b], model.is_cold_, nothing, targets, [(1.0,)], [3]
    )[0, 0]
    # the same list wherever the eight new items last (every third place: the first 24); a tied target is
    # pessimistic in the benchmark, at its catalogue-order place in the served list
    tied = (targets >= 10) & (targets < 14)
    compared = bench < 24
    assert compared.sum() > 20 and (served[compared & ~tied] == bench[compared & ~tied]).all()
    assert (served[compared & tied] <= bench[compared & tied]).all()
    items, _ = model.topk(histories=nothing, k=6)
    assert model.is_cold_[items[:, [2, 5]]].all() and not model.is_cold_[items[:, [0, 1, 3, 4]]].any()
    # an excluded item (here the customer's history) leaves its place and the list closes up
    items, _ = model.topk(histories=training, k=6)
    assert (model.is_cold_[items].sum(axis=1) >= 2).all()
    assert not any(set(items[u]) & set(training[u]) for u in range(n_users))
    with pytest.raises(ValueError, match="at least 2"):
        ColdSlots(_FixedScores(main), _FixedScores(content), every=1)


# ----------------------------------------------------------------------------------------------------- data
def test_frame_ties_keep_row_order_and_leave_one_out_split():
    df = pd.DataFrame(
        {
            "user": ["a", "a", "a", "a", "b", "b", "b"],
            "item": ["x", "y", "z", "w", "y", "x", "z"],
            "ts": [1, 2, 2, 3, 5, 5, 5],
        }
    )
    seqs = Sequences.from_frame(df)
    names = lambda s, u: seqs.item_ids[s[u]].tolist()  # noqa: E731
    assert names(seqs, 0) == ["x", "y", "z", "w"]
    assert names(seqs, 1) == ["y", "x", "z"]
    loo = LeaveOneOut.split(seqs)
    assert seqs.item_ids[loo.test_target].tolist() == ["w", "z"]
    assert seqs.item_ids[loo.val_target].tolist() == ["z", "x"]
    assert names(loo.val_train, 0) == ["x", "y"] and names(loo.val_train, 1) == ["y"]
    assert names(loo.test_train, 1) == ["y", "x"]


def test_validation_takes_every_eligible_user_up_to_the_limit_then_a_seeded_sample():
    lengths = np.array([1, 3, 2, 5, 1, 3, 7, 2])
    eligible = np.flatnonzero(lengths >= 2)  # one item to predict from, one to predict
    assert validation_users(lengths, seed=0).tolist() == eligible.tolist()
    sample = validation_users(lengths, seed=0, limit=3)
    assert len(sample) == 3 and set(sample) <= set(eligible) and sample.tolist() == sorted(sample)
    assert validation_users(lengths, seed=0, limit=3).tolist() == sample.tolist()
    assert {tuple(validation_users(lengths, seed=s, limit=3)) for s in range(10)} != {tuple(sample)}


def test_refit_replays_the_early_stopped_schedule_on_all_the_data_and_says_why_when_it_cannot():
    seqs, _ = planted_store(n_users=200, seed=5)
    loo = LeaveOneOut.split(seqs)
    validation = (loo.val_train, loo.val_target)
    cfg = SASRecConfig(hidden=16, max_len=10, batch_size=64, max_epochs=60, patience=2, lr_patience=1, seed=0)
    fitted = fit_with_refit(cfg, loo.val_train, validation, loo.test_train)
    early, model = fitted.early_stopped, fitted.model
    assert fitted.refit and model is not early
    best = early.best_epoch_
    # the refit ran the best epoch count on all but the test item, with the learning rate of each of those epochs
    assert len(model.config.history) == best == model.best_epoch_
    assert [h["lr"] for h in model.config.history] == [h["lr"] for h in early.config.history[:best]]
    assert fitted.note.startswith("early stopping ended by patience")
    assert f"refit on all the data for {best} of {best} epochs" in fitted.note
    # never: the early-stopped model is the one used, and the note says it never saw the validation items
    never = fit_with_refit(cfg, loo.val_train, validation, loo.test_train, refit="never")
    assert never.model is never.early_stopped and not never.refit and "no refit (never)" in never.note
    # a budget spent by early stopping leaves no room: the note gives the seconds left and needed
    tight = fit_with_refit(
        dataclasses.replace(cfg, time_budget=1e-6), loo.val_train, validation, loo.test_train
    )
    assert not tight.refit and tight.model is tight.early_stopped
    assert "early stopping ended by the time budget after 1 epochs" in tight.note
    assert "no refit (auto;" in tight.note
    # neither patience nor the budget: the epoch cap, named as such
    capped = fit_with_refit(
        dataclasses.replace(cfg, max_epochs=2, patience=50), loo.val_train, validation, loo.test_train
    )
    assert capped.note.startswith("early stopping reached the cap of 2 epochs")
    with pytest.raises(ValueError, match="auto, always or never"):
        fit_with_refit(cfg, loo.val_train, validation, loo.test_train, refit="sometimes")


def test_early_stopping_keeps_room_for_the_refit_in_the_budget(monkeypatch):
    """With a refit to follow, no epoch starts unless the time left after it still covers a refit to it."""
    import ml.recommend.sasrec as sasrec_module

    clock = {"now": 0.0}
    monkeypatch.setattr(sasrec_module.time, "perf_counter", lambda: clock["now"])
    real_loss = sasrec_module.SASRec._backward_loss

    def one_second_a_batch(self, hidden, targets, weight):
        clock["now"] += 1.0
        return real_loss(self, hidden, targets, weight)

    monkeypatch.setattr(sasrec_module.SASRec, "_backward_loss", one_second_a_batch)
    seqs, _ = planted_store(n_users=64, seed=6)
    cfg = SASRecConfig(hidden=8, max_len=6, batch_size=64, max_epochs=50, patience=50, time_budget=20.0)
    plain = SASRec(cfg).fit(seqs, validation=(seqs.drop_last(1), seqs.last()))
    reserved = SASRec(cfg).fit(seqs, validation=(seqs.drop_last(1), seqs.last()), reserve_refit=True)
    # one batch an epoch, one second each (validation takes no time on this clock): after e epochs, another one
    # starts while e + 1 <= 20 alone, and while (e + 1) + (e + 1) <= 20 with room for a refit to it
    assert len(plain.config.history) == 20 and plain.stopped_by_budget_
    assert len(reserved.config.history) == 10 and reserved.stopped_by_budget_


def test_attributes_carry_evidence_to_items_no_one_has_bought():
    """Two worlds of ten items, each world with its own attribute; every customer stays in one world. Items 20
    and 21 were never bought but carry world A's and world B's attribute: with attributes, each world's customers
    rank their world's unbought item first; the plain model has nothing to tell them apart."""
    from ml.recommend.base import as_sequences

    rng = np.random.default_rng(0)
    seqs = [list((0 if u % 2 == 0 else 10) + rng.integers(0, 10, size=6)) for u in range(200)]
    codes = [0] * 10 + [1] * 10 + [0, 1]
    attributes = sp.csr_matrix((np.ones(22), (np.arange(22), codes)), shape=(22, 2))
    histories = as_sequences([[0, 1, 2], [10, 11, 12]], 22)
    margins = {}
    for use in (True, False):
        model = SASRec(
            hidden=16, max_len=6, batch_size=32, lr=0.01, dropout=0.0, emb_dropout=0.0, attributes=use
        ).fit(seqs, n_items=22, epochs=15, item_attributes=attributes)
        assert (model.net_.attr_emb is not None) == use
        logits = model._logits(histories)
        margins[use] = (logits[0, 20] - logits[0, 21], logits[1, 21] - logits[1, 20])
    assert min(margins[True]) > 1.0
    assert min(margins[True]) > 2 * max(abs(m) for m in margins[False])


def test_catalogue_attributes_and_a_warm_start_carry_attributes_by_name():
    from ml.recommend.coldstart import catalogue_attributes

    items = pd.DataFrame(
        {"sku": ["a", "b", "c", "a"], "category": ["x", "y", None, "x"], "brand": ["p", "", "q", "p"]}
    )
    matrix, names = catalogue_attributes(items, ["a", "b", "c", "new"])
    rows = {str(n): matrix[:, i].toarray().ravel().tolist() for i, n in enumerate(names)}
    # a missing or empty value is no attribute; an item outside the catalogue has none
    assert rows == {
        "category=x": [1, 0, 0, 0],
        "brand=p": [1, 0, 0, 0],
        "category=y": [0, 1, 0, 0],
        "brand=q": [0, 0, 1, 0],
    }
    assert catalogue_attributes(items[["sku"]], ["a"]) is None and catalogue_attributes(None, ["a"]) is None

    seqs = [[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1]]
    old = SASRec(hidden=8, max_len=4).fit(
        seqs, n_items=4, epochs=1, item_attributes=matrix, attribute_ids=names
    )
    # the new catalogue drops brand=p and lists its attributes in another order
    new_names = np.array(["brand=q", "category=y", "category=x", "brand=z"], dtype=object)
    new_matrix = sp.csr_matrix(np.eye(4, dtype=np.float32))
    new = SASRec(hidden=8, max_len=4).fit(
        seqs, n_items=4, epochs=0, init_from=old, item_attributes=new_matrix, attribute_ids=new_names
    )
    old_rows = dict(zip(names, old.net_.attr_emb.weight.detach(), strict=True))
    new_weight = new.net_.attr_emb.weight.detach()
    for i, name in enumerate(new_names[:3]):
        torch.testing.assert_close(new_weight[i], old_rows[name])
    assert not any(torch.equal(new_weight[3], w) for w in old_rows.values())


def test_read_sequence_file(tmp_path):
    path = tmp_path / "Tiny.txt"
    path.write_text("1 10 20 30\n2 20 30 40 10\n")
    seqs = read_sequence_file(path)
    assert len(seqs) == 2 and seqs.n_items == 4
    assert seqs.item_ids[seqs[1]].tolist() == [20, 30, 40, 10]
    prev, nxt = seqs.pairs()
    assert len(prev) == 5  # no pair crosses from user 1 to user 2


# ----------------------------------------------------------------------------------------------------- models
def test_every_model_beats_random_and_popularity(store):
    loo, _ = store
    rng = np.random.default_rng(1)
    random_ndcg = evaluate(
        lambda b: rng.random((len(b), N_ITEMS)), loo.test_train, loo.test_target, ks=(10,)
    )["NDCG@10"]
    pop = test_score(Popularity().fit(loo.test_train), loo)
    assert pop > random_ndcg
    sasrec = SASRec(
        hidden=32, max_len=20, emb_dropout=0.2, dropout=0.1, lr=3e-3, batch_size=64, patience=3, max_epochs=40
    )
    sasrec.fit(loo.val_train, validation=(loo.val_train, loo.val_target))
    sasrec_refit = SASRec(sasrec.config).fit(loo.test_train, epochs=sasrec.best_epoch_)
    groups = np.repeat(np.arange(N_CLUSTERS), PER_CLUSTER)
    content = ContentKNN(np.eye(N_CLUSTERS)[groups] + 0.01)
    models = {
        "itemknn": ItemKNN(shrink=10),
        "ease": EASE(lam=20),
        "transition": Transition(),
        "sasrec": sasrec_refit,
        "content": content,
        "blend": Blend([sasrec_refit, Transition()], [0.7, 0.3]),
    }
    scores = {}
    for name, model in models.items():
        if name != "sasrec":
            model.fit(loo.test_train)
        scores[name] = test_score(model, loo)
    for name, ndcg in scores.items():
        assert ndcg > max(random_ndcg, pop) * 1.2, (name, ndcg, pop, random_ndcg)
    # the planted signal is sequential: models that use the order must beat those that do not
    assert scores["transition"] > scores["itemknn"]
    assert scores["sasrec"] > scores["itemknn"]


def test_a_refit_replays_the_learning_rate_schedule_it_is_given():
    seqs = [[i % 7, (i + 1) % 7, (i + 3) % 7] for i in range(20)]
    model = SASRec(hidden=16, max_len=4, batch_size=8, lr=0.05).fit(
        seqs, n_items=7, epochs=4, lr_schedule=[0.01, 0.003]
    )
    assert [h["lr"] for h in model.config.history] == [0.01, 0.003, 0.003, 0.003]
    plain = SASRec(hidden=16, max_len=4, batch_size=8, lr=0.05).fit(seqs, n_items=7, epochs=2)
    assert [h["lr"] for h in plain.config.history] == [0.05, 0.05]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("bf16", [False, True])
def test_a_large_catalogues_loss_in_chunks_has_the_whole_losss_value_and_gradient(monkeypatch, bf16, fused):
    import ml.recommend.sasrec as sasrec_module

    seqs = [[i % 40, (i * 3 + 1) % 40, (i * 7 + 2) % 40, (i + 5) % 40] for i in range(30)]
    # items 0-29 carry one or two of five attributes, 30-39 none: the gradient reaches both tables
    rows = [i for i in range(30) for _ in range(1 + i % 2)]
    codes = [(i + k) % 5 for i in range(30) for k in range(1 + i % 2)]
    attributes = sp.csr_matrix((np.ones(len(rows)), (rows, codes)), shape=(40, 5))
    model = SASRec(hidden=16, max_len=4, batch_size=8, bf16=bf16, fused_loss=fused).fit(
        seqs, n_items=40, epochs=0, item_attributes=attributes
    )
    net = model.net_
    torch.manual_seed(0)
    hidden_in = torch.randn(23, 16)
    targets = torch.randint(0, 40, (23,))

    def run(chunk_logits):
        monkeypatch.setattr(sasrec_module, "LOSS_CHUNK_LOGITS", chunk_logits)
        net.zero_grad(set_to_none=True)
        leaf = hidden_in.clone().requires_grad_()
        hidden = (leaf * 2.0).tanh()  # a graph before the loss, as the blocks are
        loss = model._backward_loss(hidden, targets, net.item_table()[1:])
        return loss, torch.cat([net.item_emb.weight.grad, net.attr_emb.weight.grad]), leaf.grad

    whole_loss, whole_grad, whole_input_grad = run(2**27)
    chunked_loss, chunked_grad, chunked_input_grad = run(40 * 5)  # 5 positions a chunk: 5 chunks for 23
    assert whole_input_grad.abs().sum() > 0 and whole_grad[-5:].abs().sum() > 0
    torch.testing.assert_close(chunked_input_grad, whole_input_grad, rtol=1e-5, atol=1e-6)
    assert chunked_loss == pytest.approx(whole_loss, rel=1e-2 if bf16 else 1e-6)
    assert whole_grad.abs().sum() > 0
    torch.testing.assert_close(
        chunked_grad, whole_grad, rtol=2e-2 if bf16 else 1e-5, atol=1e-3 if bf16 else 1e-7
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_hand_written_catalogue_cross_entropy_matches_autograds(dtype):
    from torch.nn import functional as F

    from ml.recommend.sasrec import _CatalogueCrossEntropy

    torch.manual_seed(0)
    hidden = torch.randn(50, 16, requires_grad=True)
    weight = torch.randn(300, 16, requires_grad=True)
    targets = torch.randint(0, 300, (50,))
    reference = F.cross_entropy(hidden @ weight.T, targets, reduction="sum")
    ref_grads = torch.autograd.grad(reference * 0.5, (hidden, weight))
    loss = _CatalogueCrossEntropy.apply(hidden, weight, targets, dtype)
    grads = torch.autograd.grad(loss * 0.5, (hidden, weight))
    exact = dtype == torch.float32
    assert float(loss) == pytest.approx(float(reference), rel=1e-6 if exact else 2e-2)
    for got, want in zip(grads, ref_grads, strict=True):
        assert got.shape == want.shape and got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-5 if exact else 5e-2, atol=1e-5 if exact else 5e-2)
    # bfloat16 rounds, but the gradient still points the same way as the exact one
    cosine = F.cosine_similarity(grads[1].flatten(), ref_grads[1].flatten(), dim=0)
    assert float(cosine) > 0.999


def test_itemknn_in_row_blocks_keeps_each_items_neighbours(monkeypatch):
    import ml.recommend.baselines as baselines
    from ml.recommend import ItemKNN

    rng = np.random.default_rng(4)
    seqs = [rng.choice(60, size=int(rng.integers(2, 9)), replace=False).tolist() for _ in range(300)]
    whole = {k: ItemKNN(shrink=5.0, neighbours=k).fit(seqs, n_items=60).sim_ for k in (None, 100, 7)}
    monkeypatch.setattr(baselines, "CO_OCCURRENCE_BLOCK", 500)
    from ml.blocks import consecutive_blocks

    blocks = consecutive_blocks(np.full(60, 100.0), 500)
    assert blocks[0][0] == 0 and blocks[-1][1] == 60 and len(blocks) >= 12
    assert all(b[1] == a[0] for b, a in zip(blocks, blocks[1:], strict=False))
    assert all(100 * (last - first) <= 500 for first, last in blocks)
    assert consecutive_blocks(np.array([10.0, 900.0, 10.0]), 500) == [(0, 1), (1, 2), (2, 3)]
    for k, expected in whole.items():
        blocked = ItemKNN(shrink=5.0, neighbours=k).fit(seqs, n_items=60).sim_
        if k != 7:  # no neighbour cut, or none that bites: the same matrix
            np.testing.assert_allclose(blocked.toarray(), expected.toarray(), rtol=1e-6)
            continue
        # with a cut, ties at the k-th value may keep other items: the kept values per item are the same
        assert blocked.nnz == expected.nnz
        for item in range(60):
            np.testing.assert_allclose(
                np.sort(blocked.getrow(item).data), np.sort(expected.getrow(item).data), rtol=1e-6
            )


def test_transformer_overfits_a_tiny_dataset():
    rng = np.random.default_rng(0)
    perm = rng.permutation(30)
    seqs = [
        [int(perm[(s + k) % 30]) for k in range(int(n))]
        for s, n in zip(range(30), rng.integers(4, 10, size=30), strict=True)
    ]
    model = SASRec(
        hidden=32,
        max_len=16,
        emb_dropout=0.0,
        dropout=0.0,
        weight_decay=0.0,
        lr=1e-2,
        batch_size=8,
        max_epochs=60,
    )
    model.fit(seqs, n_items=30)
    assert model.config.history[-1]["loss"] < 0.05
    top, _ = model.topk(histories=[s[:-1] for s in seqs], k=1, exclude_seen=False)
    assert top[:, 0].tolist() == [s[-1] for s in seqs]


def test_transformer_training_is_reproducible(store):
    loo, _ = store
    small = loo.val_train.subset(np.arange(80))

    def fit():
        return SASRec(hidden=16, max_len=10, max_epochs=2, seed=7).fit(small).score(histories=small)

    np.testing.assert_array_equal(fit(), fit())


def test_topk_never_returns_excluded_items(store):
    loo, _ = store
    hist = loo.test_train.subset(np.arange(50))
    banned = np.array([0, 5, 17])
    for model in (Popularity(), Transition(), ItemKNN()):
        model.fit(loo.test_train)
        items, scores = model.topk(histories=hist, k=N_ITEMS, exclude=banned)
        for u in range(len(hist)):
            got = set(items[u][items[u] >= 0].tolist())
            assert not got & set(hist[u].tolist())
            assert not got & set(banned.tolist())
            # everything not excluded is returned, the rest is padding
            assert len(got) == N_ITEMS - len(set(hist[u].tolist()) | set(banned.tolist()))
            assert np.all(np.isneginf(scores[u][items[u] < 0]))


def test_frame_interface_and_raw_ids():
    df = pd.DataFrame(
        {
            "user": [1, 1, 1, 2, 2, 3, 3],
            "item": ["a", "b", "c", "a", "b", "b", "c"],
            "ts": [1, 2, 3, 1, 2, 1, 2],
        }
    )
    model = Transition().fit(df)
    items, _ = model.topk(users=[2], k=1)
    assert model.item_ids_[items[0, 0]] == "c"  # b is followed by c, a is already bought
    # a user the model has never seen gets a (popularity) list and raw-id histories work too
    assert model.topk(users=[99], k=2)[0].shape == (1, 2)
    assert model.item_ids_[model.topk(histories=[["a"]], k=1)[0][0, 0]] == "b"


def test_time_decayed_popularity_prefers_recent_sales():
    df = pd.DataFrame(
        {"user": [1, 2, 3, 4], "item": ["old", "old", "old", "new"], "ts": [0.0, 0.0, 0.0, 100.0]}
    )
    plain = Popularity().fit(df)
    decayed = Popularity(half_life=10.0).fit(df)
    assert plain.item_ids_[plain.topk(users=[9], k=1)[0][0, 0]] == "old"
    assert decayed.item_ids_[decayed.topk(users=[9], k=1)[0][0, 0]] == "new"


# ----------------------------------------------------------------------------------------------------- cold start
def test_segment_popularity_beats_global_popularity_for_new_users(store):
    loo, clusters = store
    segments = pd.Series(clusters, index=loo.test_train.user_ids)
    # users 0..299 are known; users 300.. arrive with no history and only a segment
    known = np.arange(300)
    new = np.arange(300, len(clusters))
    train = loo.test_train.subset(known)
    targets = loo.test_target[new]
    empty = Sequences.from_lists([[] for _ in new], N_ITEMS, loo.test_train.user_ids[new])
    seg = SegmentPopularity(segments, shrink=20).fit(train)
    glob = Popularity().fit(train)
    ndcg = {
        name: metrics_from_ranks(target_ranks(m.score(histories=empty), targets), ks=(10,))["NDCG@10"]
        for name, m in {"segment": seg, "global": glob}.items()
    }
    assert ndcg["segment"] > 1.5 * ndcg["global"]


def test_content_scores_reach_items_the_collaborative_model_never_saw(store):
    loo, _ = store
    cold = np.arange(0, N_ITEMS, 6)  # two new items per cluster
    groups = np.repeat(np.arange(N_CLUSTERS), PER_CLUSTER)
    mapping = {i: [f"cluster{groups[i]}", f"item{i}"] for i in range(N_ITEMS)}
    feats = attribute_matrix(mapping, np.arange(N_ITEMS))
    cf = ItemKNN(shrink=10).fit(loo.test_train.without_items(cold))
    content = ContentKNN(feats).fit(loo.test_train)
    blend = Blend([cf, content], [0.5, 0.5], prefit=True).fit(loo.test_train)
    is_cold = np.isin(loo.test_target, cold)
    hist = loo.test_train

    def cold_ndcg(model):
        ranks = target_ranks(model.score(histories=hist), loo.test_target, hist)
        return metrics_from_ranks(ranks[is_cold], ks=(10,))["NDCG@10"]

    assert cold_ndcg(cf) < 0.05  # new items score zero: pessimistic ties put them last
    assert cold_ndcg(blend) > 0.15 and cold_ndcg(content) > 0.15


def test_text_features_align_with_items():
    f = text_features(["red lipstick matte", "blue nail polish", "matte red lip liner"])
    sims = ContentKNN(f).fit([[0], [1], [2]], n_items=3).score(histories=[[0]])[0]
    assert sims[2] > sims[1]


# ----------------------------------------------------------------------------------------------------- benchmark
def test_benchmark_runs_end_to_end(tmp_path, store):
    from bench import recsys

    loo, _ = store
    seqs, _ = planted_store(n_users=150, seed=3)
    data = tmp_path / "Tiny.txt"
    data.write_text("".join(f"{u + 1} {' '.join(str(i + 1) for i in seqs[u])}\n" for u in range(len(seqs))))
    groups = np.repeat(np.arange(N_CLUSTERS), PER_CLUSTER)
    (tmp_path / "Tiny_item2attributes.json").write_text(
        json.dumps({str(i + 1): [int(groups[i])] for i in range(N_ITEMS)})
    )
    out = tmp_path / "res.json"
    recsys.main(["--data", str(data), "--out", str(out), "--fast", "--threads", "1", "--time-budget", "30"])
    res = json.loads(out.read_text())
    assert res["dataset"] == "Tiny.txt" and res["protocol"] == "loo_full_ranking"
    assert {"machine", "date"} <= set(res)
    assert set(res["models"]) == set(recsys.ALL_MODELS)
    keys = {
        "HR@5",
        "NDCG@5",
        "HR@10",
        "NDCG@10",
        "HR@20",
        "NDCG@20",
        "train_seconds",
        "score_seconds",
        "params",
    }
    for name, row in res["models"].items():
        assert keys <= set(row), name
        assert 0.0 <= row["NDCG@10"] <= row["HR@10"] <= row["HR@20"] <= 1.0
    assert res["models"]["transition"]["NDCG@10"] > res["models"]["popularity"]["NDCG@10"]
    assert "blend" in res["cold_start"]
    sasrec = res["models"]["sasrec"]["params"]
    # every user validates; how early stopping ended and whether the refit ran are in the output
    assert sasrec["validation_users"] == 150
    assert re.match(
        r"early stopping (ended by (patience|the time budget)|reached the cap of 3 epochs)",
        sasrec["refit_note"],
    )
    assert ("refit on all the data" in sasrec["refit_note"]) == sasrec["refit"]
    # the attribute file beside the data feeds the Transformer's item inputs too
    assert sasrec["item_attributes_used"] == N_CLUSTERS


def test_validation_search_scores_each_configuration_on_each_file(tmp_path):
    from bench import recsys_search

    files = []
    groups = np.repeat(np.arange(N_CLUSTERS), PER_CLUSTER)
    for k, n_users in enumerate((120, 100)):
        seqs, _ = planted_store(n_users=n_users, seed=k)
        files.append(tmp_path / f"Tiny{k}.txt")
        files[-1].write_text(
            "".join(f"{u + 1} {' '.join(str(i + 1) for i in seqs[u])}\n" for u in range(len(seqs)))
        )
    # only the first file has attributes
    (tmp_path / "Tiny0_item2attributes.json").write_text(
        json.dumps({str(i + 1): [int(groups[i])] for i in range(N_ITEMS)})
    )
    out = tmp_path / "search.json"
    configs = ['{"hidden": 8, "max_epochs": 3}', '{"hidden": 8, "max_epochs": 3, "attributes": false}']
    args = ["--out", str(out), "--threads", "1", "--time-budget", "0.5"]
    recsys_search.main(
        [a for f in files for a in ("--data", str(f))] + [a for c in configs for a in ("--config", c)] + args
    )
    res = json.loads(out.read_text())
    assert res["command"].startswith("python -m bench.recsys_search --data") and "date" in res
    assert [(r["data"], r["item_attributes"], r["config"].get("attributes", True)) for r in res["runs"]] == [
        ("Tiny0", True, True),
        ("Tiny0", True, False),
        ("Tiny1", False, True),
        ("Tiny1", False, False),
    ]
    for run in res["runs"]:
        assert run["epochs"] == len(run["val_curve"]) <= 3
        assert run["val_NDCG@10"] == max(run["val_curve"]) > 0
        assert run["val_curve"][run["best_epoch"] - 1] == run["val_NDCG@10"]
        # the whole run: early stopping plus a refit to the best epoch at the mean seconds per epoch
        projected = run["early_stopping_seconds"] + run["best_epoch"] * run["train_seconds_per_epoch"]
        assert run["projected_seconds_with_refit"] == pytest.approx(projected, abs=0.2)
        assert run["fits_budget"] == (run["projected_seconds_with_refit"] <= 0.5)
    means = res["mean_val_NDCG@10"]
    assert len(means) == 2 and all(m["files"] == 2 for m in means)
    assert means[0]["mean"] >= means[1]["mean"]
    for m in means:
        runs = [r["val_NDCG@10"] for r in res["runs"] if r["config"] == m["config"]]
        assert m["mean"] == pytest.approx(np.mean(runs), abs=1e-5)
    with pytest.raises(SystemExit) as exc:
        recsys_search.main(["--help"])
    assert exc.value.code == 0


def test_benchmark_help(capsys):
    from bench import recsys

    with pytest.raises(SystemExit) as exc:
        recsys.parse_args(["--help"])
    assert exc.value.code == 0
    assert "--time-budget" in capsys.readouterr().out


def test_epoch_timing_compares_before_and_after_on_each_size(tmp_path):
    from bench import recsys_epochs

    files = []
    for k, n_users in enumerate((120, 100)):
        seqs, _ = planted_store(n_users=n_users, seed=k)
        files.append(tmp_path / f"Tiny{k}.txt")
        files[-1].write_text(
            "".join(f"{u + 1} {' '.join(str(i + 1) for i in seqs[u])}\n" for u in range(len(seqs)))
        )
    out = tmp_path / "epochs.json"
    args = ["--out", str(out), "--threads", "1", "--epochs", "1", "--best-epoch", "4", "--time-budget", "60"]
    recsys_epochs.main([a for f in files for a in ("--data", str(f))] + args)
    res = json.loads(out.read_text())
    assert res["command"].startswith("python -m bench.recsys_epochs --data") and "date" in res
    sizes = [(row["data"], row["users"]) for row in res["data_sets"]]
    # half of the first file, each file, and both together with their catalogues apart
    assert sizes == [("Tiny0 (half the users)", 60), ("Tiny0", 120), ("Tiny1", 100), ("Tiny0 + Tiny1", 220)]
    both = res["data_sets"][-1]
    assert both["items"] == 2 * N_ITEMS and both["interactions"] == sum(
        r["interactions"] for r in res["data_sets"][1:3]
    )
    for row in res["data_sets"]:
        before, after = row["before"], row["after"]
        assert before["loss"] == "autograd" and after["loss"] == "hand-written backward"
        # the same data either way (all but the validation items); every user validates below the cap
        assert before["validation_users"] == after["validation_users"] == row["users"]
        assert after["positions_per_epoch"] == before["positions_per_epoch"] > 0
        # a full run: best epoch 4 plus the patience of 5, then the refit of 4 epochs
        for way in (before, after):
            assert way["full_run"]["epochs"] == 9
            assert way["full_run"]["refit_seconds"] == round(4 * way["train_seconds_per_epoch"])
        assert row["train_speedup"] == round(
            before["train_seconds_per_epoch"] / after["train_seconds_per_epoch"], 2
        )
    with pytest.raises(SystemExit) as exc:
        recsys_epochs.main(["--help"])
    assert exc.value.code == 0


def test_seed_summary_gives_mean_spread_and_each_seeds_value(tmp_path, capsys):
    from bench import recsys_seeds

    def result(seed: int, sasrec: float, ease: float, dataset: str = "Beauty.txt") -> dict:
        return {
            "dataset": dataset,
            "command": f"python -m bench.recsys --seed {seed}",
            "models": {
                "ease": {"NDCG@10": ease, "HR@10": 2 * ease, "params": {}},
                "sasrec": {
                    "NDCG@10": sasrec,
                    "HR@10": 2 * sasrec,
                    "params": {"seed": seed, "best_epoch": 20 + seed, "refit": seed == 0},
                },
            },
        }

    files = []
    for i, row in enumerate(
        [result(2, 0.06, 0.04), result(0, 0.05, 0.04), result(1, 0.07, 0.04), result(0, 0.1, 0.2, "Toys.txt")]
    ):
        files.append(tmp_path / f"r{i}.json")
        files[-1].write_text(json.dumps(row))
    assert recsys_seeds.main([*map(str, files), "--out", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    beauty = summary["Beauty.txt"]
    assert beauty["seeds"] == [0, 1, 2]
    assert beauty["models"]["sasrec"]["NDCG@10"] == {"values": [0.05, 0.07, 0.06], "mean": 0.06, "std": 0.01}
    assert beauty["models"]["ease"]["HR@10"]["std"] == 0.0
    assert beauty["models"]["sasrec"]["best_epoch"] == [20, 21, 22]
    assert beauty["models"]["sasrec"]["refit"] == [True, False, False]
    assert summary["Toys.txt"]["models"]["sasrec"]["NDCG@10"]["std"] is None  # one seed: no spread
    printed = capsys.readouterr().out
    assert "| sasrec | 0.0600 ± 0.0100 | 0.0500 / 0.0700 / 0.0600 |" in printed
    with pytest.raises(SystemExit) as exc:
        recsys_seeds.main(["--help"])
    assert exc.value.code == 0


def test_last_position_inference_matches_the_full_forward(store):
    loo, _ = store
    model = SASRec(hidden=16, max_len=12, n_blocks=2, max_epochs=1, seed=3).fit(loo.val_train)
    net = model.net_.eval()
    seq = torch.tensor([[5, 9, 2, 0, 0], [1, 2, 3, 4, 7], [8, 0, 0, 0, 0]])
    lens = torch.tensor([3, 5, 1])
    with torch.no_grad():
        full = net(seq)[torch.arange(3), lens - 1]
        fast = net.last_hidden(seq, lens)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_batched_topk_matches_topk_and_excludes_history(store):
    from ml.recommend import batched_topk

    loo, _ = store
    hist = loo.test_train
    for model in (EASE(lam=20).fit(hist), SASRec(hidden=16, max_len=10, max_epochs=1).fit(hist)):
        fast_items, fast_scores = batched_topk(model, hist, k=15, batch_size=64)
        slow_items, slow_scores = model.topk(histories=hist, k=15)
        # SASRec serves logits and scores log-probabilities: equal up to a constant per user
        shift = lambda x: x - x[:, :1]  # noqa: E731
        np.testing.assert_allclose(shift(fast_scores), shift(slow_scores), rtol=1e-4, atol=1e-4)
        assert (fast_items == slow_items).mean() > 0.99  # identical up to float ties
        for u in range(len(hist)):
            assert not np.isin(fast_items[u], hist[u]).any()


def test_throughput_mode_runs_and_never_lists_history(tmp_path):
    from bench import recsys

    out = tmp_path / "tp.json"
    args = ["--throughput", "--users", "300", "--items", "100", "--k", "20", "--batch-size", "128"]
    recsys.main([*args, "--out", str(out), "--threads", "1"])
    res = json.loads(out.read_text())
    for name in ("ease", "sasrec"):
        row = res["models"][name]
        assert row["users"] == 300 and row["k"] == 20
        assert row["users_per_second"] > 0 and row["history_items_in_lists"] == 0
