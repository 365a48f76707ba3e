"""Platform-facing recommendation API for the daily pipeline (pure pandas/numpy/torch, no Dagster).

Input schemas:

* interactions / history: DataFrame ``customer_id`` (str), ``sku`` (str), ``event_ts`` (tz-aware UTC),
  ``event_type`` in {view, cart, purchase}; an optional ``region`` column gives each customer's region (the
  latest one seen is used) for the new-user fallback;
* items (optional): DataFrame ``sku, title, description, category, brand``; it adds never-bought items to the
  catalogue (scored by the content model), gives reasons readable titles and feeds the TF-IDF+SVD text embedding.

Public API, in the order a daily run calls it:

    bundle = train_candidates(interactions, as_of, artifact_dir, items=None, warm_start_from=None,
                              retrain_sasrec=True, seed=0, sasrec_time_budget=300.0) -> CandidateModels
    bundle = load_candidates(path) -> CandidateModels          # path = bundle.path (a folder with a manifest)
    metrics = evaluate_next_day(bundle, history, next_day_purchases, k=(10, 20))
        -> {model_name: {"HR@10", "NDCG@10", "recall@10", ..., "coverage@10", ..., "users",
                         "cold_users": {...}, "cold_items": {...}}}
    recs = recommend(bundle["sasrec"], customers, history, k=10, items=None)
        -> DataFrame customer_id, rank, sku, score, model_name, model_version, reason, reason_sku
    choice = choose_champion(daily_metrics, margin=0.05, previous_champion=None)
        -> {"champion", "reason", "beats_baseline", "window", "means"}

Rules shared by all models: training uses events strictly before the day after ``as_of`` (UTC); every model
ranks the whole catalogue; items the customer already *purchased* are never recommended (viewed ones may be);
customers without any usable history get region popularity (``segment_popularity``) whatever the model, so
that every candidate can be served to everyone. The SASRec cadence is the caller's choice:
``retrain_sasrec=True`` trains it (warm-started from ``warm_start_from`` when given: a few epochs instead of a
full early-stopped run), ``False`` carries the previous SASRec over unchanged onto the new catalogue (cheap
daily runs, with a weekly retrain recommended; the other models refit daily in seconds).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import pickle
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommend.base import Recommender
from ml.recommend.baselines import EASE, ItemKNN, Popularity
from ml.recommend.blend import Blend
from ml.recommend.coldstart import ContentKNN, SegmentPopularity
from ml.recommend.data import Sequences
from ml.recommend.sasrec import SASRec, SASRecConfig
from ml.recommend.transition import Transition

EVENT_TYPES = ("view", "cart", "purchase")
BASELINE = "popularity"
DAY_SECONDS = 86_400.0
PACKAGE_VERSION = "recommend-1"


# ------------------------------------------------------------------------------------------------ data helpers
def _day_end(as_of: Any) -> pd.Timestamp:
    """First instant after day ``as_of`` (UTC): the exclusive upper bound of the training data."""
    ts = pd.Timestamp(as_of)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.normalize() + pd.Timedelta(days=1)


def _clean(events: pd.DataFrame, before: pd.Timestamp | None = None) -> pd.DataFrame:
    cols = ["customer_id", "sku", "event_ts", "event_type"] + (["region"] if "region" in events else [])
    df = events[cols].dropna(subset=["customer_id", "sku", "event_ts"]).copy()
    df["event_ts"] = pd.to_datetime(df["event_ts"], utc=True)
    df["customer_id"] = df["customer_id"].astype(str)
    df["sku"] = df["sku"].astype(str)
    if "event_type" in df:
        df = df[df["event_type"].isin(EVENT_TYPES)]
    if before is not None:
        df = df[df["event_ts"] < before]
    return df.sort_values("event_ts", kind="stable")


MAX_HISTORY = 200
"""Most recent (collapsed) events kept per customer for the sequence and item-item models: bounds the cost on a
busy store (a medium-scale customer views hundreds of items a month) while keeping far more than SASRec's window."""


