"""Build a product-search relevance set from the simulated catalogue, where the truth is known.

    python -m bench.search_set --scale medium --out-dir bench/data/search_medium

No public product-search relevance set with a clear licence is available here, so the queries and judgements come
from the simulator's catalogue: every product was generated from a category, a product noun, three attribute
words, an adjective and a brand, so what a query asks for and which products satisfy it is known exactly. Queries
of seven kinds are drawn by the seed:

- ``category``: the category's words ("home decor");
- ``noun``: a product noun ("frying pan");
- ``attribute_noun``: an attribute and a noun ("non-stick frying pan");
- ``attribute``: an attribute alone ("waterproof"), which several categories share;
- ``synonym``: a paraphrase the catalogue never uses ("skillet", "sneakers", "diapers"), alone or with an
  attribute;
- ``misspelling``: a noun, or an attribute and a noun, with one letter dropped, doubled or swapped;
- ``brand_need``: a brand and the need its category serves ("Lumora for home cooking").

Graded judgements (TREC qrels, ``query_id 0 doc_id grade``): 3 = everything asked for (noun and attribute, or the
brand); 2 = the product kind without the attribute (or an attribute-only match); 1 = the same category; products
of other categories are not relevant. Queries are split by the seed into validation and test halves (stratified
by kind): tune on validation, touch the test half once per reported configuration.

Files: ``corpus.jsonl`` (``{"id", "title", "text"}``), ``queries_{validation,test}.tsv`` (``query_id<TAB>query``),
``qrels_{validation,test}.txt``, ``kinds.tsv`` (``query_id<TAB>kind``) and ``SOURCE.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import docstring_parser
from ml.sources.simulated import _CATEGORY_SPEC, CATEGORIES, build_world

KINDS = ("category", "noun", "attribute_noun", "attribute", "synonym", "misspelling", "brand_need")

SYNONYMS = {
    "moisturiser": "face cream",
    "cleanser": "face wash",
    "sunscreen": "sun cream",
    "shampoo": "hair wash",
    "lipstick": "lip colour",
    "cologne": "aftershave",
    "frying pan": "skillet",
    "saucepan": "cooking pot",
    "chef knife": "kitchen knife",
    "chopping board": "cutting board",
    "picture frame": "photo frame",
    "cushion": "throw pillow",
    "table lamp": "desk light",
    "rug": "carpet",
    "duvet": "comforter",
    "mattress topper": "mattress pad",
    "pruner": "secateurs",
    "tape measure": "measuring tape",
    "spirit level": "bubble level",
    "wrench": "spanner",
    "headphones": "earphones",
    "speaker": "loudspeaker",
    "e-reader": "ebook reader",
    "phone case": "phone cover",
    "power bank": "portable battery",
    "plush toy": "stuffed animal",
    "remote car": "rc car",
    "cookbook": "recipe book",
    "travel guide": "guidebook",
    "dumbbell": "hand weight",
    "skipping rope": "jump rope",
    "football": "soccer ball",
    "backpack": "rucksack",
    "head torch": "headlamp",
    "cat litter": "kitty litter",
    "lead": "dog leash",
    "nappies": "diapers",
    "baby wipes": "wet wipes",
    "sleepsuit": "baby pyjamas",
    "coffee beans": "whole bean coffee",
    "jumper": "sweater",
    "trainers": "sneakers",
    "hoodie": "hooded sweatshirt",
    "jeans": "denim trousers",
    "loafers": "slip-on shoes",
    "slippers": "house shoes",
}
"""Paraphrases of product nouns that no product text contains (checked when the set is built)."""


@dataclass(frozen=True)
class Product:
    index: int
    category: str
    noun: str
    attributes: tuple[str, str, str]
    brand: str


@dataclass(frozen=True)
class Query:
    kind: str
    text: str
    judge: dict[int, int]
    """product index -> grade (only grades above 0)."""


def catalogue(scale: str, seed: int) -> tuple[list[Product], list[str], list[str]]:
    """The simulated catalogue's truth per product, and its titles and descriptions."""
    world = build_world(scale, seed)
    products = []
    for i in range(world.spec.n_products):
        category = CATEGORIES[world.product_cat[i]]
        _, nouns, attrs, _ = _CATEGORY_SPEC[category]
        products.append(
            Product(
                i,
                category,
                nouns[world.noun[i] % len(nouns)],
                tuple(attrs[k % len(attrs)] for k in world.attrs[i]),
                str(world.brand_names[world.product_brand[i]]),
            )
        )
    titles, descriptions = world.product_text(np.arange(world.spec.n_products))
    return products, titles, descriptions


def misspell(text: str, rng: np.random.Generator) -> str:
    """One edit in the longest word: a letter dropped, doubled or swapped with the next."""
    words = text.split(" ")
    w = max(range(len(words)), key=lambda j: len(words[j]))
    word = words[w]
    if len(word) < 4:
        return text
    pos = int(rng.integers(1, len(word) - 1))
    edit = int(rng.integers(0, 3))
    if edit == 0:
        word = word[:pos] + word[pos + 1 :]
    elif edit == 1:
        word = word[:pos] + word[pos] + word[pos:]
    else:
        word = word[:pos] + word[pos + 1] + word[pos] + word[pos + 2 :]
    words[w] = word
    return " ".join(words)


