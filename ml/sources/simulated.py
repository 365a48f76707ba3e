"""A seeded, deterministic simulated web store: the embedded default source.

Why simulate: a model can only be checked against the truth if the truth is known. The store draws a static
*world* (categories, brands, products with text and suppliers, customers with latent tastes and price
sensitivity, warehouses) from ``(seed, scale)``, then generates each day's traffic from that world:
sessions -> views -> carts -> purchases -> orders, plus promotions and an end-of-day inventory snapshot.
Tests read the ground truth from :attr:`SimulatedStore.world` (e.g. ``true_category_affinity``) and check
that what the platform recovers from the files agrees with it.

Determinism and independence of days: day ``D`` depends only on ``(seed, scale, D)``. Its random numbers come
from ``np.random.default_rng([seed, scale_index, D.toordinal()])``; the static world has its own stream; the
promotion calendar is drawn per week from ``[seed, scale_index, 1, week]``; and inventory, which would normally
need the whole history, is a closed-form sawtooth whose random demand shocks are counter-based hashes of
``(seed, sku, warehouse, cycle)``. So any day can be (re)built alone, in any order, with identical bytes.

Speed: everything is vectorised with numpy (no Python loop per customer, session or event); the only loops
run over categories, candidates or a few promotions. A medium day (~500k events) builds and writes in a few
seconds; ``large`` only multiplies the counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.sources import Source, empty_table, logistics
from ml.sources.schema import (
    ALL_CHANNELS,
    CONTRACTS,
    DEVICES,
    EVENT_TYPES,
    OPEN_LOOP_TABLES,
    ORDER_STATUSES,
    PLACEMENTS,
    SHOP_CHANNELS,
)

START_DATE = date(2025, 1, 1)
CURRENCY = "GBP"
_US_PER_S = 1_000_000
_DAY_US = 86_400 * _US_PER_S
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ScaleSpec:
    """Sizes of one scale. ``events_per_day`` is the target for an ordinary weekday outside the peak."""

    index: int
    n_customers: int
    n_products: int
    events_per_day: int
    n_suppliers: int
    n_warehouses: int
    brands_per_category: int


SCALES: dict[str, ScaleSpec] = {
    "small": ScaleSpec(0, 2_000, 500, 20_000, 20, 3, 5),
    "medium": ScaleSpec(1, 50_000, 10_000, 500_000, 200, 5, 15),
    "large": ScaleSpec(2, 500_000, 100_000, 5_000_000, 2_000, 8, 40),
}

# --------------------------------------------------------------------------------------------------------------
# Vocabulary. Category-specific nouns and attribute words make titles and descriptions informative, so that
# text features (TF-IDF, embeddings) can later tell categories and brands apart.
# --------------------------------------------------------------------------------------------------------------

# fmt: off
# name: (median list price in GBP, nouns, attribute words, use phrase)
_CATEGORY_SPEC: dict[str, tuple[float, list[str], list[str], str]] = {
    "skincare": (18.0, ["serum", "moisturiser", "cleanser", "toner", "face mask", "sunscreen", "eye cream"],
                 ["hydrating", "vitamin c", "hyaluronic", "fragrance-free", "spf 30", "retinol", "gentle"],
                 "a calm daily skincare routine"),
    "haircare": (12.0, ["shampoo", "conditioner", "hair oil", "hair mask", "styling gel", "dry shampoo"],
                 ["sulphate-free", "argan", "volumising", "keratin", "curl-defining", "anti-frizz"],
                 "healthy, shiny hair"),
    "makeup": (15.0, ["lipstick", "mascara", "foundation", "eyeliner", "blush", "concealer", "palette"],
               ["matte", "long-wear", "waterproof", "buildable", "shimmer", "vegan"],
               "an everyday or evening look"),
    "fragrance": (45.0, ["eau de parfum", "eau de toilette", "body mist", "cologne", "perfume oil"],
                  ["floral", "woody", "citrus", "musk", "amber", "fresh"],
                  "a signature scent"),
    "kitchen": (25.0, ["frying pan", "saucepan", "chef knife", "chopping board", "mixing bowl", "kettle"],
                ["non-stick", "stainless steel", "cast iron", "dishwasher-safe", "induction-ready", "bamboo"],
                "home cooking"),
    "home_decor": (30.0, ["vase", "candle", "picture frame", "mirror", "cushion", "table lamp", "rug"],
                   ["scandi", "ceramic", "brass", "hand-made", "minimalist", "velvet"],
                   "a cosy living room"),
    "bedding": (40.0, ["duvet", "pillow", "sheet set", "mattress topper", "throw", "blanket"],
                ["cotton", "linen", "hypoallergenic", "king size", "breathable", "thermal"],
                "a better night's sleep"),
    "garden": (22.0, ["planter", "hose", "pruner", "seed kit", "bird feeder", "garden light"],
               ["weatherproof", "solar", "organic", "frost-resistant", "terracotta", "ergonomic"],
               "balconies and gardens"),
    "tools": (35.0, ["drill", "screwdriver set", "hammer", "tape measure", "spirit level", "wrench"],
              ["cordless", "18v", "magnetic", "heavy-duty", "precision", "chrome vanadium"],
              "DIY and repairs"),
    "electronics": (120.0, ["headphones", "speaker", "smartwatch", "tablet", "e-reader", "webcam"],
                    ["bluetooth", "noise-cancelling", "4k", "wireless", "usb-c", "long battery"],
                    "work and entertainment"),
    "phone_accessories": (15.0, ["phone case", "charger", "screen protector", "power bank", "cable", "mount"],
                          ["fast-charging", "magsafe", "shockproof", "tempered glass", "braided", "slim"],
                          "your smartphone"),
    "toys": (20.0, ["building set", "puzzle", "plush toy", "board game", "doll", "remote car"],
             ["educational", "wooden", "age 3+", "stem", "collectible", "battery-powered"],
             "playtime and family evenings"),
    "books": (12.0, ["novel", "cookbook", "biography", "travel guide", "picture book", "thriller"],
              ["paperback", "hardback", "bestseller", "illustrated", "award-winning", "signed"],
              "curling up with a good read"),
    "sports": (30.0, ["yoga mat", "dumbbell", "resistance band", "football", "tennis racket", "skipping rope"],
               ["non-slip", "adjustable", "lightweight", "pro-grade", "anti-burst", "sweat-wicking"],
               "training at home or in the gym"),
    "outdoor": (50.0, ["tent", "backpack", "sleeping bag", "head torch", "water bottle", "camping stove"],
                ["waterproof", "ultralight", "insulated", "packable", "rechargeable", "windproof"],
                "hiking and camping trips"),
    "pet_supplies": (14.0, ["dog food", "cat litter", "pet bed", "chew toy", "lead", "scratching post"],
                     ["grain-free", "odour-control", "orthopaedic", "durable", "reflective", "natural"],
                     "happy cats and dogs"),
    "baby": (20.0, ["nappies", "baby wipes", "bottle", "teether", "baby monitor", "sleepsuit"],
             ["bpa-free", "organic cotton", "sensitive", "newborn", "anti-colic", "soft"],
             "newborns and toddlers"),
    "grocery": (5.0, ["coffee beans", "olive oil", "granola", "green tea", "dark chocolate", "pasta"],
                ["fairtrade", "organic", "gluten-free", "single-origin", "extra virgin", "wholegrain"],
                "the weekly shop"),
    "apparel": (28.0, ["t-shirt", "hoodie", "jeans", "dress", "jacket", "jumper"],
                ["slim fit", "oversized", "merino", "recycled", "stretch", "organic cotton"],
                "everyday wear"),
    "footwear": (60.0, ["trainers", "boots", "sandals", "loafers", "running shoes", "slippers"],
                 ["leather", "cushioned", "waterproof", "vegan", "breathable", "wide fit"],
                 "comfort on the move"),
}
CATEGORIES: tuple[str, ...] = tuple(_CATEGORY_SPEC)
_ADJECTIVES = ["classic", "premium", "essential", "compact", "deluxe", "everyday", "eco", "pro", "mini",
               "signature", "original", "ultra"]
_BRAND_HEADS = ["Lum", "Nor", "Vel", "Ast", "Bri", "Cor", "Dal", "Eri", "Fen", "Gal", "Hal", "Ivo", "Jun",
                "Kel", "Lor", "Mar", "Nov", "Ori", "Pel", "Quin", "Ros", "Sol", "Tal", "Ul", "Var", "Wil",
                "Xan", "Yor", "Zen", "Bel"]
_BRAND_TAILS = ["ora", "vex", "ina", "ton", "ley", "ric", "ano", "elle", "ix", "umo", "ara", "ent", "ova",
                "iq", "ash", "wood", "lux", "ette", "ium", "era", "and", "ock", "ima", "is", "une", "ato",
                "ery", "ax", "elo", "ine"]
_SUPPLIER_SUFFIX = ["Ltd", "Trading", "Supply", "Wholesale", "Manufacturing", "Goods"]
# Supplier countries with a lead-time range in days: far away means a longer lead time.
_SUPPLIER_COUNTRIES = [("GB", 2, 6), ("DE", 4, 10), ("PL", 4, 10), ("IT", 5, 12), ("US", 8, 16),
                       ("CN", 15, 30), ("IN", 14, 28), ("VN", 16, 30)]
_SUPPLIER_COUNTRY_P = [0.25, 0.12, 0.1, 0.08, 0.08, 0.22, 0.08, 0.07]
_MOQ = np.array([1, 6, 12, 24, 48, 100])
_FIRST = ["oliver", "amelia", "george", "isla", "harry", "ava", "noah", "mia", "jack", "ivy", "leo", "grace",
          "arthur", "freya", "muhammad", "lily", "oscar", "emily", "charlie", "sophia", "jacob", "ella",
          "thomas", "poppy", "james", "rosie", "william", "evie", "henry", "sienna", "aoife", "sean", "niamh",
          "priya", "arjun", "chloe", "daniel", "hannah", "liam", "zara"]
_LAST = ["smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "patel", "wright",
         "robinson", "thompson", "evans", "walker", "white", "roberts", "green", "hall", "wood", "jackson",
         "clarke", "murphy", "kelly", "obrien", "khan", "singh", "lewis", "hughes", "scott", "campbell"]

REGIONS: tuple[tuple[str, str], ...] = (
    ("london", "GB"), ("south", "GB"), ("midlands", "GB"), ("north", "GB"),
    ("east", "GB"), ("west", "GB"), ("scotland", "GB"), ("ireland", "IE"),
)
_REGION_P = np.array([0.2, 0.15, 0.14, 0.15, 0.1, 0.09, 0.08, 0.09])
# Devices, channels, placements and event types are the contract's vocabularies; the tables below are indexed
# in their order.
_DEVICE_P = np.array([0.4, 0.35, 0.25])
CHANNELS: tuple[str, ...] = SHOP_CHANNELS
# P(channel | device): the app is its own channel; browsers arrive from the web, ads, mail and social.
_CHANNEL_GIVEN_DEVICE = np.array([
    [0.75, 0.00, 0.10, 0.05, 0.10],
    [0.00, 0.40, 0.15, 0.20, 0.25],
    [0.00, 0.50, 0.20, 0.25, 0.05],
])
# Where the first view of a session happens, by channel (ads land on search, mail on recommendations ...).
# Views happen on the first five placements; "cart" is where purchases (checkouts) happen.
_LANDING_GIVEN_CHANNEL = np.array([
    [0.50, 0.20, 0.10, 0.15, 0.05],
    [0.45, 0.15, 0.20, 0.10, 0.10],
    [0.10, 0.00, 0.20, 0.40, 0.30],
    [0.10, 0.70, 0.20, 0.00, 0.00],
    [0.20, 0.00, 0.30, 0.10, 0.40],
])
_LATER_PLACEMENT_P = np.array([0.05, 0.25, 0.35, 0.30, 0.05])
_CART_P_BY_PLACEMENT = np.array([0.05, 0.10, 0.07, 0.09, 0.11])
_CART_MULT_BY_CHANNEL = np.array([1.25, 1.0, 1.1, 0.9, 0.7])
_CHECKOUT_P_BY_CHANNEL = np.array([0.55, 0.45, 0.50, 0.42, 0.30])
_LINE_KEPT_P = 0.85
_CANCEL_P = 0.02
_QTY = np.array([1, 2, 3, 4, 5])
_QTY_P = np.array([0.72, 0.18, 0.06, 0.02, 0.02])
# Share of session starts per UTC hour: quiet nights, a lunch bump and an evening peak.
_HOUR_P = np.array([0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.6, 1.2, 1.8, 2.2, 2.5, 2.8,
                    3.2, 3.1, 2.8, 2.6, 2.6, 2.8, 3.3, 3.8, 4.0, 3.4, 2.3, 1.3])
# fmt: on
_HOUR_P = _HOUR_P / _HOUR_P.sum()
_WEEKDAY_FACTOR = np.array([0.95, 0.93, 0.95, 0.98, 1.02, 1.12, 1.15])  # Monday .. Sunday: weekends up
_MEAN_VIEWS = 7.0
_MAX_VIEWS = 60
_MAX_GAP_S = 300.0
_EVENTS_PER_SESSION = 7.95
"""Measured mean events per session (views + carts + purchases); turns the events target into sessions."""
_PURCHASE_LINES_PER_SESSION = 0.28
"""Measured mean purchase lines per session; sizes the expected demand that inventory plans for."""
_INTENT_P, _SECONDARY_P = 0.80, 0.12  # the rest of the views go to a uniformly random category
_N_CANDIDATES = 4
_REVIEW_DAYS = 7
_SAFETY = 1.35


def _utc_midnight_us(day: date) -> int:
    return int((datetime(day.year, day.month, day.day, tzinfo=UTC) - _EPOCH).total_seconds()) * _US_PER_S


def _categorical(rng: np.random.Generator, cum: np.ndarray, n: int) -> np.ndarray:
    """Draw ``n`` indices from one distribution given by its cumulative sum ``cum`` (last element 1)."""
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(cum) - 1)


def _rowwise_categorical(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Draw one index per element of ``rows`` from the distribution ``probs[rows]`` (rows sum to 1).

    Loops over the (few) columns instead of materialising a rows x columns matrix, which keeps memory flat
    at the large scale.
    """
    u = rng.random(len(rows))
    out = np.zeros(len(rows), dtype=np.int64)
    acc = np.zeros(len(rows))
    for k in range(probs.shape[1] - 1):
        acc += probs[rows, k]
        out += u >= acc
    return out