def _collapse_repeats(df: pd.DataFrame, max_history: int | None = MAX_HISTORY) -> pd.DataFrame:
    """Drop consecutive events of a customer on the same item (view -> cart -> purchase is one step) and keep
    each customer's last ``max_history`` steps."""
    if df.empty:  # a day after a closed day (the real shop does not trade on Saturdays) has no history rows
        return df
    df = df.sort_values(["customer_id", "event_ts"], kind="stable")
    same = (df["customer_id"].to_numpy()[1:] == df["customer_id"].to_numpy()[:-1]) & (
        df["sku"].to_numpy()[1:] == df["sku"].to_numpy()[:-1]
    )
    df = df[np.concatenate([[True], ~same])]
    if max_history is not None:
        from_end = df.groupby("customer_id", sort=False).cumcount(ascending=False).to_numpy()
        df = df[from_end < max_history]
    return df


def _sequences(df: pd.DataFrame, vocab: np.ndarray, customers: Sequence[str] | None = None) -> Sequences:
    """Time-ordered item sequences in the given vocabulary (unknown items dropped); rows follow ``customers``."""
    df = df[pd.Index(vocab).get_indexer(df["sku"].to_numpy()) >= 0]
    frame = pd.DataFrame(
        {"user": df["customer_id"].to_numpy(), "item": df["sku"].to_numpy(), "ts": _seconds(df["event_ts"])}
    )
    seqs = Sequences.from_frame(frame, item_ids=vocab)
    if customers is None:
        return seqs
    rows = pd.Index(seqs.user_ids).get_indexer(np.asarray(customers, dtype=object))
    lists = [seqs[r] if r >= 0 else np.zeros(0, np.int64) for r in rows]
    return Sequences.from_lists(lists, len(vocab), np.asarray(customers, dtype=object))


def _seconds(ts: pd.Series) -> np.ndarray:
    return (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def _regions(df: pd.DataFrame) -> pd.Series:
    if "region" not in df:
        return pd.Series(dtype=object)
    last = df.dropna(subset=["region"]).drop_duplicates("customer_id", keep="last")
    return pd.Series(last["region"].to_numpy(), index=last["customer_id"].to_numpy())


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


# ------------------------------------------------------------------------------------------------ the bundle
@dataclass
class CandidateModel:
    """One servable model of a bundle: ``bundle[name]``."""

    name: str
    version: str
    recommender: Recommender
    bundle: CandidateModels = field(repr=False)


@dataclass
class CandidateModels:
    """Models trained on one data window, with what serving and explanations need."""

    as_of: str
    version: str
    item_ids: np.ndarray
    models: dict[str, Recommender]
    versions: dict[str, str]
    regions: pd.Series
    titles: pd.Series
    categories: pd.Series
    trained_items: np.ndarray
    """Items with at least one interaction in the training window (the others are "new")."""
    together: sp.csr_matrix
    """Symmetric counts of items purchased consecutively by a customer ("bought together with")."""
    similar: sp.csr_matrix
    """ItemKNN similarities over all events ("similar to X you viewed")."""
    manifest: dict[str, Any]
    path: Path | None = None

    def __getitem__(self, name: str) -> CandidateModel:
        return CandidateModel(name, self.versions[name], self.models[name], self)

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "models.pkl", "wb") as fh:
            pickle.dump({k: v for k, v in self.__dict__.items() if k != "path"}, fh)
        (folder / "manifest.json").write_text(json.dumps(self.manifest, indent=2, default=str) + "\n")
        self.path = folder
        return folder


BUNDLE_PREFIX = "candidates-"
"""A day's bundle is the folder ``candidates-YYYY-MM-DD`` under the artifact directory."""


def bundle_dir(root: str | Path, day: dt.date) -> Path:
    """The folder of ``day``'s bundle under ``root`` (what :func:`train_candidates` writes)."""
    return Path(root) / f"{BUNDLE_PREFIX}{day.isoformat()}"


