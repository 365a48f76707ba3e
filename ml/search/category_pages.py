"""Category pages that adapt to who browses them: every category ordered for each customer segment.

A product's place on a category page mixes three signals, each a percentile within its category (0..1):

- ``hot``: this week's sales velocity and the 30-day view-to-purchase rate (shrunk towards the category's rate, so
  a product with three views and one sale is not the hottest);
- ``new``: launched in the last :data:`NEW_DAYS` days, by early traction (views and purchases a day since launch);
  0 for older products;
- ``relevant``: how much the segment's customers favour the product's brand and its price band
  (``people/user_profiles``' top brands and preferred price band, averaged over the segment's members);

``score = HOT * hot + NEW * new + RELEVANT * relevant``. Then the page is stock-aware (out of stock: left out;
under :data:`LOW_COVER_DAYS` days of cover: score x 0.8, so the page does not push what is about to run out) and
diverse (each further product of a brand already placed: score x :data:`BRAND_REPEAT_FACTOR`). Segment ``0`` is
the page for visitors without a segment. A known customer's page is then re-ordered by :func:`personalise` (usual
price band, recent views), the same for the read API and the closed-loop shop front.

The pages are an experiment: :func:`page_arms` puts a hashed :data:`PAGE_CONTROL_SHARE` of customers in the control
arm, which sees the default ordering a shop has without the platform, :func:`bestseller_pages` (this week's units
sold, the same for everyone, stock not considered). The closed-loop shop shows each arm its ordering and the online
metrics compare them at the ``category`` placement. The weights are defaults (how they were judged: docs, README).
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from ml.profiles.items import ITEM_PROFILES
from ml.profiles.segments import CUSTOMER_SEGMENTS
from ml.profiles.users import USER_PROFILES
from ml.recommend.experiment import arms
from ml.search.ranker import PERSONAL_WEIGHT
from ml.summary import summary
from ml.warehouse import markdown_table, table_exists

CATEGORY_RANKINGS = "search.category_rankings"
EXPORT = "category_rankings"
HOT, NEW, RELEVANT = 0.5, 0.2, 0.3
NEW_DAYS = 30
LOW_COVER_DAYS = 2.0
BRAND_REPEAT_FACTOR = 0.85
PAGE_SIZE = 50
PRIOR_VIEWS = 50.0
"""Views of pseudo-evidence at the category's conversion rate added to each product's own (empirical Bayes)."""
ANONYMOUS = 0
RANKED, BESTSELLERS = "ranked", "bestsellers"
"""The two orderings of a page: the platform's, and the default one of the control arm."""
PAGE_EXPERIMENT_SALT = "category-pages-v1"
PAGE_CONTROL_SHARE = 0.5
"""Share of customers who see the bestseller ordering. Half, unlike the recommender's 10%: an ordering test has
no known-good champion to protect, and both arms need sessions enough to measure a difference in days."""
PAGE_COLUMNS = [
    "category",
    "ordering",
    "segment_id",
    "rank",
    "sku",
    "title",
    "brand",
    "price_band",
    "score",
    "hot",
    "new",
    "relevant",
    "reason",
]


