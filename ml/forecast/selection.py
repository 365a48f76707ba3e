"""A model selection made once a period and kept: the weekly selection of the full forecast.

Selecting the full ensemble costs about a minute on Online Retail's SKUs; updating a selected model with one more
day costs a second. :func:`stored_selection` selects on a fixed grid of anchor days (Mondays) and keeps the
fitted model in an :class:`ml.artifacts.ArtifactStore`, keyed by the anchor, the model and a fingerprint of the
history it was fitted on.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from ml.artifacts import ArtifactStore
from ml.forecast.base import Forecaster, ShortHistoryError
from ml.forecast.panel import DS, ID, to_panel

SELECTION_EPOCH = pd.Timestamp("2000-01-03")  # a Monday: weekly selections fall on Mondays


def selection_anchor(as_of, every_days: int = 7) -> pd.Timestamp:
    """The day whose model selection serves day ``as_of``: the last day on or before it on a fixed grid of
    ``every_days`` (Mondays for 7). A fixed grid, not "the newest selection on disk", so a partition gives the
    same forecast whatever order runs and backfills happen in."""
    days = (pd.Timestamp(as_of).normalize() - SELECTION_EPOCH).days
    return SELECTION_EPOCH + pd.Timedelta(days=(days // every_days) * every_days)


def history_fingerprint(demand: pd.DataFrame, up_to) -> str:
    """A short hash of the demand rows dated on or before ``up_to`` (order of rows and columns ignored): what a
    stored selection was fitted on, so a selection is only reused for the same history."""
    part = demand[demand[DS] <= pd.Timestamp(up_to)]
    part = part[sorted(part.columns)].sort_values([ID, DS], kind="mergesort")
    hashes = pd.util.hash_pandas_object(part, index=False).to_numpy()
    return hashlib.sha256(hashes.tobytes()).hexdigest()[:12]


SELECTIONS = "forecast_selections"
"""The artifact kind of stored selections: ``selection-<anchor>-<model>-<fingerprint>.pkl``."""


def stored_selection(
    model: Forecaster, demand: pd.DataFrame, as_of, store: ArtifactStore, every_days: int = 7
) -> tuple[Forecaster, pd.Timestamp, dict]:
    """``model`` selected and trained on the demand up to the selection anchor of ``as_of`` (loaded from
    ``store`` when an earlier day of the period already did it on the same history, else fitted and saved
    there), then updated with the demand up to ``as_of`` (``Forecaster.update``). Returns ``(model, anchor, info)``,
    ``info``: ``reused`` (loaded from the store), ``history`` (the fingerprint), ``replaced`` (how many stored
    selections of the same anchor, fitted on another history, the new one replaced) and ``artifact`` (path, size,
    hash of the stored selection).

    The stored artifact is keyed by the anchor, the model and :func:`history_fingerprint` of the demand up to the
    anchor. Why the fingerprint: when the history changes (late data re-landed, a mart rebuilt under a new rule
    such as net demand) a selection keyed by the day alone would keep serving models trained on the old history
    until its week ended. A new selection replaces the stale ones of the same anchor and model.

    Everything it reads is dated on or before ``as_of``: the anchor is never after it.
    """
    import warnings

    anchor = selection_anchor(as_of, every_days)
    if demand.empty or demand[DS].min() > anchor:
        raise ShortHistoryError(f"no demand on or before the selection day {anchor.date()}")
    stem = f"selection-{anchor.date()}-{model.name}"
    fingerprint = history_fingerprint(demand, anchor)
    name = f"{stem}-{fingerprint}.pkl"
    stored = None
    if store.exists(SELECTIONS, name):
        try:
            stored = store.load_pickle(SELECTIONS, name)
        except Exception as exc:  # damaged, or pickled by code that has changed since: select again
            warnings.warn(
                f"{name} could not be loaded ({type(exc).__name__}: {exc}); selecting again", stacklevel=2
            )
    if stored is not None and tuple(stored.quantiles) != tuple(model.quantiles):
        # selected for other quantile levels: its calibration cannot serve these, so select again
        stored = None
    reused, replaced = stored is not None, 0
    if reused:
        model = stored
        info = store.info(SELECTIONS, name)
    else:
        model.fit(demand, origin=anchor)
        info = store.save_pickle(SELECTIONS, name, model.for_storage())
        for stale in store.names(SELECTIONS):
            if stale.startswith(f"{stem}-") and stale != name:
                store.delete(SELECTIONS, stale)
                replaced += 1
    covs = tuple(c for c in model.covariates if c in demand.columns)
    model.update(to_panel(demand, covariates=covs, origin=pd.Timestamp(as_of)))
    return (
        model,
        anchor,
        {"reused": reused, "history": fingerprint, "replaced": replaced, "artifact": info.as_metadata()},
    )