def _dated_bundles(root: str | Path) -> list[tuple[dt.date, Path]]:
    """The bundle folders under ``root`` with their day, oldest first (other names are not bundles)."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for folder in root.iterdir():
        if folder.is_dir() and folder.name.startswith(BUNDLE_PREFIX):
            try:
                out.append((dt.date.fromisoformat(folder.name[len(BUNDLE_PREFIX) :]), folder))
            except ValueError:
                continue
    return sorted(out)


def previous_bundle(root: str | Path, day: dt.date) -> Path | None:
    """The newest complete bundle under ``root`` from before ``day`` (SASRec warm-starts from it), or None."""
    earlier = [folder for d, folder in _dated_bundles(root) if d < day]
    return earlier[-1] if earlier and (earlier[-1] / "manifest.json").exists() else None


def load_candidates(path: str | Path) -> CandidateModels:
    """Load a bundle written by :func:`train_candidates` (the folder holding ``manifest.json``)."""
    path = Path(path)
    with open(path / "models.pkl", "rb") as fh:
        state = pickle.load(fh)
    return CandidateModels(**state, path=path)


def prune_bundles(root: str | Path, keep_from: dt.date) -> list[str]:
    """Delete the bundles under ``root`` (``candidates-YYYY-MM-DD`` folders) dated before ``keep_from``; returns
    the names removed, oldest first. Anything else under ``root`` is left alone.

    A bundle holds every candidate's fitted state (EASE's item-by-item matrix dominates: about 80 MB a day on
    Online Retail by December), so a year of daily bundles kept forever is tens of gigabytes of models that
    nothing reads again: a day's bundle serves that day's lists and the next day's evaluation.
    """
    removed = []
    for day, folder in _dated_bundles(root):
        if day < keep_from:
            shutil.rmtree(folder)
            removed.append(folder.name)
    return removed


def _version(name: str, as_of: str, params: Mapping[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{name}-{as_of}-{digest}"


def train_candidates(
    interactions: pd.DataFrame,
    as_of: Any,
    artifact_dir: str | Path,
    items: pd.DataFrame | None = None,
    warm_start_from: str | Path | CandidateModels | None = None,
    retrain_sasrec: bool = True,
    seed: int = 0,
    sasrec_time_budget: float = 300.0,
    sasrec_config: Mapping[str, Any] | None = None,
    warm_epochs: int = 3,
    half_life_days: float = 14.0,
    max_ease_items: int = 20_000,
    models: Iterable[str] | None = None,
) -> CandidateModels:
    """Fit every candidate on events up to the end of day ``as_of`` and save them under ``artifact_dir``.

    Candidates: ``popularity`` (time-decayed purchases), ``segment_popularity`` (by region), ``itemknn``,
    ``ease`` (skipped above ``max_ease_items`` items), ``transition``, ``sasrec``, ``content`` (text embedding;
    needs ``items``) and ``hybrid`` (SASRec mixed with content scores, so that new items can enter the lists).
    Returns the bundle; its folder ``artifact_dir/candidates-<as_of>`` holds ``models.pkl`` and ``manifest.json``
    (data window, params, versions, train seconds).
    """
    started = time.perf_counter()
    as_of_day = (_day_end(as_of) - pd.Timedelta(days=1)).date().isoformat()
    df = _clean(interactions, before=_day_end(as_of))
    if df.empty:
        raise ValueError(f"no interactions before the end of {as_of_day}")
    wanted = set(models) if models is not None else None
    vocab_parts = [df["sku"].unique()]
    if items is not None and len(items):
        vocab_parts.append(items["sku"].astype(str).unique())
    vocab = np.unique(np.concatenate(vocab_parts)).astype(object)
    seqs = _sequences(_collapse_repeats(df), vocab)
    purchases = df[df["event_type"] == "purchase"]
    purchase_seqs = _sequences(purchases if len(purchases) else df, vocab)
    regions = _regions(df)
    half_life = half_life_days * DAY_SECONDS

    if isinstance(warm_start_from, str | Path):
        warm_start_from = load_candidates(warm_start_from)
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
        versions[name] = _version(name, as_of_day, model.params())

    fit("popularity", Popularity(half_life=half_life), purchase_seqs)
    fit("segment_popularity", SegmentPopularity(regions, shrink=50.0, half_life=half_life), purchase_seqs)
    fit("itemknn", ItemKNN(shrink=20.0, neighbours=200), seqs)
    if len(vocab) <= max_ease_items:
        fit("ease", EASE(lam=100.0), seqs)
    fit("transition", Transition(n_last=3, decay=0.5, backward=0.3, alpha=1.0), seqs)

    if wanted is None or "sasrec" in wanted or "hybrid" in wanted:
        # shop sequences (views included) are long and dense compared with Beauty's reviews: less dropout
        cfg = SASRecConfig(
            seed=seed, time_budget=sasrec_time_budget, max_epochs=60, patience=3, emb_dropout=0.2, dropout=0.1
        )
        cfg = _replace(cfg, dict(sasrec_config or {}))
        t0 = time.perf_counter()
        if previous_sasrec is not None and not retrain_sasrec:
            # carried over: same weights, re-indexed onto today's catalogue, version kept
            sasrec = SASRec(previous_sasrec.config).fit(seqs, epochs=0, init_from=previous_sasrec)
            versions["sasrec"] = warm_start_from.versions["sasrec"]
            notes["sasrec"] = f"carried over from {warm_start_from.as_of} without training"
        elif previous_sasrec is not None:
            sasrec = SASRec(previous_sasrec.config).fit(seqs, epochs=warm_epochs, init_from=previous_sasrec)
            notes["sasrec"] = f"warm-started from {warm_start_from.as_of}, {warm_epochs} epochs"
        else:
            # from scratch: each customer's last item is the validation target for early stopping
            val = seqs.subset(np.flatnonzero(seqs.lengths >= 3))
            sasrec = SASRec(cfg).fit(seqs.drop_last(1), validation=(val.drop_last(1), val.last()))
            notes["sasrec"] = f"trained from scratch, best epoch {sasrec.best_epoch_}"
        fitted["sasrec"] = sasrec
        seconds["sasrec"] = round(time.perf_counter() - t0, 3)
        versions.setdefault("sasrec", _version("sasrec", as_of_day, sasrec.params()))

    if items is not None and len(items) and (wanted is None or {"content", "hybrid"} & wanted):
        t0 = time.perf_counter()
        content = ContentKNN(text_embedding(items, vocab, seed=seed), recency=0.7, idf=False).fit(seqs)
        fitted["content"] = content
        seconds["content"] = round(time.perf_counter() - t0, 3)
        versions["content"] = _version("content", as_of_day, content.params())
        if "sasrec" in fitted:
            # a small content share: enough to lift never-bought items above the zero-information tail without
            # reordering SASRec's confident picks (measured on the cold-item slice by evaluate_next_day)
            hybrid = Blend([fitted["sasrec"], content], [0.9, 0.1], prefit=True).fit(seqs)
            fitted["hybrid"] = hybrid
            seconds["hybrid"] = 0.0
            versions["hybrid"] = _version(
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
    titles, categories = _item_labels(items, vocab)
    explain_knn = ItemKNN(shrink=5.0, neighbours=50).fit(seqs)
    manifest = {
        "version": f"candidates-{as_of_day}-{PACKAGE_VERSION}",
        "package_version": PACKAGE_VERSION,
        "as_of": as_of_day,
        "data_window": {
            "start": df["event_ts"].min().isoformat(),
            "end_exclusive": _day_end(as_of).isoformat(),
            "events": len(df),
            "purchases": len(purchases),
            "customers": int(df["customer_id"].nunique()),
            "items_with_events": len(trained_items),
            "catalogue_items": len(vocab),
        },
        "seed": seed,
        "warm_start_from": None if warm_start_from is None else str(warm_start_from.path),
        "retrain_sasrec": retrain_sasrec,
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
        together=_together(purchase_seqs),
        similar=explain_knn.sim_,
        manifest=manifest,
    )
    manifest["train_seconds"] = round(time.perf_counter() - started, 3)
    bundle.save(bundle_dir(artifact_dir, dt.date.fromisoformat(as_of_day)))
    return bundle


def _replace(cfg: SASRecConfig, overrides: dict[str, Any]) -> SASRecConfig:
    import dataclasses

    return dataclasses.replace(cfg, **overrides)


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))


def _item_labels(items: pd.DataFrame | None, vocab: np.ndarray) -> tuple[pd.Series, pd.Series]:
    if items is None or not len(items):
        return pd.Series(vocab, index=vocab), pd.Series(index=vocab, dtype=object)
    meta = items.assign(sku=items["sku"].astype(str)).drop_duplicates("sku", keep="last").set_index("sku")
    meta = meta.reindex(vocab)
    titles = (
        meta["title"].fillna(pd.Series(vocab, index=vocab)) if "title" in meta else pd.Series(vocab, vocab)
    )
    cats = meta["category"] if "category" in meta else pd.Series(index=vocab, dtype=object)
    return titles.astype(str), cats


def _together(purchase_seqs: Sequences) -> sp.csr_matrix:
    prev, nxt = purchase_seqs.pairs()
    n = purchase_seqs.n_items
    keep = prev != nxt
    ones = np.ones(int(keep.sum()), dtype=np.float32)
    m = sp.csr_matrix((ones, (prev[keep], nxt[keep])), shape=(n, n))
    m = (m + m.T).tocsr()
    m.sum_duplicates()
    return m


# ------------------------------------------------------------------------------------------------ scoring
@dataclass
class _Histories:
    customers: np.ndarray
    seqs: Sequences
    purchased: sp.csr_matrix
    """customers x items, 1 where the customer has purchased the item (never recommended again)."""
    regions: np.ndarray


def _histories(bundle: CandidateModels, customers: Sequence[str], history: pd.DataFrame | None) -> _Histories:
    customers = np.asarray([str(c) for c in customers], dtype=object)
    df = _clean(history) if history is not None and len(history) else None
    if df is None:
        empty = Sequences.from_lists([[] for _ in customers], len(bundle.item_ids), customers)
        purchased = sp.csr_matrix((len(customers), len(bundle.item_ids)), dtype=np.float32)
        regions = bundle.regions.reindex(customers).to_numpy()
        return _Histories(customers, empty, purchased, regions)
    df = df[df["customer_id"].isin(set(customers))]
    seqs = _sequences(_collapse_repeats(df), bundle.item_ids, customers)
    bought = df[df["event_type"] == "purchase"]
    rows = pd.Index(customers).get_indexer(bought["customer_id"].to_numpy())
    cols = pd.Index(bundle.item_ids).get_indexer(bought["sku"].to_numpy())
    ok = (rows >= 0) & (cols >= 0)
    purchased = sp.csr_matrix(
        (np.ones(int(ok.sum()), np.float32), (rows[ok], cols[ok])),
        shape=(len(customers), len(bundle.item_ids)),
    )
    purchased.data[:] = 1.0
    regions = _regions(df).reindex(customers)
    regions = regions.fillna(bundle.regions.reindex(customers)).to_numpy()
    return _Histories(customers, seqs, purchased, regions)


def _scores(candidate: CandidateModel, hist: _Histories, rows: np.ndarray) -> np.ndarray:
    """Scores ``[len(rows), items]`` with the exclusion rule applied (purchased items: ``-inf``)."""
    bundle = candidate.bundle
    sub = hist.seqs.subset(rows)
    model = candidate.recommender
    scores = np.array(model._score(sub, hist.customers[rows]), dtype=np.float32, copy=True)
    cold = sub.lengths == 0
    if cold.any() and "segment_popularity" in bundle.models and candidate.name != "popularity":
        # a customer with no usable history: what sells in their region, whatever the model
        scores[cold] = _segment_scores(bundle.models["segment_popularity"], hist.regions[rows][cold])
    bought = hist.purchased[rows]
    r, c = bought.nonzero()
    scores[r, c] = -np.inf
    return scores


def _segment_scores(seg: SegmentPopularity, regions: np.ndarray) -> np.ndarray:
    idx = seg.seg_index_.get_indexer(pd.Series(regions, dtype=object).to_numpy())
    out = np.tile(seg.pop_, (len(regions), 1))
    out[idx >= 0] = seg.seg_pop_[idx[idx >= 0]]
    return out


def _top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns per row via torch (faster than numpy argpartition on wide rows); -1 where excluded."""
    import torch

    k = min(k, scores.shape[1])
    values, idx = torch.topk(torch.from_numpy(scores), k, dim=1)
    idx, values = idx.numpy(), values.numpy()
    idx = np.where(np.isneginf(values), -1, idx)
    return idx, values


