"""The category pages the closed-loop shop front shows to sessions browsing a category.

The platform publishes ``category_rankings`` (:mod:`ml.search.category_pages`): a ranked page per category and
segment, and the bestseller ordering. The front shows a browsing session the first :data:`PAGE_ITEMS` products of
the page of its customer's arm (:func:`~ml.search.category_pages.page_arms`): treatment, the ranked page of the
customer's segment re-ordered for the customer (:func:`~ml.search.category_pages.personalise`, from the
``search_profiles`` export, as ``GET /category/{category}`` does); control, the bestsellers. Each page shown is
logged as impressions at the ``category_page`` placement with its list id, version and arm, so the online metrics
compare the two orderings on the same days.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from ml.exports import latest_exported_day, read_export
from ml.recommend.experiment import CONTROL, list_ids
from ml.search.catalogue import PROFILES_EXPORT
from ml.search.category_pages import ANONYMOUS, BESTSELLERS, EXPORT, RANKED, personalise
from ml.sources.simulated import CATEGORIES, World

PAGE_ITEMS = 10
"""How many products of a category page a browsing session is shown (the first screen of the grid)."""


def latest_pages(exports_root, day: date) -> tuple[pd.DataFrame, date] | None:
    """The newest ``category_rankings`` published before ``day`` (as the lists: at most a week old) and its as-of
    day; ``None`` when there is none or it predates the bestseller ordering."""
    as_of = latest_exported_day(exports_root, EXPORT, day - timedelta(days=1))
    pages = read_export(exports_root, EXPORT, as_of) if as_of is not None else None
    if pages is None or pages.empty or "ordering" not in pages:
        return None
    return pages, as_of


class CategoryPages:
    """What a browsing session sees; called by the traffic simulation as ``ShopFront.category_page``."""

    def __init__(
        self,
        world: World,
        pages: pd.DataFrame,
        as_of: date,
        profiles: pd.DataFrame | None,
        arms: np.ndarray,
        day: date,
        items: int = PAGE_ITEMS,
    ) -> None:
        self.world, self.day, self.items, self.arms = world, day, items, arms
        n_customers, n_products = world.spec.n_customers, len(world.skus)
        self.n_products = n_products
        pages = pages.assign(
            cat=pd.Index(CATEGORIES).get_indexer(pages["category"].astype(str)),
            product=pd.Index(world.skus).get_indexer(pages["sku"].astype(str)),
        )
        pages = pages[(pages["cat"] >= 0) & (pages["product"] >= 0)]
        self.versions = {RANKED: f"category_pages-{as_of.isoformat()}", BESTSELLERS: f"bestsellers-{as_of}"}
        # control: one page per category, the same for everyone
        self.bestsellers = np.full((len(CATEGORIES), items), -1, dtype=np.int64)
        best = pages[(pages["ordering"] == BESTSELLERS) & (pages["rank"] <= items)]
        self.bestsellers[best["cat"].to_numpy(), best["rank"].to_numpy() - 1] = best["product"].to_numpy()
        self.ranked = pages.loc[
            pages["ordering"] == RANKED, ["cat", "segment_id", "rank", "product", "price_band", "score"]
        ]
        self.ranked_pages = set(zip(self.ranked["cat"], self.ranked["segment_id"], strict=True))
        # the customer facts the API personalises with
        self.segment = np.full(n_customers, ANONYMOUS, dtype=np.int64)
        self.price_band = np.full(n_customers, None, dtype=object)
        self.viewed = np.empty(0, dtype=np.int64)
        if profiles is not None and len(profiles):
            cust = pd.Index(world.customer_ids).get_indexer(profiles["customer_id"].astype(str))
            known = cust >= 0
            profiles, cust = profiles[known], cust[known]
            if "segment_id" in profiles:
                self.segment[cust] = profiles["segment_id"].fillna(ANONYMOUS).astype(np.int64).to_numpy()
            self.price_band[cust] = profiles["preferred_price_band"].to_numpy(object)
            views = pd.DataFrame({"cust": cust, "sku": profiles["recently_viewed"].to_numpy()}).explode("sku")
            views = views.dropna()
            product = pd.Index(world.skus).get_indexer(views["sku"].astype(str))
            keep = product >= 0
            self.viewed = np.unique(views["cust"].to_numpy(np.int64)[keep] * n_products + product[keep])

    def __call__(self, customers: np.ndarray, categories: np.ndarray) -> tuple[np.ndarray, ...]:
        """For sessions of ``customers`` browsing ``categories`` (positions): products shown (sessions x
        :data:`PAGE_ITEMS`, -1 where the page is shorter), and per session list id, version and arm."""
        n = len(customers)
        shown = np.full((n, self.items), -1, dtype=np.int64)
        arm = self.arms[customers]
        control = arm == CONTROL
        shown[control] = self.bestsellers[categories[control]]
        treated = np.flatnonzero(~control)
        if len(treated):
            shown[treated] = self._personal_pages(customers[treated], categories[treated])
        version = np.where(control, self.versions[BESTSELLERS], self.versions[RANKED]).astype(object)
        customer_ids = self.world.customer_ids[customers]
        page_versions = [f"{v}:{CATEGORIES[c]}" for v, c in zip(version, categories, strict=True)]
        return shown, list_ids(self.day.isoformat(), customer_ids, page_versions), version, arm

    def _personal_pages(self, customers: np.ndarray, categories: np.ndarray) -> np.ndarray:
        segment = self.segment[customers]
        has_page = np.array(
            [(c, s) in self.ranked_pages for c, s in zip(categories, segment, strict=True)], dtype=bool
        )
        sessions = pd.DataFrame(
            {
                "session": np.arange(len(customers)),
                "customer": customers,
                "cat": categories,
                "segment_id": np.where(has_page, segment, ANONYMOUS),
            }
        )
        rows = sessions.merge(self.ranked, on=["cat", "segment_id"], how="inner")
        band = self.price_band[rows["customer"].to_numpy()]
        in_band = (rows["price_band"].to_numpy(object) == band) & pd.notna(band)
        keys = rows["customer"].to_numpy(np.int64) * self.n_products + rows["product"].to_numpy(np.int64)
        viewed = np.isin(keys, self.viewed)
        rows = personalise(rows, in_band, viewed, by=["session"])
        rows = rows[rows["rank"] <= self.items]
        out = np.full((len(customers), self.items), -1, dtype=np.int64)
        out[rows["session"].to_numpy(), rows["rank"].to_numpy() - 1] = rows["product"].to_numpy()
        return out


def category_pages_for(world: World, exports_root, day: date, arms: np.ndarray) -> CategoryPages | None:
    """The pages the shop shows on ``day`` (from the exports published before it), or ``None``."""
    latest = latest_pages(exports_root, day)
    if latest is None:
        return None
    pages, as_of = latest
    profiles = read_export(exports_root, PROFILES_EXPORT, as_of)
    return CategoryPages(world, pages, as_of, profiles, arms, day)
