"""Syntetos–Boylan demand classification (ADI / CV²): smooth, erratic, intermittent, lumpy.

Which model works depends on the demand pattern: level-following methods suit smooth SKUs, Croston-type methods
intermittent ones, and nothing predicts lumpy SKUs well. The class is computed on the training history only (from
the series' first period to the origin) and is used to route/weight models in the ensemble and to break the
benchmark down.

- ADI (average demand interval) = periods in the history / periods with demand;
- CV² = squared coefficient of variation (population std / mean) of the non-zero demand sizes;
- cut-offs 1.32 (ADI) and 0.49 (CV²) from Syntetos, Boylan & Croston (2005).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.forecast.panel import Panel

ADI_CUT = 1.32
CV2_CUT = 0.49
CLASSES = ("smooth", "erratic", "intermittent", "lumpy")


def adi_cv2(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ADI and CV² per row of ``y`` (NaN = before the series started). Rows without demand get ADI = inf."""
    live = ~np.isnan(y)
    pos = live & (y > 0)
    n_live = live.sum(axis=1)
    n_pos = pos.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        adi = np.where(n_pos > 0, n_live / np.maximum(n_pos, 1), np.inf)
        sizes = np.where(pos, y, np.nan)
        m = np.nanmean(np.where(n_pos[:, None] > 0, sizes, 0.0), axis=1)
        s = np.nanstd(np.where(n_pos[:, None] > 0, sizes, 0.0), axis=1)
        cv2 = np.where(m > 0, (s / m) ** 2, 0.0)
    return adi, cv2


def classify(adi: np.ndarray, cv2: np.ndarray) -> np.ndarray:
    """Class name per series from ADI and CV²."""
    inter = np.asarray(adi) >= ADI_CUT
    var = np.asarray(cv2) >= CV2_CUT
    out = np.where(inter, np.where(var, "lumpy", "intermittent"), np.where(var, "erratic", "smooth"))
    return out.astype(object)


def classify_panel(panel: Panel) -> pd.DataFrame:
    """``unique_id, adi, cv2, demand_class`` for every series of ``panel`` (its whole history)."""
    adi, cv2 = adi_cv2(panel.y)
    return pd.DataFrame({"unique_id": panel.ids, "adi": adi, "cv2": cv2, "demand_class": classify(adi, cv2)})