def _topk_batched(candidate: CandidateModel, hist: _Histories, k: int, batch: int = 2048):
    n = len(hist.customers)
    items = np.full((n, k), -1, dtype=np.int64)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    for start in range(0, n, batch):
        rows = np.arange(start, min(n, start + batch))
        i, s = _top(_scores(candidate, hist, rows), k)
        items[rows, : i.shape[1]], scores[rows, : s.shape[1]] = i, s
    return items, scores


# ------------------------------------------------------------------------------------------------ evaluation
def _ranking_metrics(top: np.ndarray, relevant: sp.csr_matrix, n_relevant: np.ndarray, ks: Sequence[int]):
    """HR/NDCG/recall@K for multi-item targets; ``relevant`` is users x items (0/1), ``n_relevant`` per user."""
    safe = np.where(top >= 0, top, 0)
    hits = np.asarray(relevant[np.arange(len(top))[:, None], safe].todense()) > 0
    hits &= top >= 0
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    out: dict[str, float] = {}
    n = max(len(top), 1)
    for k in ks:
        h = hits[:, :k]
        dcg = (h * discounts[:k]).sum(axis=1)
        ideal = np.cumsum(discounts[:k])[np.clip(np.minimum(n_relevant, k) - 1, 0, None)]
        out[f"HR@{k}"] = float(h.any(axis=1).sum() / n)
        out[f"NDCG@{k}"] = float((dcg / ideal).sum() / n)
        out[f"recall@{k}"] = float((h.sum(axis=1) / np.maximum(n_relevant, 1)).sum() / n)
    return out


