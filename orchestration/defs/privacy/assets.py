"""Statistics released to partners with differential privacy (:mod:`ml.privacy`)."""

import dagster as dg

from ml.privacy.partner_stats import PrivacySettings
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.metadata import summary_metadata
from orchestration.partitions import DAILY_WAREHOUSE_WRITER, partition_days
from orchestration.resources import DataFilesResource, WarehouseResource


class PartnerPrivacyConfig(dg.Config, PrivacySettings):
    pass


@dg.asset(
    key=dg.AssetKey(["place", "partner_aggregates"]),
    group_name="place",
    owners=["team:data-platform"],
    kinds={"duckdb", "python"},
    description=(
        "Channel, region and segment statistics of the day (customers who ordered, orders, revenue) for "
        "partners, released with differential privacy (OpenDP's Laplace mechanisms; contributions bounded per "
        "customer-day; cells under the minimum noisy customer count suppressed). `outputs.partner_aggregates`, "
        "exported as `partner_aggregates`; every release's epsilon in `outputs.privacy_ledger`. A re-run on "
        "unchanged data keeps the earlier release and spends nothing; the epsilon spent plots over partitions."
    ),
    deps=[dg.AssetKey(["marts", "fct_orders"]), dg.AssetKey(["people", "customer_segments"])],
    automation_condition=DOWNSTREAM_AUTOMATION,
    **DAILY_WAREHOUSE_WRITER,
)
def partner_aggregates(
    context: dg.AssetExecutionContext,
    config: PartnerPrivacyConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    from ml.privacy.daily import partner_release_day
    from ml.summary import summary
    from ml.warehouse import markdown_table

    days, summaries = partition_days(context), []
    with warehouse.connect() as con:
        for day in days:
            released, info = partner_release_day(con, day, config)
            context.log.info(f"{day}: {info['action']}")
            if released is not None:
                files.export(released.drop(columns=["release_date"]), "partner_aggregates", day)
            summaries.append(
                summary(
                    None if released is None else len(released),
                    {
                        "epsilon_spent": info.get("epsilon_spent", 0.0),
                        "epsilon_spent_day_total": info.get(
                            "epsilon_spent_total", info["epsilon_spent_before"]
                        ),
                        "cells_released": info.get("cells_released"),
                        "cells_suppressed": info.get("cells_suppressed"),
                        "action": info["action"],
                    },
                    {"preview": markdown_table(released, max_rows=12)} if released is not None else None,
                    {"noise_scale": info.get("noise_scale", {}), "fingerprint": info["fingerprint"]},
                )
            )
    return dg.MaterializeResult(metadata=summary_metadata(summaries, days))


privacy_assets = [partner_aggregates]