def _mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijective, well-mixed hash of uint64 values (wraps around on purpose)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash_uniform(*keys: np.ndarray | int) -> np.ndarray:
    """A uniform number in (0, 1) per element, a pure function of the integer keys (counter-based RNG).

    This is what makes inventory computable for any day alone: the shock of a replenishment cycle is a hash of
    its coordinates, not the n-th draw of a stream that would need all earlier days.
    """
    h = np.zeros(np.broadcast(*[np.asarray(k) for k in keys]).shape, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in keys:
            h = _mix64(h ^ np.asarray(k).astype(np.uint64))
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def _pa_strings(values: Iterable[str]) -> pa.Array:
    return pa.array(list(values), type=pa.string())


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` followed by zero-padded ``numbers``, built in Arrow (no Python loop)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), type=pa.timestamp("us", tz="UTC"))


def _table(table_name: str, columns: dict[str, pa.Array]) -> pa.Table:
    schema = CONTRACTS[table_name].schema
    return pa.Table.from_arrays([columns[n] for n in schema.names], schema=schema)


class World:
    """The static part of the store, drawn once from ``(seed, scale)``.

    Arrays are indexed by position (customer ``i`` has id ``customer_ids[i]``). Day offsets count days since
    :data:`START_DATE`. The public properties at the end are the ground truth that tests compare against.
    """

    def __init__(self, scale: str, seed: int) -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; known scales: {', '.join(SCALES)}")
        self.scale, self.seed, self.spec = scale, seed, SCALES[scale]
        rng = np.random.default_rng([seed, self.spec.index, 0])
        self._build_catalogue(rng)
        self._build_suppliers(rng)
        self._build_customers(rng)
        self._build_demand_plan()

    # -- catalogue ----------------------------------------------------------------------------------------------
    def _build_catalogue(self, rng: np.random.Generator) -> None:
        n_cat, n_prod, n_brand_per = len(CATEGORIES), self.spec.n_products, self.spec.brands_per_category
        self.n_categories = n_cat
        self.category_popularity = rng.dirichlet(np.full(n_cat, 6.0))

        # Brands: unique two-syllable names, n_brand_per per category.
        combos = rng.permutation(len(_BRAND_HEADS) * len(_BRAND_TAILS))[: n_cat * n_brand_per]
        self.brand_names = np.array(
            [_BRAND_HEADS[c // len(_BRAND_TAILS)] + _BRAND_TAILS[c % len(_BRAND_TAILS)] for c in combos]
        )
        self.brand_category = np.repeat(np.arange(n_cat), n_brand_per)

        # Launch offsets first, sorted, so that SKU numbers grow with the launch date.
        launch = np.where(rng.random(n_prod) < 0.85, 0, rng.integers(1, 366, n_prod))
        launch.sort()
        cat = rng.choice(n_cat, n_prod, p=self.category_popularity)
        cat[rng.permutation(n_prod)[:n_cat]] = np.arange(n_cat)  # every category has a product
        for c in range(n_cat):  # ... and one of them is on sale from the first day
            members = np.flatnonzero(cat == c)
            if launch[members].min() > 0:
                launch[members[0]] = 0
        self.product_launch_day = launch
        self.product_cat = cat
        brand_rank = np.minimum(rng.zipf(1.6, n_prod) - 1, n_brand_per - 1)
        self.product_brand = cat * n_brand_per + brand_rank
        medians = np.array([spec[0] for spec in _CATEGORY_SPEC.values()])
        # Shelf prices end in .99 (x.99 for x >= 0), which also keeps them exact to the cent.
        self.price = np.round(
            np.maximum(np.round(medians[cat] * rng.lognormal(0.0, 0.5, n_prod)), 1.0) - 0.01, 2
        )
        self.category_median_price = np.array([np.median(self.price[cat == c]) for c in range(n_cat)])
        self.rel_price = self.price / self.category_median_price[cat]
        # Popularity: Zipf over a random rank within the category.
        rank = np.empty(n_prod, dtype=np.int64)
        for c in range(n_cat):
            members = np.flatnonzero(cat == c)
            rank[members] = rng.permutation(len(members))
        self.popularity = 1.0 / (rank + 1.0) ** 1.05
        # Products sorted by category: per-category segments for sampling by popularity.
        self.by_category = np.argsort(cat, kind="stable")
        self.category_start = np.searchsorted(cat[self.by_category], np.arange(n_cat + 1))
        # Text: word indices now, strings only when a product's launch day is written.
        self.title_adj = rng.integers(0, len(_ADJECTIVES), n_prod)
        self.noun = rng.integers(0, 1 << 30, n_prod)
        self.attrs = rng.integers(0, 1 << 30, (n_prod, 3))
        self.skus = np.array([f"SKU{i + 1:06d}" for i in range(n_prod)], dtype=object)
        self.sku_pa = pa.array(self.skus, type=pa.string())

    def _build_suppliers(self, rng: np.random.Generator) -> None:
        n_sup = self.spec.n_suppliers
        country = rng.choice(len(_SUPPLIER_COUNTRIES), n_sup, p=_SUPPLIER_COUNTRY_P)
        lo = np.array([c[1] for c in _SUPPLIER_COUNTRIES])[country]
        hi = np.array([c[2] for c in _SUPPLIER_COUNTRIES])[country]
        self.supplier_lead = rng.integers(lo, hi + 1).clip(2, 30)
        self.supplier_country = np.array([c[0] for c in _SUPPLIER_COUNTRIES])[country]
        self.supplier_moq = rng.choice(_MOQ, n_sup)
        heads = rng.integers(0, len(_BRAND_HEADS), n_sup)
        tails = rng.integers(0, len(_BRAND_TAILS), n_sup)
        suffix = rng.integers(0, len(_SUPPLIER_SUFFIX), n_sup)
        self.supplier_names = [
            f"{_BRAND_HEADS[h]}{_BRAND_TAILS[t]} {_SUPPLIER_SUFFIX[s]}"
            for h, t, s in zip(heads, tails, suffix, strict=True)
        ]
        self.supplier_ids = [f"SUP{i + 1:04d}" for i in range(n_sup)]
        # A brand is made by one primary supplier; the alternate is another supplier with another lead time.
        brand_supplier = rng.integers(0, n_sup, len(self.brand_names))
        primary = brand_supplier[self.product_brand]
        alt = (primary + rng.integers(1, n_sup, len(primary))) % n_sup
        for _ in range(10):  # re-draw the few alternates that happen to share the primary's lead time
            same = np.flatnonzero(self.supplier_lead[alt] == self.supplier_lead[primary])
            if len(same) == 0:
                break
            alt[same] = (primary[same] + rng.integers(1, n_sup, len(same))) % n_sup
        self.product_supplier, self.product_alt_supplier = primary, alt
        self.product_lead = self.supplier_lead[primary]

    # -- customers ----------------------------------------------------------------------------------------------
    def _build_customers(self, rng: np.random.Generator) -> None:
        n, n_cat = self.spec.n_customers, self.n_categories
        signup = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 366, n))
        signup.sort()
        self.signup_day = signup
        # New sign-ups happen between 06:00 and 18:00 UTC; the initial population is there from midnight.
        self.signup_time_us = np.where(
            signup > 0, rng.integers(6 * 3600, 18 * 3600, n) * _US_PER_S, 0
        ).astype(np.int64)
        churns = rng.random(n) < 0.3
        self.churn_day = np.where(
            churns, signup + 30 + rng.exponential(200.0, n).astype(np.int64), np.iinfo(np.int32).max
        )
        # Tastes: 2-4 favourite categories (drawn by popularity) get most of the Dirichlet mass.
        n_fav = rng.integers(2, 5, n)
        keys = (
            rng.exponential(1.0, (n, n_cat)) / self.category_popularity
        )  # weighted sampling w/o replacement
        fav_rank = np.argsort(np.argsort(keys, axis=1), axis=1)
        alpha = np.where(fav_rank < n_fav[:, None], 3.0, 0.08)
        tastes = rng.gamma(alpha)
        self.tastes = tastes / tastes.sum(axis=1, keepdims=True)
        self.price_sens = rng.gamma(2.0, 0.5, n).clip(0.0, 3.0)
        self.region = rng.choice(len(REGIONS), n, p=_REGION_P)
        self.device = rng.choice(len(DEVICES), n, p=_DEVICE_P)
        self.activity = rng.lognormal(0.0, 0.8, n)
        self.first_name = rng.integers(0, len(_FIRST), n)
        self.last_name = rng.integers(0, len(_LAST), n)
        self.phone_digits = rng.integers(0, 10**9, n)
        self.region_warehouse = np.arange(len(REGIONS)) * self.spec.n_warehouses // len(REGIONS)
        self.customer_warehouse = self.region_warehouse[self.region]
        self.customer_ids = np.array([f"C{i + 1:07d}" for i in range(n)], dtype=object)
        self.customer_pa = pa.array(self.customer_ids, type=pa.string())

    # -- expected demand (what inventory plans for) ---------------------------------------------------------------
    def _build_demand_plan(self) -> None:
        n_cat, n_wh = self.n_categories, self.spec.n_warehouses
        weight = self.activity / self.activity.sum()
        cat_share = _INTENT_P * (weight @ self.tastes) + (1 - _INTENT_P) / n_cat
        pop_sum = np.bincount(self.product_cat, weights=self.popularity, minlength=n_cat)
        product_share = cat_share[self.product_cat] * self.popularity / pop_sum[self.product_cat]
        wh_share = np.bincount(self.customer_warehouse, weights=weight, minlength=n_wh)
        units = self.base_sessions * _PURCHASE_LINES_PER_SESSION * float(_QTY @ _QTY_P)
        self.expected_demand = units * product_share[:, None] * wh_share[None, :]  # products x warehouses
        self.cycle_days = self.product_lead + _REVIEW_DAYS
        self.order_up_to = np.maximum(
            np.ceil(self.expected_demand * self.cycle_days[:, None] * _SAFETY), 2
        ).astype(np.int64)
        sku_idx = np.arange(self.spec.n_products)[:, None]
        wh_idx = np.arange(n_wh)[None, :]
        self.cycle_phase = (
            _hash_uniform(self.seed, self.spec.index, 11, sku_idx, wh_idx) * self.cycle_days[:, None]
        ).astype(np.int64)

    @property
    def base_sessions(self) -> float:
        return self.spec.events_per_day / _EVENTS_PER_SESSION

    # -- text rendering (only for the rows a day writes) --------------------------------------------------------
    def product_text(self, idx: np.ndarray) -> tuple[list[str], list[str]]:
        titles, descriptions = [], []
        for i in idx:
            cat = CATEGORIES[self.product_cat[i]]
            _, nouns, attrs, use = _CATEGORY_SPEC[cat]
            noun = nouns[self.noun[i] % len(nouns)]
            a = [attrs[k % len(attrs)] for k in self.attrs[i]]
            adj = _ADJECTIVES[self.title_adj[i]]
            brand = self.brand_names[self.product_brand[i]]
            article = "An" if adj[0] in "aeiou" else "A"
            titles.append(f"{brand} {a[0].title()} {adj.title()} {noun.title()}")
            descriptions.append(
                f"{article} {adj} {noun} from {brand}, {a[0]}, {a[1]} and {a[2]}. "
                f"Part of our {cat.replace('_', ' ')} range, made for {use}."
            )
        return titles, descriptions

    def contact(self, idx: np.ndarray) -> tuple[list[str], list[str]]:
        """Fake, deterministic PII (example.com addresses, numbers in mobile ranges) for customers ``idx``."""
        emails, phones = [], []
        for i in idx:
            emails.append(f"{_FIRST[self.first_name[i]]}.{_LAST[self.last_name[i]]}{i + 1}@example.com")
            d = f"{self.phone_digits[i]:09d}"
            if REGIONS[self.region[i]][1] == "IE":
                phones.append(f"+353 8{d[0]} {d[1:4]} {d[4:8]}")
            else:
                phones.append(f"+44 7{d[:3]} {d[3:9]}")
        return emails, phones

    # -- ground truth -------------------------------------------------------------------------------------------
    @property
    def categories(self) -> tuple[str, ...]:
        return CATEGORIES

    @cached_property
    def true_category_affinity(self) -> pd.DataFrame:
        """Customers x categories: each row is the customer's true taste distribution (sums to 1)."""
        return pd.DataFrame(
            self.tastes, index=pd.Index(self.customer_ids, name="customer_id"), columns=CATEGORIES
        )

    @cached_property
    def price_sensitivity(self) -> pd.Series:
        """Higher means the customer favours items cheaper than the category median more strongly."""
        return pd.Series(
            self.price_sens, index=pd.Index(self.customer_ids, name="customer_id"), name="price_sensitivity"
        )

    @cached_property
    def category_mean_popularity(self) -> np.ndarray:
        """Mean popularity weight of the products of each category."""
        return np.bincount(self.product_cat, weights=self.popularity) / np.bincount(self.product_cat)

    @cached_property
    def product_category(self) -> pd.Series:
        return pd.Series(
            np.array(CATEGORIES)[self.product_cat], index=pd.Index(self.skus, name="sku"), name="category"
        )

    # -- logistics ------------------------------------------------------------------------------------------------
    @cached_property
    def warehouse_ids(self) -> list[str]:
        return [f"WH{i + 1:02d}" for i in range(self.spec.n_warehouses)]

    @cached_property
    def warehouse_sites(self) -> list[str]:
        return logistics.warehouse_sites([r for r, _ in REGIONS], self.region_warehouse, _REGION_P)

    @cached_property
    def shipping_lanes(self) -> list[logistics.Lane]:
        return logistics.lanes([r for r, _ in REGIONS], self.warehouse_sites)

    @cached_property
    def warehouse_capacity(self) -> np.ndarray:
        """Units each warehouse can dispatch a day (:func:`ml.sources.logistics.daily_capacity`)."""
        return logistics.daily_capacity(self.expected_demand.sum(axis=0))

    # -- inventory ------------------------------------------------------------------------------------------------
    def stock(self, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """End-of-day stock on day offset ``t``: ``(launched mask, on_hand, on_order)`` (products x warehouses).

        A periodic-review, order-up-to policy in closed form. Each sku x warehouse runs cycles of
        ``lead_time + 7`` days; at the start of a cycle a delivery lifts stock to the order-up-to level ``S``
        (expected demand over the cycle plus 35% safety); during the cycle stock falls at the expected rate
        times a lognormal shock drawn per cycle, so unlucky cycles run out before the next delivery. The
        replenishment order is placed ``lead_time`` days before the delivery and is on order until it arrives.
        """
        launched = self.product_launch_day <= t
        age = np.maximum(t - self.product_launch_day, 0)[:, None]
        x = age + self.cycle_phase
        cycle_len = self.cycle_days[:, None]
        k, pos = x // cycle_len, x % cycle_len
        sku_idx = np.arange(self.spec.n_products)[:, None]
        wh_idx = np.arange(self.spec.n_warehouses)[None, :]
        u1 = _hash_uniform(self.seed, self.spec.index, 21, sku_idx, wh_idx, k)
        u2 = _hash_uniform(self.seed, self.spec.index, 22, sku_idx, wh_idx, k)
        shock = np.exp(0.4 * np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2))
        rate = self.expected_demand * shock
        on_hand = np.maximum(np.round(self.order_up_to - rate * (pos + 1)), 0).astype(np.int64)
        left_at_cycle_end = np.maximum(np.round(self.order_up_to - rate * cycle_len), 0).astype(np.int64)
        ordered = pos >= (cycle_len - self.product_lead[:, None])
        on_order = np.where(ordered, self.order_up_to - left_at_cycle_end, 0)
        return launched, on_hand, on_order


@lru_cache(maxsize=4)
def build_world(scale: str, seed: int) -> World:
    """The world of ``(scale, seed)``, built once per process (a medium world takes about a second)."""
    return World(scale, seed)


@dataclass(frozen=True)
class _Promo:
    promo_id: str
    category: int
    discount_pct: float
    channel: str  # ALL_CHANNELS or one of CHANNELS


def _promotions(world: World, t: int) -> list[_Promo]:
    """Promotions active on day offset ``t``.

    Each week gets its own small random calendar (more promotions in November and December), drawn from a
    stream keyed by the week, so a day only needs the calendars of the weeks that can still reach it.
    """
    active = []
    week = t // 7
    for w in range(max(week - 2, 0), week + 1):
        rng = np.random.default_rng([world.seed, world.spec.index, 1, w])
        month = (START_DATE + timedelta(days=7 * w)).month
        n = rng.poisson(1.2) + (2 if month in (11, 12) else 0)
        cats = rng.integers(0, world.n_categories, n)
        starts = 7 * w + rng.integers(0, 7, n)
        durations = rng.integers(2, 11, n)
        pcts = rng.choice([0.10, 0.15, 0.20, 0.25, 0.30], n)
        channels = rng.choice([ALL_CHANNELS, ALL_CHANNELS, ALL_CHANNELS, "email", "app"], n)
        for k in range(n):
            if starts[k] <= t < starts[k] + durations[k]:
                active.append(_Promo(f"PR{w:04d}{k:02d}", int(cats[k]), float(pcts[k]), str(channels[k])))
    return active


def _discount_matrix(world: World, promos: list[_Promo]) -> np.ndarray:
    """categories x channels: the best discount a view in that category through that channel gets."""
    disc = np.zeros((world.n_categories, len(CHANNELS)))
    for p in promos:
        cols = slice(None) if p.channel == ALL_CHANNELS else CHANNELS.index(p.channel)
        disc[p.category, cols] = np.maximum(disc[p.category, cols], p.discount_pct)
    return disc


def traffic_factor(day: date) -> float:
    """Deterministic demand multiplier: weekday effect times a Black-Friday/Christmas peak and a summer dip."""
    doy = day.timetuple().tm_yday
    yearly = (
        1.0
        + 0.45 * math.exp(-0.5 * ((doy - 345) / 18.0) ** 2)
        + 0.40 * math.exp(-0.5 * ((doy - 332) / 2.0) ** 2)
        - 0.08 * math.exp(-0.5 * ((doy - 210) / 25.0) ** 2)
    )
    return float(_WEEKDAY_FACTOR[day.weekday()] * yearly)


class SimulatedStore(Source):
    """The simulated store as a landing source; see the module docstring for the model."""

    name = "simulated"
    start_date = START_DATE
    end_date: date | None = None
    tables = OPEN_LOOP_TABLES

    def __init__(self, scale: str = "small", seed: int = 42) -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; known scales: {', '.join(SCALES)}")
        self.scale, self.seed = scale, int(seed)

    @property
    def world(self) -> World:
        return build_world(self.scale, self.seed)

    def day_tables(self, day: date, tables: Iterable[str] | None = None) -> dict[str, pa.Table]:
        self.check_day(day)
        wanted = tuple(tables) if tables is not None else self.tables
        unknown = set(wanted) - set(self.tables)
        if unknown:
            raise ValueError(f"{self.name} does not deliver {sorted(unknown)}")
        world, t = self.world, (day - START_DATE).days
        out: dict[str, pa.Table] = {}
        promos = _promotions(world, t)
        if "customers" in wanted:
            out["customers"] = self._customers(world, day, t)
        if "products" in wanted:
            out["products"] = self._products(world, day, t)
        if "suppliers" in wanted:
            out["suppliers"] = self._suppliers(world, day) if t == 0 else empty_table("suppliers")
        for name, build in (("warehouses", self._warehouses), ("shipping_lanes", self._shipping_lanes)):
            if name in wanted:
                out[name] = build(world, day) if t == 0 else empty_table(name)
        if "promotions" in wanted:
            out["promotions"] = self._promotions_table(world, day, promos)
        if "inventory" in wanted:
            out["inventory"] = self._inventory(world, day, t)
        if {"events", "orders", "order_items"} & set(wanted):
            out.update({k: v for k, v in _simulate_traffic(world, day, t, promos).items() if k in wanted})
        return {name: out[name] for name in wanted}

    # -- reference tables ---------------------------------------------------------------------------------------
    @staticmethod
    def _customers(world: World, day: date, t: int) -> pa.Table:
        idx = np.flatnonzero(world.signup_day == t)
        emails, phones = world.contact(idx)
        region = world.region[idx]
        return _table(
            "customers",
            {
                "customer_id": world.customer_pa.take(pa.array(idx, type=pa.int64())),
                "first_seen_ts": _ts(_utc_midnight_us(day) + world.signup_time_us[idx]),
                "email": _pa_strings(emails),
                "phone": _pa_strings(phones),
                "region": _pa_strings(REGIONS[r][0] for r in region),
                "country": _pa_strings(REGIONS[r][1] for r in region),
                "preferred_device": _pa_strings(DEVICES[d] for d in world.device[idx]),
            },
        )

    @staticmethod
    def _products(world: World, day: date, t: int) -> pa.Table:
        idx = np.flatnonzero(world.product_launch_day == t)
        titles, descriptions = world.product_text(idx)
        sup_ids = np.array(world.supplier_ids, dtype=object)
        return _table(
            "products",
            {
                "sku": world.sku_pa.take(pa.array(idx, type=pa.int64())),
                "title": _pa_strings(titles),
                "description": _pa_strings(descriptions),
                "category": _pa_strings(CATEGORIES[c] for c in world.product_cat[idx]),
                "brand": _pa_strings(world.brand_names[world.product_brand[idx]]),
                "price": pa.array(world.price[idx], type=pa.float64()),
                "currency": pa.array([CURRENCY] * len(idx), type=pa.string()),
                "supplier_id": _pa_strings(sup_ids[world.product_supplier[idx]]),
                "alt_supplier_id": _pa_strings(sup_ids[world.product_alt_supplier[idx]]),
                "lead_time_days": pa.array(world.product_lead[idx], type=pa.int32()),
                "first_seen_ts": _ts(np.full(len(idx), _utc_midnight_us(day))),
            },
        )

    @staticmethod
    def _suppliers(world: World, day: date) -> pa.Table:
        n = world.spec.n_suppliers
        return _table(
            "suppliers",
            {
                "supplier_id": _pa_strings(world.supplier_ids),
                "name": _pa_strings(world.supplier_names),
                "country": _pa_strings(world.supplier_country),
                "lead_time_days": pa.array(world.supplier_lead, type=pa.int32()),
                "min_order_qty": pa.array(world.supplier_moq, type=pa.int32()),
                "first_seen_ts": _ts(np.full(n, _utc_midnight_us(day))),
            },
        )

    @staticmethod
    def _warehouses(world: World, day: date) -> pa.Table:
        n = world.spec.n_warehouses
        return _table(
            "warehouses",
            {
                "warehouse_id": _pa_strings(world.warehouse_ids),
                "site_region": _pa_strings(world.warehouse_sites),
                "daily_capacity_units": pa.array(world.warehouse_capacity, type=pa.int64()),
                "first_seen_ts": _ts(np.full(n, _utc_midnight_us(day))),
            },
        )

    @staticmethod
    def _shipping_lanes(world: World, day: date) -> pa.Table:
        lanes = world.shipping_lanes
        return _table(
            "shipping_lanes",
            {
                "warehouse_id": _pa_strings(world.warehouse_ids[lane.warehouse] for lane in lanes),
                "region": _pa_strings(lane.region for lane in lanes),
                "road_km": pa.array([lane.road_km for lane in lanes], type=pa.float64()),
                "delivery_days": pa.array([lane.delivery_days for lane in lanes], type=pa.int32()),
                "promise_days": pa.array([lane.promise_days for lane in lanes], type=pa.int32()),
                "cost_per_order": pa.array([lane.cost_per_order for lane in lanes], type=pa.float64()),
                "cost_per_unit": pa.array([lane.cost_per_unit for lane in lanes], type=pa.float64()),
                "bulk_cost_per_unit": pa.array(
                    [lane.bulk_cost_per_unit for lane in lanes], type=pa.float64()
                ),
                "first_seen_ts": _ts(np.full(len(lanes), _utc_midnight_us(day))),
            },
        )

    @staticmethod
    def _promotions_table(world: World, day: date, promos: list[_Promo]) -> pa.Table:
        return _table(
            "promotions",
            {
                "promo_id": _pa_strings(p.promo_id for p in promos),
                "active_ts": _ts(np.full(len(promos), _utc_midnight_us(day))),
                "category": _pa_strings(CATEGORIES[p.category] for p in promos),
                "discount_pct": pa.array([p.discount_pct for p in promos], type=pa.float64()),
                "channel": _pa_strings(p.channel for p in promos),
            },
        )

    @staticmethod
    def _inventory(world: World, day: date, t: int) -> pa.Table:
        return inventory_table(world, day, *world.stock(t))


def inventory_table(
    world: World, day: date, launched: np.ndarray, on_hand: np.ndarray, on_order: np.ndarray
) -> pa.Table:
    """The end-of-day snapshot of every launched product at every warehouse."""
    sku, wh = np.nonzero(launched[:, None] & np.ones(world.spec.n_warehouses, dtype=bool)[None, :])
    wh_ids = _pa_strings(world.warehouse_ids)
    snapshot = _utc_midnight_us(day) + _DAY_US - _US_PER_S  # 23:59:59, end of the day
    return _table(
        "inventory",
        {
            "snapshot_ts": _ts(np.full(len(sku), snapshot)),
            "sku": world.sku_pa.take(pa.array(sku, type=pa.int64())),
            "warehouse_id": wh_ids.take(pa.array(wh, type=pa.int64())),
            "on_hand": pa.array(on_hand[sku, wh], type=pa.int64()),
            "on_order": pa.array(on_order[sku, wh], type=pa.int64()),
        },
    )


@dataclass
class ShopFront:
    """What the closed-loop shop front (:mod:`ml.shop`) adds to a day of traffic.

    ``on_hand``: products x warehouses units at the start of the day (today's deliveries and launches included),
    the stock that gates add-to-carts and fills checkouts. ``lists``: customers x ranks product positions of the
    list each customer is shown at the ``for_you`` placement, -1 where there is none; ``list_id``,
    ``model_version`` and ``arm`` are per customer (``None`` without a list). ``category_page``: what a session
    browsing a category sees, given the sessions' customers and category indices: ``(products, list_id,
    model_version, arm)``, products as sessions x ranks positions (-1: none) and the rest per session; ``None``
    when the shop has no pages to show.
    """

    on_hand: np.ndarray
    lists: np.ndarray
    list_id: np.ndarray
    model_version: np.ndarray
    arm: np.ndarray
    category_page: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]] | None = None


# The "recommended for you" response: a shown item is clicked with probability
# _FOR_YOU_CTR * position bias * how well it matches the customer's true tastes and price sensitivity.
_FOR_YOU_CTR = 0.03
_FOR_YOU_CART_P = 0.10
_FOR_YOU = PLACEMENTS.index("for_you")
# A category page shown to a session browsing that category: the same response with its own base rate (the
# visitor came to browse this category, so a well-placed match is clicked more often than in a list on arrival).
_CATEGORY_PAGE_CTR = 0.05
_CATEGORY = PLACEMENTS.index("category")
_CATEGORY_PAGE = PLACEMENTS.index("category_page")
# Add-to-cart rate of a view by placement, for_you included (a view never happens at "cart").
_CART_P_EVERY_PLACEMENT = np.append(
    _CART_P_BY_PLACEMENT, np.zeros(len(PLACEMENTS) - len(_CART_P_BY_PLACEMENT))
)
_CART_P_EVERY_PLACEMENT[_FOR_YOU] = _FOR_YOU_CART_P
_CART_P_EVERY_PLACEMENT[_CATEGORY_PAGE] = _CART_P_BY_PLACEMENT[_CATEGORY]


def for_you_appeal(world: World, customers: np.ndarray, products: np.ndarray) -> np.ndarray:
    """How much customer ``i`` is drawn to product ``j`` (pairs, same length; 1 is an average match).

    The customer's true taste for the product's category relative to a uniform taste, capped at 4, times the
    price factor the organic funnel uses and the product's popularity within its category (to the power 0.3).
    """
    taste = np.minimum(world.tastes[customers, world.product_cat[products]] * world.n_categories, 4.0)
    price = np.clip(world.rel_price[products] ** (-world.price_sens[customers]), 0.3, 2.0)
    pop = (world.popularity[products] / world.category_mean_popularity[world.product_cat[products]]) ** 0.3
    return taste * price * pop


def _simulate_traffic(
    world: World, day: date, t: int, promos: list[_Promo], front: ShopFront | None = None
) -> dict[str, pa.Table]:
    """Sessions -> views -> carts -> purchases of one day, and the orders they become.

    All random draws come from one generator seeded by ``(seed, scale, day)`` and are taken in a fixed order,
    so the output is a pure function of those three. With a shop ``front`` (closed loop), sessions of customers
    with a served list show it at the ``for_you`` placement: clicks become extra views of the session, drawn
    from a second generator so that the organic sessions and views stay those of the open-loop day; stock comes
    from ``front.on_hand`` and runs out within the day (lines beyond it are lost and logged). The result then
    also holds ``impressions``, ``lost_sales`` and ``sold_units`` (products x warehouses, numpy).
    """
    rng = np.random.default_rng([world.seed, world.spec.index, day.toordinal()])
    rng_front = np.random.default_rng([world.seed, world.spec.index, day.toordinal(), 1])
    disc = _discount_matrix(world, promos)
    n_cust = world.spec.n_customers

    # -- sessions ----------------------------------------------------------------------------------------------
    # Site-wide promotions (all channels) bring extra visitors: +3% traffic per 10 points of discount.
    uplift = 1.0 + 0.3 * sum(p.discount_pct for p in promos if p.channel == ALL_CHANNELS)
    n_sessions = int(round(world.base_sessions * traffic_factor(day) * uplift * rng.lognormal(0.0, 0.05)))
    active = (world.signup_day <= t) & (t < world.churn_day)
    cum = np.cumsum(np.where(active, world.activity, 0.0))
    cust = np.minimum(np.searchsorted(cum, rng.random(n_sessions) * cum[-1], side="right"), n_cust - 1)
    device = np.where(
        rng.random(n_sessions) < 0.8, world.device[cust], rng.integers(0, len(DEVICES), n_sessions)
    )
    channel = _rowwise_categorical(rng, _CHANNEL_GIVEN_DEVICE, device)
    intent = _rowwise_categorical(rng, world.tastes, cust)
    secondary = _rowwise_categorical(rng, world.tastes, cust)
    n_views = np.minimum(rng.geometric(1.0 / _MEAN_VIEWS, n_sessions), _MAX_VIEWS)
    hour = _categorical(rng, np.cumsum(_HOUR_P), n_sessions)
    start = (hour * 3600 + rng.random(n_sessions) * 3600) * _US_PER_S

    # -- views ----------------------------------------------------------------------------------------------
    n_v = int(n_views.sum())
    v_sess = np.repeat(np.arange(n_sessions), n_views)
    first_of_session = np.concatenate([[0], np.cumsum(n_views)[:-1]])
    v_pos = np.arange(n_v) - first_of_session[v_sess]
    v_cust = cust[v_sess]
    u = rng.random(n_v)
    v_cat = np.where(
        u < _INTENT_P,
        intent[v_sess],
        np.where(u < _INTENT_P + _SECONDARY_P, secondary[v_sess], rng.integers(0, world.n_categories, n_v)),
    )
    v_prod = _pick_products(world, rng, t, v_cat, world.price_sens[v_cust])
    landing = _rowwise_categorical(rng, _LANDING_GIVEN_CHANNEL, channel[v_sess])
    later = _categorical(rng, np.cumsum(_LATER_PLACEMENT_P), n_v)
    v_place = np.where(v_pos == 0, landing, later)
    gap = np.minimum(20.0 + rng.exponential(45.0, n_v), _MAX_GAP_S)
    gap[v_pos == 0] = 0.0
    cum_gap = np.cumsum(gap)
    v_off = ((cum_gap - cum_gap[first_of_session][v_sess]) * _US_PER_S).astype(np.int64)
    n_organic = n_v
    if front is not None:
        # -- the served list at session start; each click is one more view of the session ----------------------
        k_shown = front.lists.shape[1]
        shown = np.repeat(np.arange(n_sessions), k_shown)
        i_rank = np.tile(np.arange(1, k_shown + 1), n_sessions)
        i_prod = front.lists[cust[shown], i_rank - 1]
        ok = i_prod >= 0
        ok[ok] = world.product_launch_day[i_prod[ok]] <= t
        i_sess, i_rank, i_prod = shown[ok], i_rank[ok], i_prod[ok]
        p_click = _FOR_YOU_CTR / np.log2(i_rank + 1) * for_you_appeal(world, cust[i_sess], i_prod)
        clicked = rng_front.random(len(i_sess)) < np.minimum(p_click, 0.5)
        f_sess, f_prod = i_sess[clicked], i_prod[clicked]
        n_f = len(f_sess)
        f_order = np.lexsort((i_rank[clicked], f_sess))
        f_sess, f_prod = f_sess[f_order], f_prod[f_order]
        f_nth = np.arange(n_f) - np.searchsorted(f_sess, f_sess, side="left")
        f_off = ((f_nth + 1) * rng_front.uniform(15.0, 90.0, n_f) * _US_PER_S).astype(np.int64)
        v_sess = np.concatenate([v_sess, f_sess])
        v_pos = np.concatenate([v_pos, n_views[f_sess] + f_nth])
        v_cust = cust[v_sess]
        v_cat = np.concatenate([v_cat, world.product_cat[f_prod]])
        v_prod = np.concatenate([v_prod, f_prod])
        v_place = np.concatenate([v_place, np.full(n_f, _FOR_YOU)])
        v_off = np.concatenate([v_off, f_off])
        n_v = len(v_sess)
        i_off = np.zeros(len(i_sess), dtype=np.int64)
        i_place = np.full(len(i_sess), _FOR_YOU)
        i_list, i_version, i_arm = (a[cust[i_sess]] for a in (front.list_id, front.model_version, front.arm))
    if front is not None and front.category_page is not None:
        # -- the page of the category a session browses first, shown at that view; clicks are more views ---------
        rng_page = np.random.default_rng([world.seed, world.spec.index, day.toordinal(), 2])
        browsing = np.flatnonzero(v_place[:n_organic] == _CATEGORY)
        browsing = browsing[np.unique(v_sess[browsing], return_index=True)[1]]
        g_sess, g_off = v_sess[browsing], v_off[browsing]
        g_prod, g_list, g_version, g_arm = front.category_page(cust[g_sess], v_cat[browsing])
        k_page = g_prod.shape[1]
        g_row = np.repeat(np.arange(len(g_sess)), k_page)
        g_rank = np.tile(np.arange(1, k_page + 1), len(g_sess))
        g_item = g_prod.ravel()
        ok = g_item >= 0
        ok[ok] = world.product_launch_day[g_item[ok]] <= t
        g_row, g_rank, g_item = g_row[ok], g_rank[ok], g_item[ok]
        pg_p_click = (
            _CATEGORY_PAGE_CTR / np.log2(g_rank + 1) * for_you_appeal(world, cust[g_sess[g_row]], g_item)
        )
        pg_clicked = rng_page.random(len(g_row)) < np.minimum(pg_p_click, 0.5)
        pg_row, pg_prod = g_row[pg_clicked], g_item[pg_clicked]
        pg_order = np.lexsort((g_rank[pg_clicked], pg_row))
        pg_row, pg_prod = pg_row[pg_order], pg_prod[pg_order]
        pg_nth = np.arange(len(pg_row)) - np.searchsorted(pg_row, pg_row, side="left")
        pg_sess = g_sess[pg_row]
        pg_earlier = np.bincount(v_sess[n_organic:], minlength=n_sessions)  # the session's for_you clicks
        pg_off_click = g_off[pg_row] + (
            (pg_nth + 1) * rng_page.uniform(15.0, 90.0, len(pg_row)) * _US_PER_S
        ).astype(np.int64)
        v_sess = np.concatenate([v_sess, pg_sess])
        v_pos = np.concatenate([v_pos, n_views[pg_sess] + pg_earlier[pg_sess] + pg_nth])
        v_cust = cust[v_sess]
        v_cat = np.concatenate([v_cat, world.product_cat[pg_prod]])
        v_prod = np.concatenate([v_prod, pg_prod])
        v_place = np.concatenate([v_place, np.full(len(pg_row), _CATEGORY_PAGE)])
        v_off = np.concatenate([v_off, pg_off_click])
        n_v = len(v_sess)
        i_sess = np.concatenate([i_sess, g_sess[g_row]])
        i_rank = np.concatenate([i_rank, g_rank])
        i_prod = np.concatenate([i_prod, g_item])
        i_off = np.concatenate([i_off, g_off[g_row]])
        i_place = np.concatenate([i_place, np.full(len(g_row), _CATEGORY_PAGE)])
        i_list, i_version, i_arm = (
            np.concatenate([a, b[g_row]])
            for a, b in ((i_list, g_list), (i_version, g_version), (i_arm, g_arm))
        )

    # -- carts: placement x channel x price x promotion, never for an item out of stock at its warehouse ----
    v_chan = channel[v_sess]
    v_disc = disc[v_cat, v_chan]
    p_cart = (
        _CART_P_EVERY_PLACEMENT[v_place]
        * _CART_MULT_BY_CHANNEL[v_chan]
        * np.clip(world.rel_price[v_prod] ** (-0.5 * world.price_sens[v_cust]), 0.3, 2.0)
        * (1.0 + 2.5 * v_disc)
    )
    u_cart = rng.random(n_organic)
    in_stock = np.ones(n_v, dtype=bool)
    if front is not None:
        u_cart = np.concatenate([u_cart, rng_front.random(n_v - n_organic)])
        in_stock = front.on_hand[v_prod, world.customer_warehouse[v_cust]] > 0
    elif t > 0:
        launched, on_hand, _ = world.stock(t - 1)
        stocked = ~launched[:, None] | (on_hand > 0)  # launched today: stock arrives with the listing
        in_stock = stocked[v_prod, world.customer_warehouse[v_cust]]
    would_cart = u_cart < p_cart
    carted = would_cart & in_stock
    c_idx = np.flatnonzero(carted)
    n_c_organic = int(np.searchsorted(c_idx, n_organic))
    c_wait = rng.uniform(3.0, 15.0, n_c_organic)
    if front is not None:
        c_wait = np.concatenate([c_wait, rng_front.uniform(3.0, 15.0, len(c_idx) - n_c_organic)])
    c_off = v_off[c_idx] + (c_wait * _US_PER_S).astype(np.int64)

    # -- checkout: per session, more likely with a discount in the basket; each carted line kept or dropped --
    c_sess = v_sess[c_idx]
    best_disc = np.zeros(n_sessions)
    np.maximum.at(best_disc, c_sess, v_disc[c_idx])
    has_cart = np.bincount(c_sess, minlength=n_sessions) > 0
    checkout = has_cart & (rng.random(n_sessions) < _CHECKOUT_P_BY_CHANNEL[channel] * (1.0 + best_disc))
    u_kept = rng.random(n_c_organic)
    if front is not None:
        u_kept = np.concatenate([u_kept, rng_front.random(len(c_idx) - n_c_organic)])
    kept = checkout[c_sess] & (u_kept < _LINE_KEPT_P)
    p_idx = c_idx[kept]  # purchased lines, as indices into the views
    p_sess = v_sess[p_idx]
    last_view_off = v_off[first_of_session + n_views - 1]
    if front is not None:
        np.maximum.at(last_view_off, v_sess[n_organic:], v_off[n_organic:])
    pay_off = last_view_off + (
        (30.0 + np.minimum(rng.exponential(60.0, n_sessions), 600.0)) * _US_PER_S
    ).astype(np.int64)
    n_p_organic = int(np.searchsorted(p_idx, n_organic))
    qty = _QTY[_categorical(rng, np.cumsum(_QTY_P), n_p_organic)]
    if front is not None:
        qty = np.concatenate(
            [qty, _QTY[_categorical(rng_front, np.cumsum(_QTY_P), len(p_idx) - n_p_organic)]]
        )
    cancelled = rng.random(n_sessions) < _CANCEL_P
    if front is not None:
        p_idx, p_sess, qty, lost = _fill_from_stock(
            world, front.on_hand, cust, start, pay_off, p_idx, p_sess, qty, v_prod
        )

    # -- session start: inside the day, and not before a same-day sign-up ---------------------------------
    has_purchase = np.bincount(p_sess, minlength=n_sessions) > 0
    c_last = np.zeros(n_sessions, dtype=np.int64)
    np.maximum.at(c_last, c_sess, c_off)
    duration = np.maximum(np.maximum(last_view_off, c_last), np.where(has_purchase, pay_off, 0))
    earliest = np.where(world.signup_day[cust] == t, world.signup_time_us[cust], 0)
    start = np.clip(start.astype(np.int64), earliest, _DAY_US - 1 - duration)
    # Session numbers follow start time (ties by draw order), so ids read chronologically.
    sess_order = np.lexsort((np.arange(n_sessions), start))
    sess_rank = np.empty(n_sessions, dtype=np.int64)
    sess_rank[sess_order] = np.arange(n_sessions)
    day0 = _utc_midnight_us(day)
    yyyymmdd = day.strftime("%Y%m%d")

    # -- events -------------------------------------------------------------------------------------------
    e_sess = np.concatenate([v_sess, c_sess, p_sess])
    e_off = np.concatenate([v_off, c_off, pay_off[p_sess]])
    e_view = np.concatenate([np.arange(n_v), c_idx, p_idx])  # the view each event stems from
    e_type = np.repeat(np.arange(3), [n_v, len(c_idx), len(p_idx)])
    e_seq = np.concatenate([3 * v_pos, 3 * v_pos[c_idx] + 1, 3 * _MAX_VIEWS + v_pos[p_idx]])
    e_ts = day0 + start[e_sess] + e_off
    order = np.lexsort((e_seq, sess_rank[e_sess], e_ts))
    e_sess, e_view, e_type, e_ts = e_sess[order], e_view[order], e_type[order], e_ts[order]
    e_cust = cust[e_sess]
    e_place = np.where(e_type == 2, PLACEMENTS.index("cart"), v_place[e_view])
    events = _table(
        "events",
        {
            "event_id": _ids(f"E{yyyymmdd}", np.arange(1, len(e_ts) + 1), 8),
            "ts": _ts(e_ts),
            "customer_id": world.customer_pa.take(pa.array(e_cust)),
            "session_id": _ids(f"S{yyyymmdd}", sess_rank[e_sess] + 1, 8),
            "sku": world.sku_pa.take(pa.array(v_prod[e_view])),
            "event_type": _pa_strings(EVENT_TYPES).take(pa.array(e_type)),
            "channel": _pa_strings(CHANNELS).take(pa.array(channel[e_sess])),
            "placement": _pa_strings(PLACEMENTS).take(pa.array(e_place)),
            "region": _pa_strings(r for r, _ in REGIONS).take(pa.array(world.region[e_cust])),
            "device": _pa_strings(DEVICES).take(pa.array(device[e_sess])),
        },
    )

    # -- orders and lines -----------------------------------------------------------------------------------
    o_sess = np.flatnonzero(has_purchase)
    o_sess = o_sess[np.lexsort((sess_rank[o_sess], start[o_sess] + pay_off[o_sess]))]
    order_no = np.full(n_sessions, -1, dtype=np.int64)
    order_no[o_sess] = np.arange(len(o_sess))
    line_order = np.lexsort((v_pos[p_idx], order_no[p_sess]))
    l_view, l_sess, l_qty = p_idx[line_order], p_sess[line_order], qty[line_order]
    l_order = order_no[l_sess]
    l_first = np.searchsorted(l_order, l_order, side="left")
    l_no = np.arange(len(l_view)) - l_first + 1
    l_prod = v_prod[l_view]
    l_price = world.price[l_prod]
    l_disc = v_disc[l_view]
    # Like a real checkout, each line is rounded to the cent (half up, in exact decimal arithmetic, as the staging
    # models do on every engine) and the order total is the sum of rounded lines.
    price_cents = np.round(l_price * 100).astype(np.int64)
    keep_bp = 10_000 - np.round(l_disc * 10_000).astype(np.int64)
    l_amount = ((l_qty.astype(np.int64) * price_cents * keep_bp + 5_000) // 10_000) / 100
    totals = np.round(np.bincount(l_order, weights=l_amount, minlength=len(o_sess)), 2)
    o_ts = day0 + start[o_sess] + pay_off[o_sess]
    o_cust = cust[o_sess]
    wh_ids = _pa_strings(world.warehouse_ids)
    order_ids = _ids(f"O{yyyymmdd}", np.arange(1, len(o_sess) + 1), 7)
    orders = _table(
        "orders",
        {
            "order_id": order_ids,
            "ts": _ts(o_ts),
            "customer_id": world.customer_pa.take(pa.array(o_cust)),
            "session_id": _ids(f"S{yyyymmdd}", sess_rank[o_sess] + 1, 8),
            "channel": _pa_strings(CHANNELS).take(pa.array(channel[o_sess])),
            "region": _pa_strings(r for r, _ in REGIONS).take(pa.array(world.region[o_cust])),
            "country": _pa_strings(c for _, c in REGIONS).take(pa.array(world.region[o_cust])),
            "currency": pa.array([CURRENCY] * len(o_sess), type=pa.string()),
            "order_total": pa.array(totals, type=pa.float64()),
            # ORDER_STATUSES is (placed, cancelled): a cancelled order takes index 1.
            "status": _pa_strings(ORDER_STATUSES).take(pa.array(cancelled[o_sess].astype(np.int64))),
        },
    )
    order_items = _table(
        "order_items",
        {
            "order_id": order_ids.take(pa.array(l_order)),
            "line_no": pa.array(l_no, type=pa.int32()),
            "ts": _ts(day0 + start[l_sess] + pay_off[l_sess]),
            "sku": world.sku_pa.take(pa.array(l_prod)),
            "qty": pa.array(l_qty, type=pa.int64()),
            "unit_price": pa.array(l_price, type=pa.float64()),
            "discount": pa.array(l_disc, type=pa.float64()),
            "warehouse_id": wh_ids.take(pa.array(world.customer_warehouse[cust[l_sess]])),
        },
    )
    out = {"events": events, "orders": orders, "order_items": order_items}
    if front is None:
        return out

    # -- closed loop: what was shown, what could not be sold, what left the shelves -------------------------
    i_ts = day0 + start[i_sess] + i_off
    i_order = np.lexsort((i_rank, i_place, sess_rank[i_sess], i_ts))
    i_sess, i_rank, i_prod, i_ts, i_place, i_list, i_version, i_arm = (
        a[i_order] for a in (i_sess, i_rank, i_prod, i_ts, i_place, i_list, i_version, i_arm)
    )
    i_cust = cust[i_sess]
    out["impressions"] = _table(
        "impressions",
        {
            "impression_id": _ids(f"I{yyyymmdd}", np.arange(1, len(i_ts) + 1), 8),
            "ts": _ts(i_ts),
            "customer_id": world.customer_pa.take(pa.array(i_cust)),
            "session_id": _ids(f"S{yyyymmdd}", sess_rank[i_sess] + 1, 8),
            "sku": world.sku_pa.take(pa.array(i_prod)),
            "placement": _pa_strings(PLACEMENTS).take(pa.array(i_place)),
            "rank": pa.array(i_rank, type=pa.int32()),
            "list_id": pa.array(i_list, type=pa.string()),
            "model_version": pa.array(i_version, type=pa.string()),
            "arm": pa.array(i_arm, type=pa.string()),
        },
    )
    # Views that would have become a cart but found the shelf empty: the purchase the customer would have made
    # (the session's channel checkout rate and the line-kept rate), with a quantity drawn as for sales.
    oos = np.flatnonzero(would_cart & ~in_stock)
    bought = rng_front.random(len(oos)) < _CHECKOUT_P_BY_CHANNEL[channel[v_sess[oos]]] * _LINE_KEPT_P
    oos = oos[bought]
    oos_qty = _QTY[_categorical(rng_front, np.cumsum(_QTY_P), len(oos))]
    oos_ts = day0 + start[v_sess[oos]] + v_off[oos]
    sold_out_view, sold_out_qty = lost
    sold_out_sess = v_sess[sold_out_view]
    lost_sess = np.concatenate([v_sess[oos], sold_out_sess])
    lost_prod = np.concatenate([v_prod[oos], v_prod[sold_out_view]])
    lost_qty = np.concatenate([oos_qty, sold_out_qty])
    # A session whose every line was lost has no order to fit inside the day: its checkout time is capped there.
    checkout_ts = np.minimum(start[sold_out_sess] + pay_off[sold_out_sess], _DAY_US - 1)
    lost_ts = np.concatenate([oos_ts, day0 + checkout_ts])
    lost_reason = np.repeat(
        np.array(["out_of_stock", "sold_out"], dtype=object), [len(oos), len(sold_out_view)]
    )
    lo = np.lexsort((lost_prod, sess_rank[lost_sess], lost_ts))
    lost_sess, lost_prod, lost_qty, lost_ts, lost_reason = (
        a[lo] for a in (lost_sess, lost_prod, lost_qty, lost_ts, lost_reason)
    )
    out["lost_sales"] = _table(
        "lost_sales",
        {
            "lost_id": _ids(f"L{yyyymmdd}", np.arange(1, len(lost_ts) + 1), 7),
            "ts": _ts(lost_ts),
            "customer_id": world.customer_pa.take(pa.array(cust[lost_sess])),
            "session_id": _ids(f"S{yyyymmdd}", sess_rank[lost_sess] + 1, 8),
            "sku": world.sku_pa.take(pa.array(lost_prod)),
            "warehouse_id": wh_ids.take(pa.array(world.customer_warehouse[cust[lost_sess]])),
            "qty": pa.array(lost_qty, type=pa.int64()),
            "reason": pa.array(lost_reason, type=pa.string()),
        },
    )
    # Cancelled orders give their units back the same day.
    shipped = ~cancelled[l_sess]
    sold = np.zeros_like(front.on_hand)
    np.add.at(sold, (l_prod[shipped], world.customer_warehouse[cust[l_sess[shipped]]]), l_qty[shipped])
    out["sold_units"] = sold
    return out


def _fill_from_stock(
    world: World,
    on_hand: np.ndarray,
    cust: np.ndarray,
    start: np.ndarray,
    pay_off: np.ndarray,
    p_idx: np.ndarray,
    p_sess: np.ndarray,
    qty: np.ndarray,
    v_prod: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Keep the purchased lines the stock ``on_hand`` (products x warehouses) can fill, first come first served by
    checkout time (``start + pay_off`` of the line's session).

    Returns the kept ``p_idx, p_sess, qty`` and the lost lines as ``(view indices, quantities)``: a line is lost
    when the units asked for before it (filled or not) plus its own exceed what its warehouse held of the
    product, so once a product sells out at a warehouse every later line of it that day is lost.
    """
    prod, wh = v_prod[p_idx], world.customer_warehouse[cust[p_sess]]
    when = start[p_sess] + pay_off[p_sess]
    order = np.lexsort((p_idx, when, wh, prod))
    cell = prod[order] * world.spec.n_warehouses + wh[order]
    cum = np.cumsum(qty[order])
    first = np.searchsorted(cell, cell, side="left")
    before = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0)
    fits = np.empty(len(order), dtype=bool)
    fits[order] = (cum - before) <= on_hand[prod[order], wh[order]]
    return p_idx[fits], p_sess[fits], qty[fits], (p_idx[~fits], qty[~fits])


def _pick_products(
    world: World, rng: np.random.Generator, t: int, cat: np.ndarray, sens: np.ndarray
) -> np.ndarray:
    """One product per view: Zipf popularity within the category, tilted by the viewer's price sensitivity.

    Exact per-viewer weights would need a views x products matrix; instead draw a few candidates by
    popularity (among launched products) and keep one with probability proportional to
    ``relative_price ** -sensitivity`` (sampling-importance-resampling), which costs O(views x candidates).
    """
    weights = np.where(world.product_launch_day <= t, world.popularity, 0.0)[world.by_category]
    cw = np.cumsum(weights)
    edges = np.concatenate([[0.0], cw])[world.category_start]  # cumulative weight at each category boundary
    lo, hi = edges[cat], edges[cat + 1]
    seg_lo, seg_hi = world.category_start[cat], world.category_start[cat + 1] - 1
    cands = np.empty((len(cat), _N_CANDIDATES), dtype=np.int64)
    for k in range(_N_CANDIDATES):
        x = lo + rng.random(len(cat)) * (hi - lo)
        pos = np.clip(np.searchsorted(cw, x, side="right"), seg_lo, seg_hi)
        # Floating-point edge: a draw that rounds onto the boundary may land on an unlaunched product;
        # fall back to the first launched product of the category (each category has one from day 0).
        bad = weights[pos] == 0
        if bad.any():
            pos[bad] = np.searchsorted(cw, lo[bad], side="right")
        cands[:, k] = world.by_category[pos]
    w = world.rel_price[cands] ** (-sens[:, None])
    cw_c = np.cumsum(w, axis=1)
    choice = (rng.random(len(cat))[:, None] * cw_c[:, -1:] >= cw_c).sum(axis=1)
    return cands[np.arange(len(cat)), np.minimum(choice, _N_CANDIDATES - 1)]