def evaluate_next_day(
    models: CandidateModels,
    history: pd.DataFrame,
    next_day_purchases: pd.DataFrame,
    k: Sequence[int] = (10, 20),
    model_names: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Score every candidate against the purchases of the day after training (platform protocol).

    ``history`` is what the models may use as input (events up to the end of ``as_of``); the evaluated customers
    are those with a purchase in ``next_day_purchases`` (``customer_id, sku``). Items they had already purchased
    are excluded from both the lists and the targets (the rule forbids recommending them). Besides the overall
    metrics each model gets ``cold_users`` (no event in ``history``) and ``cold_items`` (targets restricted to
    items without any event in the training window) slices, and ``coverage@K``: the share of the catalogue that
    appears in at least one top-K list.
    """
    ks = tuple(sorted(k))
    buys = next_day_purchases.dropna(subset=["customer_id", "sku"])
    if "event_type" in buys:
        buys = buys[buys["event_type"] == "purchase"]
    buys = buys.assign(customer_id=buys["customer_id"].astype(str), sku=buys["sku"].astype(str))
    buys = buys.drop_duplicates(["customer_id", "sku"])
    customers = np.asarray(sorted(buys["customer_id"].unique()), dtype=object)
    hist = _histories(models, customers, _clean(history, before=_day_end(models.as_of)))
    n_items = len(models.item_ids)
    rows = pd.Index(customers).get_indexer(buys["customer_id"].to_numpy())
    cols = pd.Index(models.item_ids).get_indexer(buys["sku"].to_numpy())
    in_vocab = cols >= 0
    already = np.zeros(len(buys), dtype=bool)
    if in_vocab.any():
        # scipy returns a matrix or a sparse array for fancy indexing, depending on the sizes involved
        picked = hist.purchased[rows[in_vocab], cols[in_vocab]]
        picked = picked.toarray() if sp.issparse(picked) else np.asarray(picked)
        already[in_vocab] = picked.ravel() > 0
    fresh = ~already
    relevant = sp.csr_matrix(
        (
            np.ones(int((fresh & in_vocab).sum()), np.float32),
            (rows[fresh & in_vocab], cols[fresh & in_vocab]),
        ),
        shape=(len(customers), n_items),
    )
    # out-of-catalogue targets count as relevant (and unreachable), so no model looks better by ignoring them
    n_relevant = np.bincount(rows[fresh], minlength=len(customers))
    is_cold_item = ~np.isin(np.arange(n_items), models.trained_items)
    cold_rel = relevant @ sp.diags(is_cold_item.astype(np.float32))
    n_cold = np.asarray((cold_rel > 0).sum(axis=1)).ravel()
    evaluated = n_relevant > 0
    cold_users = evaluated & (hist.seqs.lengths == 0)
    cold_item_users = n_cold > 0
    out: dict[str, dict[str, Any]] = {}
    for name in model_names or models.names:
        top, _ = _topk_batched(models[name], hist, max(ks))
        e = np.flatnonzero(evaluated)
        res: dict[str, Any] = _ranking_metrics(top[e], relevant[e], n_relevant[e], ks)
        for kk in ks:
            shown = top[e, :kk]
            res[f"coverage@{kk}"] = float(len(np.unique(shown[shown >= 0])) / n_items)
        res["users"] = int(len(e))
        cu = np.flatnonzero(cold_users)
        res["cold_users"] = _ranking_metrics(top[cu], relevant[cu], n_relevant[cu], ks) | {"users": len(cu)}
        ci = np.flatnonzero(cold_item_users)
        res["cold_items"] = _ranking_metrics(top[ci], cold_rel[ci], n_cold[ci], ks) | {"users": len(ci)}
        out[name] = res
    return out


# ------------------------------------------------------------------------------------------------ serving
def recommend(
    model: CandidateModel,
    customers: Sequence[str],
    history: pd.DataFrame | None,
    k: int = 10,
    items: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top-``k`` per customer with score, rank, model version and a readable reason.

    ``history`` holds the customers' events (any date up to now; their purchases are excluded). ``items``, when
    given, restricts the lists to those SKUs (e.g. in stock today) and supplies titles for the reasons. The reason
    names a real item of the customer's history whenever it cites one (``reason_sku``): "bought together with X"
    (consecutive purchases by other customers), "similar to X you viewed/bought" (item-item similarity), else "new
    in a category you like" (never-bought item in a category of the history) or "popular in your region".
    """
    bundle = model.bundle
    hist = _histories(bundle, customers, history)
    if items is not None and len(items):
        allowed = np.isin(bundle.item_ids, items["sku"].astype(str).to_numpy())
        titles = _item_labels(items, bundle.item_ids)[0]
        titles = titles.where(titles != pd.Series(bundle.item_ids, index=bundle.item_ids), bundle.titles)
    else:
        allowed, titles = None, bundle.titles
    lookups = (_Lookup(bundle.together), _Lookup(bundle.similar))
    frames = []
    for start in range(0, len(hist.customers), 2048):
        rows = np.arange(start, min(len(hist.customers), start + 2048))
        s = _scores(model, hist, rows)
        if allowed is not None:
            s[:, ~allowed] = -np.inf
        top, top_scores = _top(s, k)
        part = _Histories(
            hist.customers[rows], hist.seqs.subset(rows), hist.purchased[rows], hist.regions[rows]
        )
        reason, reason_item = _reasons(bundle, part, top, titles, lookups)
        user_row, rank = np.nonzero(top >= 0)
        cited = reason_item[user_row, rank]
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": part.customers[user_row],
                    "rank": rank + 1,
                    "sku": bundle.item_ids[top[user_row, rank]],
                    "score": top_scores[user_row, rank].astype(np.float64),
                    "model_name": model.name,
                    "model_version": model.version,
                    "reason": reason[user_row, rank],
                    "reason_sku": np.where(cited >= 0, bundle.item_ids[np.maximum(cited, 0)], None),
                }
            )
        )
    if not frames:
        columns = [
            "customer_id",
            "rank",
            "sku",
            "score",
            "model_name",
            "model_version",
            "reason",
            "reason_sku",
        ]
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


