"""Daily aggregates for partners (channel, region and segment statistics), released with differential privacy.

What a partner gets for a day, per dimension (``channel``, ``region``, ``segment``) and value: the customers who
ordered, their orders and their revenue. Each is released with differential privacy, so that
what any one customer did that day changes the odds of any release by at most ``exp(epsilon)``. The mechanisms
and the privacy loss of each release come from the OpenDP library (``opendp``, its ``contrib`` features: the
Laplace mechanism over integers, which is the discrete Laplace, and over floats):

- **One cell per customer and dimension.** A customer-day counts in one cell of each dimension: their region and
  segment, and the channel that brought most of their day's revenue. The cells of a dimension are disjoint, so
  their releases compose in parallel: a dimension costs its statistics' epsilons once, not once per cell.
- **Bounded contributions.** A customer-day adds 1 customer, at most :attr:`PrivacySettings.max_orders` orders and
  at most :attr:`PrivacySettings.max_revenue` of revenue (larger days are clipped before summing): these are the
  sensitivities the noise is scaled to.
- **The budget.** ``epsilon_per_day`` is split evenly over the 3 statistics x 3 dimensions (sequential
  composition): each release gets ``epsilon_per_day / 9``, and the loss OpenDP computes for each
  (``measurement.map``) is what the day's accounting adds up. Counts get discrete Laplace noise (integers stay
  integers), revenue continuous Laplace noise; negative releases are floored at zero (post-processing, no extra
  cost).
- **Small counts.** A cell whose *noisy* customer count is below ``min_customers`` is suppressed (not released,
  counted in the day's metadata): a small cell is where noise is largest relative to the truth. Deciding on the
  noisy count keeps the rule itself private.
- **Re-runs.** Fresh noise on every re-run would let a partner average draws of one day, so a day whose data
  has not changed keeps its first release (the asset compares a fingerprint of the exact cells) and spends
  nothing more; a day restated by late data is released again and spends again, within a ledger cap
  (:func:`may_release`).
"""

from __future__ import annotations

import hashlib

import pandas as pd
from pydantic import BaseModel, Field

DIMENSIONS = ("channel", "region", "segment")
STATISTICS = ("customers", "orders", "revenue")


class PrivacySettings(BaseModel):
    """The day's privacy budget and the bounds that make the statistics' sensitivities finite."""

    epsilon_per_day: float = Field(
        default=1.0, gt=0, description="Privacy budget of one day's release, split over its 9 statistics."
    )
    max_epsilon_per_day_total: float = Field(
        default=2.0,
        gt=0,
        description="Cap on the epsilon of every release of one day together (room for one restatement).",
    )
    max_orders: int = Field(default=3, ge=1, description="Orders a customer-day contributes at most.")
    max_revenue: float = Field(default=500.0, gt=0, description="Revenue a customer-day contributes at most.")
    min_customers: int = Field(
        default=10, ge=0, description="Cells with fewer noisy customers are suppressed, not released."
    )

    def epsilon_per_release(self) -> float:
        return self.epsilon_per_day / (len(DIMENSIONS) * len(STATISTICS))

    def sensitivity(self, statistic: str) -> float:
        return {"customers": 1.0, "orders": float(self.max_orders), "revenue": float(self.max_revenue)}[
            statistic
        ]

    def noise_scale(self, statistic: str) -> float:
        """The Laplace scale of ``statistic``'s release: sensitivity / epsilon."""
        return self.sensitivity(statistic) / self.epsilon_per_release()


def customer_days(orders: pd.DataFrame, segments: pd.DataFrame | None) -> pd.DataFrame:
    """One row per customer and day with its (clipped later) orders and revenue and its cell in each dimension.

    ``orders``: ``order_date, customer_id, channel, region, order_total`` (guest orders without a customer id
    are left out: they cannot be bounded per person); ``segments``: ``customer_id, segment`` (missing: the
    segment is ``unsegmented``)."""
    known = orders.dropna(subset=["customer_id"])
    if known.empty:
        return pd.DataFrame(columns=["order_date", "customer_id", "orders", "revenue", *DIMENSIONS])
    by_channel = (
        known.groupby(["order_date", "customer_id", "channel"], as_index=False)["order_total"]
        .sum()
        .sort_values(
            ["order_date", "customer_id", "order_total", "channel"], ascending=[True, True, False, True]
        )
        .drop_duplicates(["order_date", "customer_id"])
    )
    days = known.groupby(["order_date", "customer_id"], as_index=False).agg(
        orders=("order_total", "size"), revenue=("order_total", "sum"), region=("region", "last")
    )
    days = days.merge(by_channel[["order_date", "customer_id", "channel"]], on=["order_date", "customer_id"])
    seg = (
        segments[["customer_id", "segment"]].drop_duplicates("customer_id")
        if segments is not None
        else pd.DataFrame(columns=["customer_id", "segment"])
    )
    days = days.merge(seg, on="customer_id", how="left")
    days["segment"] = days["segment"].fillna("unsegmented")
    days["region"] = days["region"].fillna("unknown")
    return days


