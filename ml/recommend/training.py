"""Fitting the day's candidate recommenders on the shop's interaction log (:func:`train_candidates`).

Rules shared by all models: training uses events strictly before the day after ``as_of`` (UTC); every model
ranks the whole catalogue; customers without any usable history get region popularity whatever the model
(:mod:`ml.recommend.scoring`). The SASRec cadence is the caller's choice: ``retrain_sasrec=True`` trains it
(warm-started from ``warm_start_from`` when given: a few epochs instead of a full early-stopped run), ``False``
carries the previous SASRec over unchanged onto the new catalogue (cheap daily runs, with a weekly retrain; the
other models refit daily in seconds).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ml.artifacts import ArtifactStore
from ml.recommend.base import Recommender
from ml.recommend.baselines import EASE, ItemKNN, Popularity
from ml.recommend.blend import COLD_SLOT_EVERY, ColdSlots
from ml.recommend.bundles import PACKAGE_VERSION, CandidateModels, bundle_version
from ml.recommend.coldstart import ContentKNN, SegmentPopularity, catalogue_attributes
from ml.recommend.data import Sequences, validation_users
from ml.recommend.interactions import (
    DAY_SECONDS,
    TrainingLog,
    day_end,
    item_labels,
    to_sequences,
)
from ml.recommend.sasrec import SASRec, SASRecConfig, budget_note, fit_with_refit
from ml.recommend.transition import Transition


def text_embedding(items: pd.DataFrame, skus: np.ndarray, dims: int = 64, seed: int = 0) -> np.ndarray:
    """TF-IDF of title, description, category and brand reduced by truncated SVD, one row per ``skus`` entry.

    Items without metadata get a zero row (the content model then gives them no score).
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    meta = items.drop_duplicates("sku", keep="last").set_index("sku").reindex(skus)
    parts = [
        meta[c].fillna("").astype(str) for c in ("title", "description", "category", "brand") if c in meta
    ]
    text = parts[0].str.cat(parts[1:], sep=" ") if parts else pd.Series([""] * len(skus))
    has_text = text.str.strip().str.len().to_numpy() > 0
    out = np.zeros((len(skus), dims), dtype=np.float32)
    if has_text.sum() < 3:
        return out
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=1).fit_transform(text[has_text])
    k = max(1, min(dims, tfidf.shape[1] - 1, int(has_text.sum()) - 1))
    emb = TruncatedSVD(n_components=k, random_state=seed).fit_transform(tfidf)
    out[has_text, :k] = emb
    return out