class _Lookup:
    """Elementwise ``m[rows, cols]`` for same-shaped index arrays (-1 = missing: value 0), by binary search."""

    def __init__(self, m: sp.csr_matrix):
        coo = m.tocoo()
        self.n = m.shape[1]
        keys = coo.row.astype(np.int64) * self.n + coo.col
        order = np.argsort(keys)
        self.keys, self.vals = keys[order], coo.data[order]

    def __call__(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(rows.shape, dtype=np.float32)
        q = np.where((rows >= 0) & (cols >= 0), rows.astype(np.int64) * self.n + cols, -1)
        pos = np.clip(np.searchsorted(self.keys, q), 0, len(self.keys) - 1)
        return np.where((q >= 0) & (self.keys[pos] == q), self.vals[pos], 0.0)


def _reasons(
    bundle: CandidateModels,
    hist: _Histories,
    top: np.ndarray,
    titles: pd.Series,
    lookups: tuple[_Lookup, _Lookup],
    depth: int = 20,
):
    """Reason strings ``[users, k]`` and the history item each cites (-1 when none)."""
    n, k = top.shape
    # the customer's last ``depth`` items, most recent first, and whether each was purchased
    lens = np.minimum(hist.seqs.lengths, depth)
    recent = np.full((n, depth), -1, dtype=np.int64)
    r = np.repeat(np.arange(n), lens)
    c = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    recent[r, c] = hist.seqs.items[np.repeat(hist.seqs.indptr[1:], lens) - 1 - c]
    h = np.broadcast_to(recent[:, None, :], (n, k, depth))
    t = np.broadcast_to(top[:, :, None], (n, k, depth))
    together = lookups[0](h, t)
    similar = lookups[1](h, t)
    best_together = together.argmax(axis=2)
    best_similar = similar.argmax(axis=2)
    has_together = together.max(axis=2) > 0
    has_similar = similar.max(axis=2) > 0
    cite = np.where(
        has_together,
        np.take_along_axis(recent, best_together, axis=1) if k else recent[:, :0],
        np.where(has_similar, np.take_along_axis(recent, best_similar, axis=1), -1),
    )
    bought = np.asarray(hist.purchased[np.arange(n)[:, None], np.maximum(cite, 0)].todense()) > 0
    title = titles.to_numpy()
    cats = bundle.categories.to_numpy()
    is_new = ~np.isin(np.arange(len(bundle.item_ids)), bundle.trained_items)
    reasons = np.empty((n, k), dtype=object)
    for u in range(n):
        liked = {cats[i] for i in recent[u][recent[u] >= 0]} - {None, np.nan}
        region = hist.regions[u]
        for j in range(k):
            item = top[u, j]
            if item < 0:
                continue
            x = cite[u, j]
            if x >= 0 and has_together[u, j]:
                reasons[u, j] = f"bought together with {title[x]}"
            elif x >= 0:
                reasons[u, j] = f"similar to {title[x]} you {'bought' if bought[u, j] else 'viewed'}"
            elif is_new[item] and cats[item] in liked:
                reasons[u, j] = f"new in a category you like ({cats[item]})"
            elif isinstance(region, str) and region:
                reasons[u, j] = f"popular in your region ({region})"
            else:
                reasons[u, j] = "popular right now"
    return reasons, cite


# ------------------------------------------------------------------------------------------------ the gate
def choose_champion(
    history_of_daily_metrics: pd.DataFrame,
    margin: float = 0.05,
    previous_champion: str | None = None,
    metric: str = "NDCG@10",
    last_days: int = 7,
    min_days: int = 3,
    baseline: str = BASELINE,
) -> dict[str, Any]:
    """The model to serve: the best challenger that beats ``baseline`` by ``margin`` on the last evaluated days.

    ``history_of_daily_metrics`` has one row per (``date``, ``model``) with the ``metric`` column (what
    :func:`evaluate_next_day` returned, flattened). A challenger qualifies when, over the last ``last_days``
    evaluated dates, its mean ``metric`` is at least ``(1 + margin)`` times the baseline's and it was evaluated
    on at least ``min_days`` of them. Otherwise the previous champion is kept if it still does at least as well as
    the baseline on those days, else the baseline itself is served. The reason says which case applied.
    """
    df = history_of_daily_metrics
    if df.empty or baseline not in set(df["model"]):
        return {
            "champion": previous_champion or baseline,
            "reason": "no evaluated days yet",
            "beats_baseline": False,
            "window": [],
        }
    dates = sorted(df.loc[df["model"] == baseline, "date"].unique())[-last_days:]
    window = df[df["date"].isin(dates)]
    means = window.groupby("model")[metric].mean()
    days = window.groupby("model")["date"].nunique()
    base = float(means[baseline])
    bar = base * (1.0 + margin)
    qualified = means[(means.index != baseline) & (means >= bar) & (days >= min(min_days, len(dates)))]
    qualified = qualified[[m for m in qualified.index if means[m] > base]]
    info = {"window": [str(d) for d in dates], "means": {m: round(float(v), 6) for m, v in means.items()}}
    if len(qualified):
        best = str(qualified.idxmax())
        reason = (
            f"{best} mean {metric} {means[best]:.4f} over {len(dates)} day(s) beats {baseline} "
            f"{base:.4f} by {means[best] / base - 1 if base > 0 else float('inf'):.1%} (margin {margin:.0%})"
        )
        return {"champion": best, "reason": reason, "beats_baseline": True, **info}
    if previous_champion and previous_champion in means.index and means[previous_champion] >= base:
        reason = (
            f"no challenger clears {baseline} by {margin:.0%}; keeping previous champion {previous_champion} "
            f"({means[previous_champion]:.4f} vs {base:.4f})"
        )
        return {"champion": previous_champion, "reason": reason, "beats_baseline": False, **info}
    return {
        "champion": baseline,
        "beats_baseline": False,
        "reason": (
            f"no model clears {baseline} ({base:.4f}) by {margin:.0%} over {len(dates)} day(s): serving {baseline}"
        ),
        **info,
    }


def flatten_metrics(date: Any, metrics: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model from :func:`evaluate_next_day`, slices as ``cold_users.NDCG@10`` columns."""
    rows = []
    for model, res in metrics.items():
        row: dict[str, Any] = {"date": date, "model": model}
        for key, val in res.items():
            if isinstance(val, Mapping):
                row.update({f"{key}.{k}": v for k, v in val.items()})
            else:
                row[key] = val
        rows.append(row)
    return pd.DataFrame(rows)