def true_cells(days: pd.DataFrame, settings: PrivacySettings) -> pd.DataFrame:
    """The exact statistics per (dimension, value), contributions clipped to the settings' bounds."""
    clipped = days.assign(
        orders=days["orders"].clip(upper=settings.max_orders),
        revenue=days["revenue"].clip(lower=0.0, upper=settings.max_revenue),
    )
    frames = []
    for dim in DIMENSIONS:
        g = clipped.groupby(dim, as_index=False).agg(
            customers=("customer_id", "size"), orders=("orders", "sum"), revenue=("revenue", "sum")
        )
        frames.append(g.rename(columns={dim: "value"}).assign(dimension=dim))
    cols = ["dimension", "value", *STATISTICS]
    return pd.concat(frames, ignore_index=True)[cols] if frames else pd.DataFrame(columns=cols)


def fingerprint(cells: pd.DataFrame) -> str:
    """A hash of the exact cells: equal when a re-run sees the same data (then the earlier release stands)."""
    ordered = cells.sort_values(["dimension", "value"]).reset_index(drop=True)
    return hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).values.tobytes()).hexdigest()[:16]


def may_release(spent_before: float, settings: PrivacySettings) -> bool:
    """Whether one more release of a day fits the day's total cap, given what earlier releases spent."""
    return spent_before + settings.epsilon_per_day <= settings.max_epsilon_per_day_total + 1e-9


def mechanism(statistic: str, settings: PrivacySettings):
    """The OpenDP measurement of one statistic's release: Laplace with scale = sensitivity / epsilon."""
    import opendp.prelude as dp  # a slow import: only when a release is made, not when the definitions load

    dp.enable_features("contrib")
    scale = settings.noise_scale(statistic)
    if statistic == "revenue":
        return dp.m.make_laplace(
            dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float), scale=scale
        )
    return dp.m.make_laplace(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=scale)


def privacy_loss(statistic: str, settings: PrivacySettings) -> float:
    """The epsilon OpenDP accounts for one release of ``statistic`` (a customer-day moves it by its sensitivity)."""
    sens = settings.sensitivity(statistic)
    return float(mechanism(statistic, settings).map(sens if statistic == "revenue" else int(sens)))


def release(cells: pd.DataFrame, settings: PrivacySettings) -> tuple[pd.DataFrame, dict]:
    """Noisy statistics of every cell (the suppressed ones dropped) and the day's accounting."""
    out = cells.copy()
    for stat in STATISTICS:
        meas = mechanism(stat, settings)
        if stat == "revenue":
            out[stat] = [max(0.0, float(meas(float(v)))) for v in out[stat]]
        else:
            out[stat] = [max(0, int(meas(int(v)))) for v in out[stat]]
    keep = out["customers"] >= settings.min_customers
    released = out[keep].reset_index(drop=True)
    # parallel composition inside a dimension (disjoint cells), sequential across dimensions and statistics
    per_statistic = {s: privacy_loss(s, settings) for s in STATISTICS}
    spent = len(DIMENSIONS) * sum(per_statistic.values()) if len(cells) else 0.0
    accounting = {
        "epsilon_spent": round(spent, 6),
        "epsilon_per_release": {s: round(v, 6) for s, v in per_statistic.items()},
        "noise_scale": {s: round(settings.noise_scale(s), 4) for s in STATISTICS},
        "cells": int(len(cells)),
        "cells_released": int(keep.sum()),
        "cells_suppressed": int((~keep).sum()),
    }
    return released, accounting
