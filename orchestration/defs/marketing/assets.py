"""Marketing: the day's personalised messages, written from facts and checked against them (``ml.marketing``)."""

import dagster as dg

from ml.marketing.bandit import named_policy
from ml.marketing.feedback import (
    MESSAGE_METRICS,
    MESSAGE_UPLIFT,
    message_metrics_day,
    message_metrics_summary,
)
from ml.marketing.messages import export_frame, messages_day, messages_summary, store_messages
from ml.marketing.policy import (
    MIN_REWARDED,
    MIN_ROUNDS,
    decide,
    policy_summary,
    serving_policy,
    store_decision,
)
from ml.marketing.targeting import MarketingSettings
from orchestration.defs.automation import DOWNSTREAM_AUTOMATION
from orchestration.measured import each_day, write_measured_days
from orchestration.partitions import DAILY_WAREHOUSE_WRITER
from orchestration.resources import DataFilesResource, WarehouseResource

MARKETING = {
    "group_name": "marketing",
    "owners": ["team:marketing"],
    "automation_condition": DOWNSTREAM_AUTOMATION,
}


class MarketingConfig(dg.Config, MarketingSettings):
    pass


@dg.asset(
    key=dg.AssetKey(["marketing", "message_policy"]),
    kinds={"duckdb", "python"},
    description=(
        "The policy that chooses each message's template family and offer level (`marketing.message_policy`): "
        "a linear Thompson Sampling bandit learnt from every sent message whose answer is loaded, its reward the "
        "margin after the discount credited to the message. Before it replaces the serving policy it is judged "
        "off-policy on the logged sends (IPS, self-normalised IPS, DM, doubly robust; 2-fold cross-fitted, with "
        f"bootstrap intervals: `marketing.policy_evaluation`) and adopted only when at least {MIN_ROUNDS} sends "
        f"({MIN_REWARDED} of them earning) back it and its doubly robust estimate is no worse than the serving "
        "policy's, both judged on the sends after the serving policy's adoption. Until then the uniform prior "
        "serves. "
        "Reads earlier days of `marketing.messages` (their contexts, arms and propensities)."
    ),
    deps=[dg.AssetKey(["marts", "fct_message_events"])],
    **MARKETING,
    **DAILY_WAREHOUSE_WRITER,
)
def message_policy(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    def step(con, day) -> dict:
        decision, estimates, sends = decide(con, day)
        store_decision(con, day, decision, estimates, len(sends))
        context.log.info(f"{day}: {len(sends)} logged sends; {decision.reason}")
        return policy_summary(decision, estimates, sends)

    return each_day(context, warehouse, step)


@dg.asset(
    key=dg.AssetKey(["marketing", "messages"]),
    kinds={"duckdb", "python"},
    description=(
        "Personalised messages written on D for the shop to send on D+1 (`marketing.messages`, the ready ones "
        "exported and served by `GET /messages/{customer_id}`). The playbook targets from D's profiles: frequent "
        "high-value customers get member perks (free delivery), lapsing ones a win-back offer, new ones a welcome "
        "offer, price-sensitive ones a discount; opt-outs and a frequency cap (one message per 7 days) are "
        "respected. The template family and the offer level (half, once or one and a half times the campaign's "
        "percent off) are drawn from `marketing/message_policy`'s probabilities, logged as the propensity. "
        "Each message features the customer's served list in stock, with titles, prices, the offer and "
        "its expiry from a fact sheet it carries as the reason it was sent. A grounding checker reads every "
        "price, percentage, date, count, product and category in the words and blocks a message that states "
        "anything the sheet does not hold. A fixed hashed 10% of targeted customers is held out (written, not "
        "sent) for uplift. Metadata: the targeting funnel, the grounding pass rate, samples and blocked examples."
    ),
    deps=[
        dg.AssetKey(["people", "user_profiles"]),
        dg.AssetKey(["people", "customer_segments"]),
        dg.AssetKey(["recommend", "recommendations"]),
        dg.AssetKey(["marts", "dim_products"]),
        dg.AssetKey(["marts", "fct_inventory_daily"]),
        dg.AssetKey(["staging", "stg_promotions"]),
        dg.AssetKey(["marts", "fct_message_events"]),  # opt-outs
        dg.AssetKey(["marketing", "message_policy"]),
    ],
    **MARKETING,
    **DAILY_WAREHOUSE_WRITER,
)
def messages(
    context: dg.AssetExecutionContext,
    config: MarketingConfig,
    warehouse: WarehouseResource,
    files: DataFilesResource,
) -> dg.MaterializeResult:
    pinned = None if config.arm_policy == "learnt" else named_policy(config.arm_policy)

    def step(con, day) -> dict:
        frame, funnel = messages_day(con, day, config, pinned or serving_policy(con, day))
        store_messages(con, day, frame)
        files.export(export_frame(frame).drop(columns=["as_of_date"]), "messages", day)
        context.log.info(f"{day}: {len(frame)} messages written, funnel {funnel}")
        return messages_summary(frame, funnel)

    return each_day(context, warehouse, step)


@dg.asset(
    key=dg.AssetKey(["marketing", "message_metrics"]),
    kinds={"duckdb", "python"},
    description=(
        "What the messages sent on D earned, measured by run D (the shop's day D is loaded): per campaign, "
        "template family and arm, the funnel of the sent ones (open, click, unsubscribe rates, sales credited "
        "to the click's session) and, for sent and held-out customers alike, conversion, revenue and margin of "
        "everything bought on the send day (`marketing.message_metrics`). Sent minus held out with a 95% "
        "bootstrap interval over customers, overall and per campaign (`marketing.message_uplift`); margin is "
        "after discounts, so an offer that gives money away shows. Closed-loop store only."
    ),
    deps=[
        dg.AssetKey(["marketing", "messages"]),
        dg.AssetKey(["marts", "fct_message_events"]),
        dg.AssetKey(["marts", "fct_order_items"]),
    ],
    **MARKETING,
    **DAILY_WAREHOUSE_WRITER,
)
def message_metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    return write_measured_days(
        context,
        warehouse,
        message_metrics_day,
        (MESSAGE_METRICS, MESSAGE_UPLIFT),
        message_metrics_summary,
        "no messages were sent on the day",
    )


marketing_assets = [message_policy, messages, message_metrics]