def train_candidates(
    interactions: pd.DataFrame | TrainingLog,
    as_of: Any,
    store: ArtifactStore | None = None,
    items: pd.DataFrame | None = None,
    warm_start_from: CandidateModels | None = None,
    retrain_sasrec: bool = True,
    retrain_reason: str = "",
    seed: int = 0,
    sasrec_time_budget: float | None = 300.0,
    sasrec_config: Mapping[str, Any] | None = None,
    warm_epochs: int = 3,
    half_life_days: float = 14.0,
    max_ease_items: int = 20_000,
    models: Iterable[str] | None = None,
) -> CandidateModels:
    """Fit every candidate on events up to the end of day ``as_of`` and keep them as that day's bundle in
    ``store`` (when given). ``interactions``: rows of :func:`~ml.recommend.interactions.read_interactions`'
    schema, or their :class:`~ml.recommend.interactions.TrainingLog` already read in the warehouse
    (:func:`~ml.recommend.interactions.read_training_log`, which reads up to the end of ``as_of``).

    Candidates: ``popularity`` (time-decayed purchases), ``segment_popularity`` (by region), ``itemknn``,
    ``ease`` (skipped above ``max_ease_items`` items), ``transition``, ``sasrec``, ``content`` (text embedding;
    needs ``items``) and ``hybrid`` (SASRec's lists with every fifth place for the next new item by content,
    :class:`ml.recommend.blend.ColdSlots`, so that new items enter the lists).
    Returns the bundle (:class:`ml.recommend.bundles.CandidateModels`); stored, its folder holds ``models.pkl``
    and ``manifest.json`` (data window, params, versions, train seconds) and ``bundle.path`` says where.
    """
    started = time.perf_counter()
    as_of_day = (day_end(as_of) - pd.Timedelta(days=1)).date().isoformat()
    log = (
        interactions
        if isinstance(interactions, TrainingLog)
        else TrainingLog.from_frame(interactions, before=day_end(as_of))
    )
    if not log.events:
        raise ValueError(f"no interactions before the end of {as_of_day}")
    wanted = set(models) if models is not None else None
    vocab_parts = [log.skus]
    if items is not None and len(items):
        vocab_parts.append(items["sku"].astype(str).unique())
    vocab = np.unique(np.concatenate(vocab_parts)).astype(object)
    seqs = to_sequences(log.steps, vocab)
    # a window without a sale (a shop's first days): popularity counts the steps instead
    purchase_seqs = to_sequences(log.purchases, vocab) if len(log.purchases) else seqs
    regions = log.regions
    half_life = half_life_days * DAY_SECONDS

    previous_sasrec = warm_start_from.models.get("sasrec") if warm_start_from is not None else None

    fitted: dict[str, Recommender] = {}
    seconds: dict[str, float] = {}
    versions: dict[str, str] = {}
    notes: dict[str, str] = {}

    def fit(name: str, model: Recommender, data: Sequences, **kw: Any) -> None:
        if wanted is not None and name not in wanted:
            return
        t0 = time.perf_counter()
        fitted[name] = model.fit(data, **kw)
        seconds[name] = round(time.perf_counter() - t0, 3)
        versions[name] = bundle_version(name, as_of_day, model.params())

    fit("popularity", Popularity(half_life=half_life), purchase_seqs)
    fit("segment_popularity", SegmentPopularity(regions, shrink=50.0, half_life=half_life), purchase_seqs)
    fit("itemknn", ItemKNN(shrink=20.0, neighbours=200), seqs)
    if len(vocab) <= max_ease_items:
        fit("ease", EASE(lam=100.0), seqs)
    fit("transition", Transition(n_last=3, decay=0.5, backward=0.3, alpha=1.0), seqs)

    if wanted is None or "sasrec" in wanted or "hybrid" in wanted:
        # the benchmark's configuration (bench.recsys), only the time budget is the platform's
        cfg = SASRecConfig(seed=seed, time_budget=sasrec_time_budget)
        cfg = _replace(cfg, dict(sasrec_config or {}))
        # the catalogue's category and brand as the Transformer's item attributes, as the benchmark's files give
        attributes = catalogue_attributes(items, vocab)
        with_attributes = (
            {} if attributes is None else {"item_attributes": attributes[0], "attribute_ids": attributes[1]}
        )
        t0 = time.perf_counter()
        if previous_sasrec is not None and not retrain_sasrec:
            # carried over: same weights, re-indexed onto today's catalogue, version kept
            sasrec = SASRec(previous_sasrec.config).fit(
                seqs, epochs=0, init_from=previous_sasrec, **with_attributes
            )
            versions["sasrec"] = warm_start_from.versions["sasrec"]
            notes["sasrec"] = f"carried over from {warm_start_from.as_of} without training"
        elif previous_sasrec is not None:
            sasrec = SASRec(previous_sasrec.config).fit(
                seqs, epochs=warm_epochs, init_from=previous_sasrec, **with_attributes
            )
            notes["sasrec"] = f"warm-started from {warm_start_from.as_of}, {warm_epochs} epochs"
            if sasrec.stopped_by_budget_:
                notes["sasrec"] += f"; {budget_note(sasrec)}"
        else:
            # from scratch, as bench.recsys trains it: early stopping on every customer's last item (a seeded
            # sample on a large store), then a refit on everything so that the served model learnt the latest items
            val = seqs.subset(validation_users(seqs.lengths, seed))
            fitted_sasrec = fit_with_refit(
                cfg, seqs.drop_last(1), (val.drop_last(1), val.last()), seqs, **with_attributes
            )
            sasrec = fitted_sasrec.model
            notes["sasrec"] = f"trained from scratch: {fitted_sasrec.note}"
        fitted["sasrec"] = sasrec
        seconds["sasrec"] = round(time.perf_counter() - t0, 3)
        versions.setdefault("sasrec", bundle_version("sasrec", as_of_day, sasrec.params()))

    if items is not None and len(items) and (wanted is None or {"content", "hybrid"} & wanted):
        t0 = time.perf_counter()
        content = ContentKNN(text_embedding(items, vocab, seed=seed), recency=0.7, idf=False).fit(seqs)
        fitted["content"] = content
        seconds["content"] = round(time.perf_counter() - t0, 3)
        versions["content"] = bundle_version("content", as_of_day, content.params())
        if "sasrec" in fitted:
            # SASRec's order with every fifth place kept for a product nobody has touched yet, by its text: a
            # mixture of scores almost never lets such a product into the top 10 (docs/benchmarks/recsys.md)
            hybrid = ColdSlots(fitted["sasrec"], content, every=COLD_SLOT_EVERY).fit(seqs)
            fitted["hybrid"] = hybrid
            seconds["hybrid"] = 0.0
            versions["hybrid"] = bundle_version(
                "hybrid", as_of_day, {"v": [versions["sasrec"], versions["content"]]}
            )
    for name in list(fitted):
        if wanted is not None and name not in wanted:
            del fitted[name]

    # the platform always scores explicit histories, so the training sequences each model keeps for
    # ``score(users=...)`` are dropped: otherwise every model would store its own copy of the event log
    for model in fitted.values():
        model.train_ = None
        for part in getattr(model, "components", []):
            part.train_ = None
    trained_items = np.unique(seqs.items)
    titles, categories = item_labels(items, vocab)
    explain_knn = ItemKNN(shrink=5.0, neighbours=50).fit(seqs)
    manifest = {
        "version": f"candidates-{as_of_day}-{PACKAGE_VERSION}",
        "package_version": PACKAGE_VERSION,
        "as_of": as_of_day,
        "data_window": {
            "start": log.start.isoformat(),
            "end_exclusive": day_end(as_of).isoformat(),
            "events": log.events,
            "purchases": len(log.purchases),
            "customers": log.customers,
            "items_with_events": len(trained_items),
            "catalogue_items": len(vocab),
        },
        "seed": seed,
        "warm_start_from": None if warm_start_from is None else warm_start_from.as_of,
        "retrain_sasrec": retrain_sasrec,
        "retrain_reason": retrain_reason,
        "models": {
            name: {
                "version": versions[name],
                "params": _jsonable(m.params()),
                "train_seconds": seconds[name],
                **({"note": notes[name]} if name in notes else {}),
            }
            for name, m in fitted.items()
        },
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    bundle = CandidateModels(
        as_of=as_of_day,
        version=manifest["version"],
        item_ids=vocab,
        models=fitted,
        versions=versions,
        regions=regions,
        titles=titles,
        categories=categories,
        trained_items=trained_items,
        similar=explain_knn.sim_,
        manifest=manifest,
    )
    manifest["train_seconds"] = round(time.perf_counter() - started, 3)
    if store is not None:
        bundle.save(store)
    return bundle


def _replace(cfg: SASRecConfig, overrides: dict[str, Any]) -> SASRecConfig:

    return dataclasses.replace(cfg, **overrides)


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))