def products_of_day(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """Per listed product of ``day``: category, brand, price band, funnel, velocity, novelty, stock (NULL when the
    source has no inventory)."""
    return con.execute(
        f"""select i.sku, p.title, i.category, p.brand, i.price_band, i.views_30d, i.purchases_30d,
                   i.velocity_7d, i.novelty_days, i.on_hand, i.days_of_cover
            from {ITEM_PROFILES} as i join marts.dim_products as p on p.sku = i.sku
            where i.as_of_date = ? order by i.sku""",
        [day],
    ).df()


def segment_tastes(con: duckdb.DuckDBPyConnection, day: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(brand share, price-band share) per segment: the mean over the segment's members of each brand's share of
    their brand interest, and the share of members whose preferred price band it is. Segment 0: everyone."""
    if not (table_exists(con, USER_PROFILES) and table_exists(con, CUSTOMER_SEGMENTS)):
        empty = pd.DataFrame(columns=["segment_id", "key", "share"])
        return empty, empty
    members = f"""
        select p.customer_id, coalesce(s.segment_id, {ANONYMOUS}) as segment_id, p.top_brands,
               p.preferred_price_band
        from {USER_PROFILES} as p
        left join {CUSTOMER_SEGMENTS} as s on s.customer_id = p.customer_id and s.as_of_date = p.as_of_date
        where p.as_of_date = $day"""
    brands = con.execute(
        f"""with m as ({members}), everyone as (select * replace ({ANONYMOUS} as segment_id) from m
                                                 union all select * from m where segment_id <> {ANONYMOUS}),
            sizes as (select segment_id, count(*) as n from everyone group by 1),
            shares as (select segment_id, b.brand as key, b.share from everyone, unnest(top_brands) as t(b))
            select s.segment_id, s.key, sum(s.share) / any_value(z.n) as share
            from shares s join sizes z using (segment_id) group by 1, 2""",
        {"day": day},
    ).df()
    bands = con.execute(
        f"""with m as ({members}), everyone as (select * replace ({ANONYMOUS} as segment_id) from m
                                                 union all select * from m where segment_id <> {ANONYMOUS})
            select segment_id, preferred_price_band as key,
                   count(*) / sum(count(*)) over (partition by segment_id) as share
            from everyone where preferred_price_band is not null group by 1, 2""",
        {"day": day},
    ).df()
    return brands, bands


def _percentile(values: pd.Series, groups: pd.Series) -> pd.Series:
    return values.groupby(groups).rank(pct=True, method="average").fillna(0.0)


def signals(products: pd.DataFrame) -> pd.DataFrame:
    """``hot`` and ``new`` per product (percentiles within its category)."""
    out = products.copy()
    cat_rate = out.groupby("category")["purchases_30d"].transform("sum") / out.groupby("category")[
        "views_30d"
    ].transform("sum").clip(lower=1)
    conversion = (out["purchases_30d"] + PRIOR_VIEWS * cat_rate) / (out["views_30d"] + PRIOR_VIEWS)
    out["hot"] = 0.5 * _percentile(out["velocity_7d"].fillna(0), out["category"]) + 0.5 * _percentile(
        conversion, out["category"]
    )
    is_new = out["novelty_days"] < NEW_DAYS
    traction = (out["views_30d"] + 5 * out["purchases_30d"]) / (out["novelty_days"] + 1)
    out["new"] = 0.0
    out.loc[is_new, "new"] = _percentile(traction[is_new], out.loc[is_new, "category"])
    return out


def rank_pages(
    products: pd.DataFrame, brands: pd.DataFrame, bands: pd.DataFrame, page_size: int = PAGE_SIZE
) -> pd.DataFrame:
    """Every category's page for every segment (and segment 0): ``category, segment_id, rank, sku, score, hot,
    new, relevant, reason``."""
    scored = signals(products)
    # a source without stock data (no inventory snapshot: NULL) hides nothing; a product with none on hand is hidden
    scored = scored[scored["on_hand"].isna() | (scored["on_hand"] > 0)]
    segments = sorted(set(brands["segment_id"]) | set(bands["segment_id"]) | {ANONYMOUS})
    pages = []
    for segment in segments:
        brand_share = brands[brands["segment_id"] == segment].set_index("key")["share"]
        band_share = bands[bands["segment_id"] == segment].set_index("key")["share"]
        page = scored.assign(
            # through a dict and to float: mapping a string column by an empty table keeps its string dtype
            brand_share=scored["brand"].map(brand_share.to_dict()).astype(float).fillna(0.0),
            band_share=scored["price_band"].map(band_share.to_dict()).astype(float).fillna(0.0),
        )
        brand_top = page.groupby("category")["brand_share"].transform("max").replace(0, np.nan)
        page["relevant"] = 0.5 * (page["brand_share"] / brand_top).fillna(0.0) + 0.5 * page["band_share"]
        page["score"] = HOT * page["hot"] + NEW * page["new"] + RELEVANT * page["relevant"]
        low = page["days_of_cover"].notna() & (page["days_of_cover"] < LOW_COVER_DAYS)
        page.loc[low, "score"] *= 0.8
        for category, rows in page.groupby("category", sort=True):
            pages.append(_diverse(rows, page_size).assign(category=category, segment_id=segment))
    if not pages:
        return pd.DataFrame(columns=PAGE_COLUMNS)
    out = pd.concat(pages, ignore_index=True).assign(ordering=RANKED)
    out["reason"] = [_reason(r) for r in out.itertuples()]
    return out[PAGE_COLUMNS]


def bestseller_pages(products: pd.DataFrame, page_size: int = PAGE_SIZE) -> pd.DataFrame:
    """The default ordering (the control arm's): every category's listed products by units sold this week, then
    by 30-day purchases and SKU; one page for everyone (segment 0), stock and brands not considered."""
    if products.empty:
        return pd.DataFrame(columns=PAGE_COLUMNS)
    rows = products.assign(
        score=products["velocity_7d"].fillna(0.0).astype(float),
        bought=products["purchases_30d"].fillna(0).astype(float),
    ).sort_values(["category", "score", "bought", "sku"], ascending=[True, False, False, True])
    rows["rank"] = rows.groupby("category", sort=False).cumcount() + 1
    rows = rows[rows["rank"] <= page_size]
    return rows.assign(
        ordering=BESTSELLERS,
        segment_id=ANONYMOUS,
        hot=np.nan,
        new=np.nan,
        relevant=np.nan,
        reason="a bestseller of this category this week",
    )[PAGE_COLUMNS].reset_index(drop=True)


def page_arms(customer_ids) -> np.ndarray:
    """Each customer's arm of the category-page experiment (stable: hashed with :data:`PAGE_EXPERIMENT_SALT`)."""
    return arms(customer_ids, control_share=PAGE_CONTROL_SHARE, salt=PAGE_EXPERIMENT_SALT)


def personalise(pages: pd.DataFrame, in_band, viewed, by: list[str]) -> pd.DataFrame:
    """Ranked pages (one per ``by`` group) re-ordered for their shopper: a product in the shopper's usual price band
    (``in_band``) or viewed lately (``viewed``; both booleans per row) has its score raised by up to
    :data:`~ml.search.ranker.PERSONAL_WEIGHT`, as in search; ranks renumbered within each group."""
    boost = 1.0 + PERSONAL_WEIGHT * (0.5 * np.asarray(in_band, float) + 0.5 * np.asarray(viewed, float))
    out = pages.assign(score=pages["score"].to_numpy(float) * boost)
    out = out.sort_values([*by, "score", "rank"], ascending=[True] * len(by) + [False, True], kind="stable")
    out["rank"] = out.groupby(by, sort=False).cumcount() + 1
    return out


def _diverse(rows: pd.DataFrame, page_size: int) -> pd.DataFrame:
    """The page in order: repeatedly the best product after discounting brands already placed."""
    rows = rows.sort_values(["score", "sku"], ascending=[False, True])
    remaining = rows.to_dict("records")
    placed: list[dict] = []
    seen: dict[str, int] = {}
    while remaining and len(placed) < page_size:
        best = max(
            range(len(remaining)),
            key=lambda j: (
                remaining[j]["score"] * BRAND_REPEAT_FACTOR ** seen.get(remaining[j]["brand"], 0),
                -j,
            ),
        )
        chosen = remaining.pop(best)
        chosen["score"] = chosen["score"] * BRAND_REPEAT_FACTOR ** seen.get(chosen["brand"], 0)
        seen[chosen["brand"]] = seen.get(chosen["brand"], 0) + 1
        placed.append(chosen)
    out = pd.DataFrame(placed)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def _reason(row) -> str:
    parts = []
    if row.new >= 0.5:
        parts.append("new and catching on")
    if row.hot >= 0.8:
        parts.append("selling fast this week")
    if row.relevant >= 0.5:
        parts.append(f"a brand and price your segment favours ({row.brand})")
    return "; ".join(parts) or "in this category"


def category_pages_day(con: duckdb.DuckDBPyConnection, day: date) -> pd.DataFrame:
    """The day's pages: :func:`rank_pages` over :func:`products_of_day` and :func:`segment_tastes`, then the
    :func:`bestseller_pages` of the control arm; none before the item profiles exist."""
    if not table_exists(con, ITEM_PROFILES):
        return pd.DataFrame(columns=PAGE_COLUMNS)
    brands, bands = segment_tastes(con, day)
    products = products_of_day(con, day)
    return pd.concat([rank_pages(products, brands, bands), bestseller_pages(products)], ignore_index=True)


def pages_summary(pages: pd.DataFrame) -> dict:
    if pages.empty:
        return summary(0, {"categories": 0, "segments": 0})
    everything, pages = pages, pages[pages["ordering"] == RANKED]
    per_page = pages.groupby(["category", "segment_id"])
    brands_in_top10 = pages[pages["rank"] <= 10].groupby(["category", "segment_id"])["brand"].nunique()
    preview = pages[(pages["segment_id"] == ANONYMOUS) & (pages["rank"] <= 3)][
        ["category", "rank", "title", "reason"]
    ]
    top10 = everything[(everything["segment_id"] == ANONYMOUS) & (everything["rank"] <= 10)]
    shared = top10.groupby(["category", "sku"])["ordering"].nunique()
    return summary(
        len(everything),
        {
            # how far the platform's page departs from the control arm's default ordering
            "top10_shared_with_bestsellers": round(
                float((shared == 2).groupby(level="category").sum().mean() / 10), 4
            ),
            "categories": int(pages["category"].nunique()),
            "segments": int(pages["segment_id"].nunique()),
            "mean_page_length": round(float(per_page.size().mean()), 1),
            "mean_brands_in_top10": round(float(brands_in_top10.mean()), 2),
            "new_products_in_top10_share": round(
                float((pages.loc[pages["rank"] <= 10, "new"] > 0).mean()), 4
            ),
        },
        {"top3_for_visitors_without_a_segment": markdown_table(preview, max_rows=60, max_cell_chars=60)},
    )
