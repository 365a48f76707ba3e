"""Goods understood from their text, and the index search reads (``ml.search``)."""

import dagster as dg

from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.measured import each_day
from orchestration.partitions import DAILY_WAREHOUSE_WRITER
from orchestration.resources import DataFilesResource, WarehouseResource

GOODS = {
    "group_name": "goods",
    "owners": ["team:personalisation"],
    "automation_condition": DOWNSTREAM_AUTOMATION,
}
ITEM_EMBEDDINGS = dg.AssetKey(["goods", "item_embeddings"])
SAMPLE_QUERIES = ("gift for a new baby", "waterproof boots", "something for home cooking")


@dg.asset(
    key=ITEM_EMBEDDINGS,
    kinds={"torch", "duckdb"},
    description=(
        "Each product's text (title, description, category, brand) as a 384-dimension embedding from the "
        "pretrained sentence encoder all-MiniLM-L6-v2 (installed with its weights from the package index, sha256 "
        "checked before loading, never downloaded) in `search.text_embeddings`, keyed by the content hash of the "
        "text and the weights: only new or changed products are encoded. Metadata: products, encoded, reused, the "
        "model's name, package version and weights hash."
    ),
    deps=[dg.AssetKey(["marts", "dim_products"])],
    **GOODS,
    **DAILY_WAREHOUSE_WRITER,
)
def item_embeddings(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    from ml.search.catalogue import encode_new_products
    from ml.search.encoder import load_encoder

    encoder = load_encoder()

    def step(con, day) -> dict:
        def progress(done: int, total: int) -> None:
            context.log.info(f"{day}: encoded {done}/{total} new or changed products")

        day_summary = encode_new_products(con, day, encoder, progress)
        context.log.info(
            f"{day}: {day_summary['metrics']['encoded']} encoded, {day_summary['metrics']['reused']} reused"
        )
        return day_summary

    result = each_day(context, warehouse, step)
    return dg.MaterializeResult(
        metadata={
            **(result.metadata or {}),
            **{k: dg.MetadataValue.text(v) for k, v in encoder.describe().items()},
        }
    )


@dg.asset(
    key=dg.AssetKey(["goods", "search_index"]),
    kinds={"python", "parquet"},
    description=(
        "What `GET /search` reads for D, exported as Parquet: the catalogue listed by D with price band "
        "(`goods/item_profiles`), units on hand and its embedding (`search_catalogue`), and per customer the "
        "profile facts search personalises with: category affinity and usual price band (`people/user_profiles`) "
        "and the products viewed in the last 7 days, and their segment (`search_profiles`). Out-of-stock products stay in the "
        "export, marked, so that search filters them on the day they run out. Metadata: products, in-stock "
        "share, customers with facts, and sample searches with their top results."
    ),
    deps=[
        ITEM_EMBEDDINGS,
        dg.AssetKey(["goods", "item_profiles"]),
        dg.AssetKey(["people", "user_profiles"]),
        dg.AssetKey(["people", "customer_segments"]),
        dg.AssetKey(["marts", "fct_inventory_daily"]),
        dg.AssetKey(["marts", "fct_events"]),
    ],
    **GOODS,
    **DAILY_WAREHOUSE_WRITER,
)
def search_index(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, files: DataFilesResource
) -> dg.MaterializeResult:
    from ml.search.catalogue import (
        CATALOGUE_EXPORT,
        PROFILES_EXPORT,
        embedding_matrix,
        index_summary,
        searchable_catalogue,
        shopper_facts,
    )
    from ml.search.encoder import load_encoder
    from ml.search.ranker import ProductSearch

    encoder = load_encoder()

    def step(con, day) -> dict:
        catalogue = searchable_catalogue(con, day, encoder.weights_sha256)
        profiles = shopper_facts(con, day)
        files.export(catalogue, CATALOGUE_EXPORT, day)
        files.export(profiles, PROFILES_EXPORT, day)
        samples = None
        if len(catalogue):
            search = ProductSearch(catalogue, embedding_matrix(catalogue), encoder.encode)
            samples = search.sample_results(SAMPLE_QUERIES, k=3)
        context.log.info(f"{day}: {len(catalogue)} products, {len(profiles)} customers with facts exported")
        return index_summary(catalogue, profiles, samples)

    return each_day(context, warehouse, step)


@dg.asset(
    key=dg.AssetKey(["goods", "category_rankings"]),
    kinds={"duckdb", "python"},
    description=(
        "Every category's page ordered for each customer segment (segment 0: visitors without one) as of D "
        "(`search.category_rankings`, exported for `GET /category/{category}`): hot (this week's velocity and the "
        "30-day conversion, shrunk), new (launched in the last 30 days, by early traction) and relevant (the "
        "segment's favoured brands and price bands from `people/user_profiles`), out-of-stock products left out, "
        "low cover pushed down, each further product of a brand already placed discounted; beside them the "
        "bestseller ordering (`ordering = 'bestsellers'`) that the control arm of the category-page experiment "
        "sees (the shop front logs both at the `category_page` placement; `feedback/online_metrics` compares "
        "them). Metadata: pages, brands in each top 10, the share of new products, how much of each top 10 the "
        "bestsellers share, the top 3 of each category."
    ),
    deps=[
        dg.AssetKey(["goods", "item_profiles"]),
        dg.AssetKey(["people", "user_profiles"]),
        dg.AssetKey(["people", "customer_segments"]),
        dg.AssetKey(["marts", "dim_products"]),
    ],
    **GOODS,
    **DAILY_WAREHOUSE_WRITER,
)
def category_rankings(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, files: DataFilesResource
) -> dg.MaterializeResult:
    from ml.search.category_pages import CATEGORY_RANKINGS, EXPORT, category_pages_day, pages_summary
    from ml.warehouse import ensure_schema, replace_partition

    def step(con, day) -> dict:
        pages = category_pages_day(con, day)
        ensure_schema(con, CATEGORY_RANKINGS.split(".")[0])
        if len(pages):
            replace_partition(con, CATEGORY_RANKINGS, "as_of_date", day, pages.assign(as_of_date=day))
        files.export(pages, EXPORT, day)
        context.log.info(f"{day}: {len(pages)} rows, {pages['category'].nunique()} categories")
        return pages_summary(pages)

    return each_day(context, warehouse, step)


search_assets = [item_embeddings, search_index, category_rankings]