def candidate_queries(products: list[Product], rng: np.random.Generator) -> Iterator[Query]:
    by_category: dict[str, list[Product]] = {}
    for p in products:
        by_category.setdefault(p.category, []).append(p)

    def grades(match3, match2, category: str | None) -> dict[int, int]:
        out = {}
        for p in products:
            grade = 3 if match3(p) else 2 if match2(p) else 1 if p.category == category else 0
            if grade:
                out[p.index] = grade
        return out

    for category in by_category:
        yield Query(
            "category", category.replace("_", " "), grades(lambda p: False, lambda p: False, category)
        )
        _, nouns, attrs, use = _CATEGORY_SPEC[category]
        for noun in nouns:
            as_noun = grades(lambda p, n=noun: False, lambda p, n=noun: p.noun == n, category)
            yield Query("noun", noun, as_noun)
            if noun in SYNONYMS:
                yield Query("synonym", SYNONYMS[noun], as_noun)
            yield Query("misspelling", misspell(noun, rng), as_noun)
            for attr in attrs:
                judged = grades(
                    lambda p, n=noun, a=attr: p.noun == n and a in p.attributes,
                    lambda p, n=noun: p.noun == n,
                    category,
                )
                if any(g == 3 for g in judged.values()):
                    yield Query("attribute_noun", f"{attr} {noun}", judged)
                    yield Query("misspelling", misspell(f"{attr} {noun}", rng), judged)
                    if noun in SYNONYMS:
                        yield Query("synonym", f"{attr} {SYNONYMS[noun]}", judged)
        for brand in sorted({p.brand for p in by_category[category]}):
            yield Query(
                "brand_need",
                f"{brand} for {use}",
                grades(lambda p, b=brand: p.brand == b, lambda p: False, category),
            )
    for attr in sorted({a for p in products for a in p.attributes}):
        yield Query("attribute", attr, grades(lambda p: False, lambda p, a=attr: a in p.attributes, None))


def build(scale: str, seed: int, per_kind: int) -> tuple[list[dict], list[tuple[str, str, str, dict, str]]]:
    """(corpus documents, queries as (query_id, text, kind, judgements, split))."""
    rng = np.random.default_rng(seed)
    products, titles, descriptions = catalogue(scale, seed)
    texts = [f"{t} {d}".lower() for t, d in zip(titles, descriptions, strict=True)]
    for noun, synonym in SYNONYMS.items():
        if any(synonym in text for text in texts):
            raise ValueError(f"the paraphrase {synonym!r} of {noun!r} occurs in the catalogue's text")
    pool: dict[str, list[Query]] = {kind: [] for kind in KINDS}
    seen: set[str] = set()
    for query in candidate_queries(products, rng):
        if query.text not in seen and query.judge:
            seen.add(query.text)
            pool[query.kind].append(query)
    chosen = []
    for kind in KINDS:
        picked = rng.permutation(len(pool[kind]))[:per_kind]
        half = np.zeros(len(picked), dtype=bool)
        half[rng.permutation(len(picked))[: len(picked) // 2]] = True
        for j, (position, is_test) in enumerate(zip(picked, half, strict=True)):
            q = pool[kind][position]
            chosen.append((f"{kind}-{j:03d}", q.text, kind, q.judge, "test" if is_test else "validation"))
    corpus = [
        {"id": f"SKU{p.index + 1:06d}", "title": titles[p.index], "text": descriptions[p.index]}
        for p in products
    ]
    return corpus, chosen


def write(out_dir: Path, corpus: list[dict], queries: list, scale: str, seed: int, per_kind: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "corpus.jsonl").open("w") as f:
        for doc in corpus:
            f.write(json.dumps(doc) + "\n")
    ids = [doc["id"] for doc in corpus]
    for split in ("validation", "test"):
        rows = [q for q in queries if q[4] == split]
        (out_dir / f"queries_{split}.tsv").write_text("".join(f"{qid}\t{text}\n" for qid, text, *_ in rows))
        (out_dir / f"qrels_{split}.txt").write_text(
            "".join(
                f"{qid} 0 {ids[doc]} {grade}\n"
                for qid, _, _, judge, _ in rows
                for doc, grade in sorted(judge.items())
            )
        )
    (out_dir / "kinds.tsv").write_text("".join(f"{qid}\t{kind}\n" for qid, _, kind, *_ in queries))
    counts = {kind: sum(q[2] == kind for q in queries) for kind in KINDS}
    (out_dir / "SOURCE.md").write_text(
        "# Product-search relevance set built from the simulated catalogue\n\n"
        f"Built by `python -m bench.search_set --scale {scale} --seed {seed} --per-kind {per_kind} --out-dir "
        f"{out_dir}` from the simulator in `ml/sources/simulated.py` (this project's code, same licence). The "
        "judgements follow from how each product was generated (its category, noun, attributes and brand); see "
        "the module's docstring for the query kinds and grades.\n\n"
        f"{len(corpus)} products; {len(queries)} queries "
        f"({sum(q[4] == 'validation' for q in queries)} validation, {sum(q[4] == 'test' for q in queries)} test): "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
        + ".\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = docstring_parser("python -m bench.search_set", __doc__)
    parser.add_argument("--scale", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--per-kind", type=int, default=60, help="queries drawn per kind (both splits)")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    corpus, queries = build(args.scale, args.seed, args.per_kind)
    write(args.out_dir, corpus, queries, args.scale, args.seed, args.per_kind)
    print(f"{len(corpus)} products, {len(queries)} queries written to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
