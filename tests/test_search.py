"""Product search: the verified encoder, BM25 with spelling correction, the hybrid ranking, personalisation that
reorders only what matches, filtering and explanations; the relevance set and the benchmark's measures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.search.encoder import EncoderWeightsError, load_encoder, model_dir, verify_weights
from ml.search.lexical import LexicalIndex, fold, tokens
from ml.search.ranker import (
    DEFAULT_FUSION,
    Fusion,
    ProductSearch,
    QueryError,
    Shopper,
    check_query,
    product_text,
)

CATALOGUE = pd.DataFrame(
    {
        "sku": ["pan1", "pan2", "pot1", "boot1", "shoe1", "candle1", "kettle1"],
        "title": [
            "Lumora Non-Stick Frying Pan",
            "Oakly Cast Iron Frying Pan",
            "Oakly Stainless Steel Saucepan",
            "Runa Waterproof Boots",
            "Zeta Cushioned Running Shoes",
            "Lumora Scented Candle",
            "Velix Electric Kettle",
        ],
        "description": [
            "A frying pan for everyday cooking, non-stick and dishwasher-safe.",
            "A heavy frying pan for home cooking, cast iron.",
            "A saucepan for soups and sauces.",
            "Boots that keep your feet dry in the rain.",
            "Shoes for running and training.",
            "A candle with a calm scent for a cosy room.",
            "A kettle that boils water fast.",
        ],
        "category": ["kitchen", "kitchen", "kitchen", "footwear", "footwear", "home_decor", "kitchen"],
        "brand": ["Lumora", "Oakly", "Oakly", "Runa", "Zeta", "Lumora", "Velix"],
        "price": [20.0, 35.0, 30.0, 60.0, 70.0, 10.0, 25.0],
        "price_band": ["low", "mid", "mid", "high", "high", "low", "low"],
        "in_stock": [True, True, True, True, False, True, True],
    }
)


@pytest.fixture(scope="module")
def encoder():
    return load_encoder()


@pytest.fixture(scope="module")
def search(encoder):
    return ProductSearch(CATALOGUE, encoder.encode(product_text(CATALOGUE)), encoder.encode)


def test_the_encoder_weights_are_the_published_file_and_another_file_is_refused(tmp_path, encoder):
    assert verify_weights(model_dir()) == encoder.weights_sha256
    assert encoder.describe()["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    (tmp_path / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(EncoderWeightsError, match="refusing to load"):
        verify_weights(tmp_path)
    with pytest.raises(EncoderWeightsError, match="no model.safetensors"):
        verify_weights(tmp_path / "missing")
    vectors = encoder.encode(["frying pan", "skillet", "waterproof boots"])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # meaning, not letters: a skillet is closer to a frying pan than to boots
    assert vectors[0] @ vectors[1] > vectors[2] @ vectors[1]


def test_tokens_fold_plurals_split_hyphens_and_drop_stop_words():
    assert tokens("The Non-Stick Pans for boxes and glasses") == [
        "non-stick",
        "non",
        "stick",
        "pan",
        "box",
        "glass",
    ]
    assert fold("dress") == "dress" and fold("bus") == "bus" and fold("batteries") == "battery"


def test_an_unknown_term_is_read_as_the_catalogues_term_one_edit_away():
    index = LexicalIndex(product_text(CATALOGUE))
    assert index.query_terms("fryng pna") == ["frying", "pna"]  # short terms are never corrected
    scores = index.scores("waterprof boots")
    assert int(np.argmax(scores)) == 3 and index.matched_terms(index.query_terms("waterprof boots"), 3) == [
        "waterproof",
        "boot",
    ]
    assert index.scores("zzzz").max() == 0.0


def test_queries_that_cannot_be_searched_say_why():
    with pytest.raises(QueryError, match="empty"):
        check_query("   ")
    with pytest.raises(QueryError, match="no letter or digit"):
        check_query("?!*")
    with pytest.raises(QueryError, match="at most 200"):
        check_query("pan " * 60)
    assert check_query("  frying pan ") == "frying pan"
    with pytest.raises(ValueError, match="unknown fusion"):
        Fusion("max")


def test_hybrid_search_finds_paraphrases_filters_out_of_stock_and_explains(search):
    # "skillet" is in no product's text: only the encoder can find the pans
    found = search.search("skillet", k=3)
    assert set(found["sku"].head(2)) == {"pan1", "pan2"}
    assert found["matched_terms"].iloc[0] == [] and "close in meaning" in found["reason"].iloc[0]
    running = search.search("running shoes", k=7)
    assert "shoe1" not in set(running["sku"])  # out of stock: never returned
    boots = search.search("waterproof boots", k=2)
    assert boots["sku"].iloc[0] == "boot1" and boots["reason"].iloc[0].startswith("matches waterproof, boot")
    assert list(boots["rank"]) == [1, 2] and (boots["personal"] == 0).all()


def test_personalisation_reorders_what_matches_and_cannot_lift_what_does_not(search):
    anonymous = search.search("frying pan", k=7)
    assert anonymous["sku"].iloc[0] == "pan1"
    shopper = Shopper("c1", {"kitchen": 0.7, "home_decor": 0.3}, "mid", frozenset({"pan2"}))
    personal = search.search("frying pan", k=7, shopper=shopper)
    # the cast-iron pan is in the customer's price band and was viewed: it moves to the top
    assert personal["sku"].iloc[0] == "pan2"
    top = personal.iloc[0]
    assert "you viewed it recently" in top["reason"] and "in your usual price band (mid)" in top["reason"]
    assert top["score"] == pytest.approx(top["relevance"] * (1 + 0.2 * top["personal"]), abs=1e-3)
    # the candle matches nothing of the query: the profile's home decor share cannot put it above a pan
    ranks = dict(zip(personal["sku"], personal["rank"], strict=True))
    assert ranks.get("candle1", 99) > max(ranks["pan1"], ranks["pan2"])


def test_rank_uses_the_fusion_it_is_given(search):
    signals = search.signals("kettle")
    lexical_only = search.ranked(*signals, k=1, fusion=Fusion("convex", lexical_weight=1.0))
    assert search.skus[lexical_only[0]] == "kettle1"
    rrf = search.ranked(*signals, k=1, fusion=Fusion("rrf", rrf_k=60))
    assert search.skus[rrf[0]] == "kettle1"
    assert DEFAULT_FUSION.method == "convex" and 0 < DEFAULT_FUSION.lexical_weight < 1


# --------------------------------------------------------------------------------------------- benchmark
def test_ndcg_mrr_and_the_paired_test_by_hand():
    from bench import paired_test
    from bench.search import ndcg_at, reciprocal_rank

    judged = {"a": 3, "b": 1}
    assert ndcg_at(["a", "b"], judged) == pytest.approx(1.0)
    swapped = (1 / np.log2(2)) / (7 / np.log2(2) + 1 / np.log2(3)) + (7 / np.log2(3)) / (7 + 1 / np.log2(3))
    assert ndcg_at(["b", "a"], judged) == pytest.approx(swapped)
    assert reciprocal_rank(["x", "y", "b"], judged) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"], judged) == 0.0
    same = paired_test(np.array([0.5, 0.6, 0.7]), np.array([0.5, 0.6, 0.7]))
    assert same["mean_difference"] == 0 and same["p_value"] == 1.0
    better = paired_test(np.ones(30), np.zeros(30))
    assert better["mean_difference"] == 1.0 and better["p_value"] < 0.001 and better["ci95"] == [1.0, 1.0]


def test_the_relevance_set_is_judged_from_the_catalogue_truth(tmp_path):
    from bench.search import read_qrels, read_queries
    from bench.search_set import KINDS, SYNONYMS, main

    assert main(["--scale", "small", "--per-kind", "6", "--out-dir", str(tmp_path)]) == 0
    corpus = {d["id"]: d for d in map(json.loads, (tmp_path / "corpus.jsonl").read_text().splitlines())}
    assert len(corpus) == 500
    validation, test = (
        read_queries(tmp_path / "queries_validation.tsv"),
        read_queries(tmp_path / "queries_test.tsv"),
    )
    assert not set(validation) & set(test)
    kinds = read_queries(tmp_path / "kinds.tsv")
    assert set(kinds.values()) == set(KINDS) and set(kinds) == set(validation) | set(test)
    qrels = read_qrels(tmp_path / "qrels_validation.txt") | read_qrels(tmp_path / "qrels_test.txt")
    queries = validation | test
    for qid, text in queries.items():
        grades = qrels[qid]
        best = [corpus[doc] for doc, g in grades.items() if g == max(grades.values())]
        words = (best[0]["title"] + " " + best[0]["text"]).lower()
        if kinds[qid] in ("noun", "attribute_noun"):
            assert all(w in words for w in text.split()), (text, best[0])
        if kinds[qid] == "synonym":
            # the paraphrase the query ends with is never in the text of what it should find
            assert any(text.endswith(s) and s not in words for s in SYNONYMS.values()), (text, best[0])
        if kinds[qid] == "brand_need":
            assert best[0]["title"].split()[0] == text.split()[0]
    assert all(s not in " ".join(d["text"].lower() for d in corpus.values()) for s in SYNONYMS.values())


def test_the_benchmark_scores_methods_chooses_a_fusion_and_times_searches(tmp_path):
    from bench.search import main

    docs = [
        {"id": r.sku, "title": r.title, "text": f"{r.description} {r.category} {r.brand}"}
        for r in CATALOGUE.itertuples()
    ]
    (tmp_path / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (tmp_path / "q.tsv").write_text("q1\tskillet\nq2\twaterproof boots\nq3\tkettle\n")
    (tmp_path / "qrels.txt").write_text(
        "q1 0 pan1 2\nq1 0 pan2 2\nq2 0 boot1 3\nq3 0 kettle1 2\nq3 0 pot1 1\n"
    )
    out = main(
        [
            "--corpus", str(tmp_path / "corpus.jsonl"),
            "--queries", str(tmp_path / "q.tsv"),
            "--qrels", str(tmp_path / "qrels.txt"),
            "--choose-fusion",
            "--out", str(tmp_path / "r.json"),
        ]
    )  # fmt: skip
    assert out["queries"] == 3 and json.loads((tmp_path / "r.json").read_text())["queries"] == 3
    assert {"lexical", "dense", "hybrid convex(w=0.4)", "hybrid rrf(k=60)"} <= set(out["methods"])
    # BM25 cannot find the skillet: its nDCG is at most 2/3; the chosen fusion is at least as good as BM25
    assert out["methods"]["lexical"]["ndcg@10"] < 0.7
    chosen = out["methods"]["hybrid " + out["chosen_fusion"]]["ndcg@10"]
    assert chosen >= out["methods"]["lexical"]["ndcg@10"] and chosen > 0.9
    timed = main(
        ["--corpus", str(tmp_path / "corpus.jsonl"), "--latency", "30", "--out", str(tmp_path / "t.json")]
    )
    assert timed["queries"] == 30 and 0 < timed["latency_ms"]["p50"] <= timed["latency_ms"]["p95"]
    with pytest.raises(SystemExit):
        main(["--corpus", str(tmp_path / "corpus.jsonl"), "--out", str(tmp_path / "x.json")])


# ------------------------------------------------------------------------------------------ category pages
def _page_products():
    rows = []
    for i in range(12):
        rows.append(
            {
                "sku": f"k{i:02d}",
                "title": f"Kitchen thing {i}",
                "category": "kitchen",
                "brand": "Alpha" if i < 6 else ("Beta" if i < 9 else "Gamma"),
                "price_band": "low" if i % 2 else "high",
                "views_30d": 100 + 10 * i,
                "purchases_30d": 12 - i,
                "velocity_7d": float(12 - i),
                "novelty_days": 5 if i == 11 else 200,
                "on_hand": 0 if i == 1 else 50,
                "days_of_cover": 30.0,
            }
        )
    return pd.DataFrame(rows)


def test_category_pages_leave_out_what_is_out_of_stock_mix_brands_and_follow_the_segment():
    from ml.search.category_pages import rank_pages

    products = _page_products()
    brands = pd.DataFrame(
        {"segment_id": [0, 0, 7], "key": ["Alpha", "Beta", "Gamma"], "share": [0.3, 0.3, 0.9]}
    )
    bands = pd.DataFrame({"segment_id": [0, 0, 7], "key": ["low", "high", "low"], "share": [0.5, 0.5, 1.0]})
    pages = rank_pages(products, brands, bands)
    default = pages[pages["segment_id"] == 0].sort_values("rank")
    assert "k01" not in set(pages["sku"])  # out of stock
    assert len(default) == 11 and default["rank"].tolist() == list(range(1, 12))
    # Alpha holds the six best sellers, yet the diversity discount lets another brand into the top three
    assert default.head(3)["brand"].nunique() >= 2
    assert default["score"].is_monotonic_decreasing
    # segment 7 favours Gamma and low prices: Gamma's products rank higher there than on the default page
    seg7 = pages[pages["segment_id"] == 7].set_index("sku")["rank"]
    gamma = products.loc[products["brand"] == "Gamma", "sku"]
    assert (seg7[gamma] < default.set_index("sku")["rank"][gamma]).all()
    # the product launched five days ago is the category's only new one: full "new" signal and said so
    new = pages[(pages["sku"] == "k11") & (pages["segment_id"] == 0)].iloc[0]
    assert new["new"] == 1.0 and "new and catching on" in new["reason"]
    assert (pages.loc[pages["sku"] != "k11", "new"] == 0).all()


def test_category_pages_without_any_segment_tastes():
    """A shop whose customers have no brand or price-band preferences yet (or whose columns come as Arrow
    strings) still gets its pages, ordered by hot and new alone."""
    from ml.search.category_pages import rank_pages

    products = _page_products().astype({"brand": "string[pyarrow]", "price_band": "string[pyarrow]"})
    none = pd.DataFrame(columns=["segment_id", "key", "share"])
    pages = rank_pages(products, none, none)
    assert set(pages["segment_id"]) == {0} and len(pages) == 11 and (pages["relevant"] == 0).all()
    assert pages.iloc[0]["sku"] == "k00"  # the best seller, unchanged by any taste
    brands = pd.DataFrame({"segment_id": [3], "key": ["Alpha"], "share": [1.0]})
    sold_out = rank_pages(products.assign(on_hand=0), brands, none)
    assert sold_out.empty and list(sold_out.columns)[:5] == [
        "category",
        "ordering",
        "segment_id",
        "rank",
        "sku",
    ]
    # a source without stock data (NULL on hand) hides nothing; one without categories has no pages
    unknown_stock = rank_pages(products.assign(on_hand=None), none, none)
    assert len(unknown_stock) == 12
    assert rank_pages(products.assign(category=None), none, none).empty


def test_the_control_arm_sees_the_bestsellers_of_each_category_and_half_the_customers_are_in_it():
    from ml.search.category_pages import PAGE_COLUMNS, bestseller_pages, page_arms, personalise

    products = _page_products()
    products.loc[products["sku"] == "k05", "velocity_7d"] = 99.0  # this week's best seller
    products.loc[products["sku"] == "k03", "velocity_7d"] = None  # never sold this week
    best = bestseller_pages(products, page_size=10)
    assert list(best.columns) == PAGE_COLUMNS and set(best["ordering"]) == {"bestsellers"}
    # by units sold this week, stock not considered (k01 has none on hand and stays); the unsold one last
    assert best["sku"].tolist() == ["k05", "k00", "k01", "k02", "k04", "k06", "k07", "k08", "k09", "k10"]
    assert best["rank"].tolist() == list(range(1, 11)) and (best["segment_id"] == 0).all()
    assert bestseller_pages(products.iloc[:0]).empty
    # the split is stable, hashed, independent of the recommender's and about half
    ids = [f"C{i:06d}" for i in range(4000)]
    split = page_arms(ids)
    assert (split == page_arms(ids)).all() and 0.46 < (split == "control").mean() < 0.54
    from ml.recommend.experiment import arms

    assert (split != arms(ids)).mean() > 0.3
    # personalising raises what matches the shopper, within each page
    page = pd.DataFrame(
        {"session": [0, 0, 0, 1, 1], "rank": [1, 2, 3, 1, 2], "score": [1.0, 0.95, 0.5, 1, 0.99]}
    )
    out = personalise(
        page, [False, True, False, False, False], [False, False, True, False, True], by=["session"]
    )
    assert out["score"].round(4).tolist() == [1.045, 1.0, 0.55, 1.089, 1.0]
    assert out["rank"].tolist() == [1, 2, 3, 1, 2]
