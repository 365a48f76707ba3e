"""Who gets a message, from which campaign, with which offer: the playbook, caps and opt-outs.

The playbook (first match wins, in this order):

1. ``member_perks``: frequent high-value customers (F and M scores both at least ``high_value_score``, i.e. the
   top two fifths of buyers on orders and on spend over 365 days): free delivery, no discount;
2. ``win_back``: lapsing customers (lifecycle ``at_risk``: last purchase 31-90 days ago, or visits without a
   purchase): ``win_back_pct`` off;
3. ``welcome``: new customers (first seen within 30 days): ``welcome_pct`` off;
4. ``discount``: price-sensitive customers (the share of their units bought on discount is at or above the
   ``price_sensitive_quantile`` of the day's buyers, and above zero): ``discount_pct`` off.

Thresholds that depend on the shop (how price-sensitive is "price-sensitive") are quantiles of the day's
profiles, not constants. Nobody who opted out is targeted, and nobody who was sent a message in the
``cap_days`` before the day (a re-run of a day does not count its own earlier messages).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ml.marketing.facts import Offer

CAMPAIGNS: tuple[str, ...] = ("member_perks", "win_back", "welcome", "discount")
OFFER_LEVELS: dict[str, float] = {"low": 0.5, "standard": 1.0, "high": 1.5}
"""Offer levels the message policy chooses among: multiples of the campaign's percent off."""


class MarketingSettings(BaseModel):
    """The playbook's knobs (run config of the ``marketing/messages`` asset)."""

    model_config = ConfigDict(frozen=True)

    cap_days: int = Field(
        default=7, ge=1, description="At most one message per customer in any cap_days days."
    )
    high_value_score: int = Field(
        default=4, ge=1, le=5, description="Member perks need F and M scores both at least this (1..5)."
    )
    price_sensitive_quantile: float = Field(
        default=0.75,
        gt=0,
        lt=1,
        description="Price-sensitive: share of units bought on discount at or above this quantile of the day's.",
    )
    welcome_pct: int = Field(default=10, ge=0, le=90, description="Welcome offer, percent off.")
    win_back_pct: int = Field(default=15, ge=0, le=90, description="Win-back offer, percent off.")
    discount_pct: int = Field(default=20, ge=0, le=90, description="Discount offer, percent off.")
    offer_days: int = Field(
        default=7, ge=1, description="An offer is valid from the send day through this many days."
    )
    featured_items: int = Field(default=3, ge=1, le=10, description="Products featured per message.")
    arm_policy: str = Field(
        default="learnt",
        description="Which policy draws each message's template family and offer level: 'learnt' (the serving "
        "policy of marketing/message_policy), 'uniform', or one fixed arm such as 'plain/standard' "
        "(family/level, level one of low, standard, high). A benchmark's or an ops override.",
    )

    def offer(self, campaign: str, day: date, level: str = "standard") -> Offer:
        """The campaign's offer at an offer ``level`` (a multiple of its percent off, rounded to a whole
        percent; member perks have one level)."""
        expires = day + timedelta(days=self.offer_days)
        if campaign == "member_perks":
            return Offer("member_perk", 0, expires)
        pct = {"win_back": self.win_back_pct, "welcome": self.welcome_pct, "discount": self.discount_pct}[
            campaign
        ]
        return Offer("percent_off", min(90, round(pct * OFFER_LEVELS[level])), expires)


def assign_campaigns(profiles: pd.DataFrame, settings: MarketingSettings) -> pd.DataFrame:
    """``customer_id, campaign, rule`` for every profile the playbook selects (``rule`` states the facts that
    matched, in words a marketer reads)."""
    p = profiles
    high = settings.high_value_score
    frequent_valuable = (p["f_score"].fillna(0) >= high) & (p["m_score"].fillna(0) >= high)
    lapsing = p["lifecycle_stage"] == "at_risk"
    new = p["lifecycle_stage"] == "new"
    share = p["discount_share_365d"]
    buyers = share.dropna()
    cut = float(np.quantile(buyers, settings.price_sensitive_quantile)) if len(buyers) else np.inf
    sensitive = share.notna() & (share >= cut) & (share > 0)
    campaign = np.select([frequent_valuable, lapsing, new, sensitive], list(CAMPAIGNS), default="").astype(
        object
    )
    rules = {
        "member_perks": lambda r: f"F score {int(r.f_score)} and M score {int(r.m_score)} are both >= {high}",
        "win_back": lambda r: f"lifecycle stage at_risk (last purchase {_days(r.recency_days)} days ago)",
        "welcome": lambda r: "lifecycle stage new (first seen within 30 days)",
        "discount": lambda r: (
            f"{r.discount_share_365d:.0%} of units bought on discount, at or above the day's "
            f"{settings.price_sensitive_quantile:.0%} quantile ({cut:.0%})"
        ),
    }
    chosen = p.assign(campaign=campaign)[campaign != ""]
    return pd.DataFrame(
        {
            "customer_id": chosen["customer_id"].astype(str).to_numpy(),
            "campaign": chosen["campaign"].to_numpy(),
            "rule": [rules[c](r) for c, r in zip(chosen["campaign"], chosen.itertuples(), strict=True)],
        }
    )


def _days(value) -> str:
    return "no" if value is None or pd.isna(value) else str(int(value))


def apply_caps_and_opt_outs(
    targets: pd.DataFrame, capped: set[str], opted_out: set[str]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop the targets who opted out or are within the frequency cap (``capped``: the customers messaged in the
    cap's window, :func:`ml.marketing.messages.capped_customers`). Returns the kept targets and how many each
    rule removed (an opted-out customer counts once, as an opt-out)."""
    is_out = targets["customer_id"].isin(opted_out)
    is_capped = ~is_out & targets["customer_id"].isin(capped)
    kept = targets[~is_out & ~is_capped].reset_index(drop=True)
    return kept, {"opted_out": int(is_out.sum()), "frequency_capped": int(is_capped.sum())}
