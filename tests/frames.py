"""Frame comparisons for tests of logs with categorical ids."""

from __future__ import annotations

import numpy as np
import pandas as pd


def assert_same_frame(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """``pd.testing.assert_frame_equal`` with categorical columns compared by their categories and codes (the same
    verdict: equal categories and codes are equal values in the same order).

    pandas compares two categoricals of Arrow strings value by value in Python, which is slow on an event log;
    this compares them as arrays."""
    assert list(left.columns) == list(right.columns)
    pd.testing.assert_index_equal(left.index, right.index)
    categorical = [c for c in left.columns if isinstance(left[c].dtype, pd.CategoricalDtype)]
    for column in categorical:
        assert isinstance(right[column].dtype, pd.CategoricalDtype), column
        a, b = left[column].cat, right[column].cat
        assert a.ordered == b.ordered, column
        np.testing.assert_array_equal(a.categories.to_numpy(), b.categories.to_numpy(), err_msg=column)
        np.testing.assert_array_equal(a.codes.to_numpy(), b.codes.to_numpy(), err_msg=column)
    plain = [c for c in left.columns if c not in categorical]
    pd.testing.assert_frame_equal(left[plain], right[plain])
