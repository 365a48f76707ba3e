"""Recommenders for the shop: baselines, a transition model, a SASRec-family Transformer, cold start and blends.

All models share :class:`~ml.recommend.base.Recommender`: ``fit(interactions)`` on a ``user, item, ts`` log (or
item-index sequences), ``score(users, histories)`` -> ``[n_users, n_items]`` and ``topk(..., k, exclude_seen)``.
Metrics (full ranking, pessimistic ties) are in :mod:`ml.recommend.metrics`; the paper-protocol benchmark is
``python -m bench.recsys``. Serving lists for every user in one pass: :func:`~ml.recommend.base.batched_topk`.

The daily pipeline's steps are :mod:`ml.recommend.daily`, built on the shop's interaction log
(:mod:`~ml.recommend.interactions`: customer_id, sku, event_ts, event_type): :mod:`~ml.recommend.training`
(``train_candidates``) stores a day's :mod:`~ml.recommend.bundles`; :mod:`~ml.recommend.evaluation`
(``evaluate_next_day``), :mod:`~ml.recommend.serving` (``recommend``, with reasons) and
:mod:`~ml.recommend.champion` (``choose_champion``) read it; :mod:`~ml.recommend.scoring` holds the rules every list
obeys. Nothing here imports Dagster; torch is imported by the SASRec module, so import this package inside asset
functions.
"""

from ml.recommend.base import Recommender, batched_topk, topk_from_scores
from ml.recommend.baselines import EASE, ItemKNN, Popularity
from ml.recommend.blend import Blend, blend_grid, blend_ranks, to_probabilities
from ml.recommend.coldstart import ContentKNN, SegmentPopularity, attribute_matrix, text_features
from ml.recommend.data import LeaveOneOut, Sequences, read_sequence_file, validation_users
from ml.recommend.metrics import evaluate, metrics_from_ranks, target_ranks
from ml.recommend.sasrec import SASRec, SASRecConfig
from ml.recommend.transition import Transition

__all__ = [
    "EASE",
    "Blend",
    "ContentKNN",
    "ItemKNN",
    "LeaveOneOut",
    "Popularity",
    "Recommender",
    "SASRec",
    "SASRecConfig",
    "SegmentPopularity",
    "Sequences",
    "Transition",
    "attribute_matrix",
    "batched_topk",
    "blend_grid",
    "blend_ranks",
    "evaluate",
    "metrics_from_ranks",
    "read_sequence_file",
    "target_ranks",
    "text_features",
    "to_probabilities",
    "topk_from_scores",
    "validation_users",
]
