"""How the closed-loop shop's customers answer the platform's messages: the simulator's truth for marketing.

A message the platform exported on D-1 is delivered on D at its send hour (plus up to 10 minutes) through its
channel. Then, per message, in this order:

- **opened** with probability ``OPEN_BASE`` x the share of the day's shopping at the send hour relative to the
  busiest hour (``0.5 + 0.5 x`` that ratio: a message sent at 3 a.m. is opened about half as often as one sent
  at the evening peak) x ``FATIGUE`` to the number of messages the customer was sent in the
  ``FATIGUE_DAYS`` before (customers tire of mail) x 0.1 for a customer who has left the shop;
- an opened message leads to an **unsubscribe** with probability ``UNSUBSCRIBE_BASE`` x (1 + messages in
  the fatigue window) x 2 when the featured products match the customer's tastes poorly (mean appeal below 1);
- otherwise it is **clicked** with probability ``CLICK_BASE`` x the mean appeal of its featured products
  (:func:`ml.sources.simulated.for_you_appeal`: true taste for the category, price, popularity; capped at 3)
  x the offer's pull (``1 + OFFER_LIFT`` x discount x the customer's true price sensitivity relative to the
  average) x the tone of the template family (:func:`tone_effect`: ``personal`` pays where the products truly
  match, ``urgent`` where the customer is price-sensitive; ``urgent`` also raises the unsubscribe chance of the
  others by half); the product clicked is drawn among the featured ones by appeal, and the click opens a session (a
  view at placement ``message``);
- the clicked product is **bought** with probability ``BUY_BASE`` x its appeal (capped at 2) x the offer's
  pull, quantity as for other sales, at the list price less the better of the offer and the day's promotion;
  a purchase the stock at the customer's warehouse (what the day's other sales left) cannot fill is lost.

Messages in the control arm were never exported, so they are never sent. All draws come from one generator
seeded by (seed, scale, day, 2) in a fixed order: the same messages on the same day give the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.sources.schema import CHANNELS, DEVICES, PLACEMENTS
from ml.sources.simulated import (
    _DAY_US,
    _HOUR_P,
    _QTY,
    _QTY_P,
    _US_PER_S,
    CURRENCY,
    REGIONS,
    START_DATE,
    World,
    _categorical,
    _discount_matrix,
    _fill_from_stock,
    _ids,
    _pa_strings,
    _Promo,
    _promotions,
    _table,
    _ts,
    _utc_midnight_us,
    for_you_appeal,
)

OPEN_BASE = 0.30
CLICK_BASE = 0.05
BUY_BASE = 0.15
UNSUBSCRIBE_BASE = 0.01
FATIGUE = 0.85
FATIGUE_DAYS = 14
OFFER_LIFT = 3.0
MESSAGE_PLACEMENT = PLACEMENTS.index("message")
SHOP_CHANNEL_OF = {"email": CHANNELS.index("email"), "push": CHANNELS.index("app")}


@dataclass
class MessageAnswers:
    tables: dict[str, pa.Table]
    """``message_events`` and the visits the clicks opened: ``events``, ``orders``, ``order_items``,
    ``lost_sales`` (to append to the day's)."""
    sold_units: np.ndarray
    """products x warehouses units the message purchases took from the shelves."""


def answer_messages(
    world: World,
    day: date,
    t: int,
    messages: pd.DataFrame | None,
    recent_messages: pd.Series,
    on_hand: np.ndarray,
    promos: list[_Promo],
) -> MessageAnswers:
    """The day's answers to ``messages`` (the export of D-1: ``message_id, customer_id, channel, send_hour,
    discount_pct, featured_skus``). ``recent_messages``: messages sent to each customer id in the fatigue
    window before the day. ``on_hand``: the stock left after the day's other sales."""
    rng = np.random.default_rng([world.seed, world.spec.index, day.toordinal(), 2])
    day0, yyyymmdd = _utc_midnight_us(day), day.strftime("%Y%m%d")
    msgs = _known_messages(world, messages, t)
    n = len(msgs)
    cust = msgs["customer"].to_numpy(np.int64)
    featured, valid, appeal = _appeal(world, msgs)
    p = _probabilities(world, msgs, t, recent_messages, appeal, valid)
    hour = msgs["send_hour"].to_numpy(np.int64).clip(0, 23)

    delivered = day0 + hour * 3600 * _US_PER_S + (rng.uniform(0, 600, n) * _US_PER_S).astype(np.int64)
    opened = rng.random(n) < p.open
    opened_at = delivered + (np.minimum(rng.exponential(1.5 * 3600, n), 6 * 3600) * _US_PER_S).astype(
        np.int64
    )
    unsubscribed = opened & (rng.random(n) < p.unsubscribe)
    clicked = opened & ~unsubscribed & (rng.random(n) < p.click)
    weights = np.cumsum(appeal, axis=1)
    pick = (rng.random(n)[:, None] * weights[:, -1:] >= weights).sum(axis=1).clip(0, featured.shape[1] - 1)
    product = featured[np.arange(n), pick]
    clicked_at = opened_at + (rng.uniform(20, 300, n) * _US_PER_S).astype(np.int64)
    wants = clicked & (rng.random(n) < p.buy[np.arange(n), pick])
    qty = _QTY[_categorical(rng, np.cumsum(_QTY_P), n)]
    carted_at = clicked_at + (rng.uniform(10, 60, n) * _US_PER_S).astype(np.int64)
    paid_at = carted_at + (rng.uniform(60, 240, n) * _US_PER_S).astype(np.int64)
    last = day0 + _DAY_US - 1
    opened_at, clicked_at, carted_at, paid_at = (
        np.minimum(a, last) for a in (opened_at, clicked_at, carted_at, paid_at)
    )

    # first come first served on what the day's other sales left, by checkout time, as the day's other sales
    wh = world.customer_warehouse[cust]
    wanting = np.flatnonzero(wants)
    kept, _, kept_qty, _ = _fill_from_stock(
        world, on_hand, cust, paid_at, np.zeros(n, dtype=np.int64), wanting, wanting, qty[wanting], product
    )
    bought = np.zeros(n, dtype=bool)
    bought[kept] = True
    lost = wants & ~bought
    sold_units = np.zeros_like(on_hand)
    np.add.at(sold_units, (product[kept], wh[kept]), kept_qty)

    message_events = _message_events(
        world, msgs, yyyymmdd, last, delivered, opened, opened_at, unsubscribed, clicked, clicked_at, product
    )
    visits = _visits(
        world, msgs, yyyymmdd, clicked, bought, product, qty, clicked_at, carted_at, paid_at, promos
    )
    visits["lost_sales"] = _table(
        "lost_sales",
        {
            "lost_id": _ids(f"LM{yyyymmdd}", np.arange(1, lost.sum() + 1), 6),
            "ts": _ts(paid_at[lost]),
            "customer_id": world.customer_pa.take(pa.array(cust[lost])),
            "session_id": _session_ids(yyyymmdd, clicked, lost),
            "sku": world.sku_pa.take(pa.array(product[lost])),
            "warehouse_id": _pa_strings(f"WH{w + 1:02d}" for w in wh[lost]),
            "qty": pa.array(qty[lost], type=pa.int64()),
            "reason": pa.array(
                np.where(on_hand[product[lost], wh[lost]] > 0, "sold_out", "out_of_stock").astype(object),
                type=pa.string(),
            ),
        },
    )
    return MessageAnswers({"message_events": message_events, **visits}, sold_units)


@dataclass
class _Chances:
    open: np.ndarray
    unsubscribe: np.ndarray
    click: np.ndarray
    buy: np.ndarray
    """(messages, featured slots): the chance of buying each featured product once it is the one clicked."""


def _appeal(world: World, msgs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Featured product positions, whether each slot holds a product, and each product's appeal to the customer."""
    cust = msgs["customer"].to_numpy(np.int64)
    featured = np.stack(msgs["products"].to_numpy()) if len(msgs) else np.zeros((0, 1), dtype=np.int64)
    valid = featured >= 0
    appeal = np.where(
        valid,
        for_you_appeal(world, np.repeat(cust, featured.shape[1]), featured.ravel().clip(0)).reshape(
            featured.shape
        ),
        0.0,
    )
    return featured, valid, appeal


def tone_effect(
    world: World, family: np.ndarray, cust: np.ndarray, mean_appeal: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """How the template family's tone moves the click and the unsubscribe (multipliers): ``plain`` is neutral;
    ``personal`` ("picked for you") pulls when the featured products truly match the customer's tastes and
    falls flat when they do not; ``urgent`` ("last chance") pulls price-sensitive customers and puts the
    others off, who also unsubscribe more often."""
    sensitivity = world.price_sens[cust] / world.price_sens.mean()
    personal = 0.75 + 0.25 * np.minimum(mean_appeal, 2.0)
    urgent = np.clip(0.5 + 0.5 * sensitivity, 0.6, 1.6)
    click = np.select([family == "personal", family == "urgent"], [personal, urgent], 1.0)
    unsubscribe = np.where((family == "urgent") & (sensitivity < 1), 1.5, 1.0)
    return click, unsubscribe


def _probabilities(
    world: World,
    msgs: pd.DataFrame,
    t: int,
    recent_messages: pd.Series,
    appeal: np.ndarray,
    valid: np.ndarray,
) -> _Chances:
    """Every chance of the answer chain, from the truth (the module's docstring says how)."""
    n = len(msgs)
    cust = msgs["customer"].to_numpy(np.int64)
    mean_appeal = appeal.sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    discount = msgs["discount_pct"].to_numpy(float) / 100.0
    pull = 1.0 + OFFER_LIFT * discount * world.price_sens[cust] / world.price_sens.mean()
    recent = recent_messages.reindex(msgs["customer_id"]).fillna(0).to_numpy(float)
    hour = msgs["send_hour"].to_numpy(np.int64).clip(0, 23)
    left = t >= world.churn_day[cust]
    family = msgs["family"].fillna("plain").to_numpy(object) if "family" in msgs else np.full(n, "plain")
    tone_click, tone_unsubscribe = tone_effect(world, family, cust, mean_appeal)
    p_open = (
        OPEN_BASE * (0.5 + 0.5 * _HOUR_P[hour] / _HOUR_P.max()) * FATIGUE**recent * np.where(left, 0.1, 1)
    )
    p_unsub = UNSUBSCRIBE_BASE * (1 + recent) * np.where(mean_appeal < 1, 2.0, 1.0) * tone_unsubscribe
    p_click = np.minimum(CLICK_BASE * np.minimum(mean_appeal, 3.0) * pull * tone_click, 0.9)
    p_buy = np.minimum(BUY_BASE * np.minimum(appeal, 2.0) * pull[:, None], 0.9)
    return _Chances(p_open, p_unsub, p_click, p_buy)


def answer_chances(
    world: World,
    day: date,
    messages: pd.DataFrame,
    recent_messages: pd.Series,
    cost_share: float,
) -> pd.DataFrame:
    """The truth's chances for each message (indexed by ``message_id``; the export's columns), had the shop sent
    it on ``day``: ``click`` (opened, not unsubscribed, clicked), ``buy_given_click`` (the clicked product, drawn
    by appeal, is bought) and ``margin_given_buy`` (the mean quantity x the unit margin after the better of the
    offer and the day's promotion, ``cost_share`` of the list price being the cost as the marts count it, over
    the product bought). Stock is ignored: where shelves run empty these are upper bounds."""
    t = (day - START_DATE).days
    msgs = _known_messages(world, messages, t)
    featured, valid, appeal = _appeal(world, msgs)
    p = _probabilities(world, msgs, t, recent_messages, appeal, valid)
    channel = np.array([SHOP_CHANNEL_OF[c] for c in msgs["channel"]], dtype=np.int64)
    promo = _discount_matrix(world, _promotions(world, t))[
        world.product_cat[featured.clip(0)], channel[:, None]
    ]
    offer = msgs["discount_pct"].to_numpy(float)[:, None] / 100.0
    unit_margin = world.price[featured.clip(0)] * (1.0 - np.maximum(offer, promo) - cost_share)
    share = appeal / np.maximum(appeal.sum(axis=1, keepdims=True), 1e-12)
    mean_qty = float((_QTY * _QTY_P).sum())
    buy_given_click = (share * p.buy * valid).sum(axis=1)
    margin_of_buys = (share * p.buy * unit_margin * valid).sum(axis=1) * mean_qty
    return pd.DataFrame(
        {
            "click": p.open * (1 - p.unsubscribe) * p.click,
            "buy_given_click": buy_given_click,
            "margin_given_buy": margin_of_buys / np.maximum(buy_given_click, 1e-12),
        },
        index=pd.Index(msgs["message_id"].to_numpy(), name="message_id"),
    )


def expected_credited_margin(
    world: World,
    day: date,
    messages: pd.DataFrame,
    recent_messages: pd.Series,
    cost_share: float,
) -> pd.Series:
    """The truth's expected margin credited to each message (by ``message_id``), had the shop sent it on
    ``day``: the product of :func:`answer_chances`. The regret and the oracle of the message benchmark are
    computed from it."""
    chances = answer_chances(world, day, messages, recent_messages, cost_share)
    return chances["click"] * chances["buy_given_click"] * chances["margin_given_buy"]


def _known_messages(world: World, messages: pd.DataFrame | None, t: int) -> pd.DataFrame:
    """The messages to known customers, with customer positions and featured product positions (-1 where a
    SKU is unknown or not launched yet); a message with no deliverable product is not sent."""
    columns = [
        "message_id",
        "customer_id",
        "channel",
        "send_hour",
        "discount_pct",
        "family",
        "customer",
        "products",
    ]
    if messages is None or messages.empty:
        return pd.DataFrame(columns=columns)
    m = messages.sort_values("message_id").reset_index(drop=True)
    if "family" not in m:
        m["family"] = "plain"
    m["customer"] = pd.Index(world.customer_ids).get_indexer(m["customer_id"].astype(str))
    skus = pd.Index(world.skus)
    width = max(len(f) for f in m["featured_skus"])

    def positions(featured) -> np.ndarray:
        pos = skus.get_indexer([str(s) for s in featured])
        pos = np.where((pos >= 0) & (world.product_launch_day[pos.clip(0)] <= t), pos, -1)
        return np.pad(pos, (0, width - len(pos)), constant_values=-1)

    m["products"] = [positions(f) for f in m["featured_skus"]]
    signed_up = world.signup_day[m["customer"].clip(0)] < t  # a customer known before the day
    ok = (m["customer"] >= 0) & signed_up & m["products"].map(lambda p: bool((p >= 0).any()))
    return m.loc[ok, columns].reset_index(drop=True)


def _session_ids(yyyymmdd: str, clicked: np.ndarray, rows: np.ndarray) -> pa.Array:
    """The session a message's click opened: numbered in message order among the clicked ones."""
    number = np.cumsum(clicked)
    return _ids(f"SM{yyyymmdd}", number[rows], 7)


def _message_events(
    world: World,
    msgs: pd.DataFrame,
    yyyymmdd: str,
    day_end: int,
    delivered: np.ndarray,
    opened: np.ndarray,
    opened_at: np.ndarray,
    unsubscribed: np.ndarray,
    clicked: np.ndarray,
    clicked_at: np.ndarray,
    product: np.ndarray,
) -> pa.Table:
    """One event per delivery, open, click (with its SKU and the session it opened) and unsubscribe, in time
    order (all arrays are per message, times in microseconds since the epoch)."""
    n = len(msgs)
    rows = np.arange(n)
    kinds = [
        (rows, 0, delivered),
        (rows[opened], 1, opened_at[opened]),
        (rows[clicked], 2, clicked_at[clicked]),
        (rows[unsubscribed], 3, np.minimum(opened_at[unsubscribed] + 30 * _US_PER_S, day_end)),
    ]
    e_row = np.concatenate([k[0] for k in kinds]).astype(np.int64)
    e_type = np.concatenate([np.full(len(k[0]), k[1]) for k in kinds]).astype(np.int64)
    e_ts = np.concatenate([k[2] for k in kinds]).astype(np.int64)
    order = np.lexsort((e_type, e_row, e_ts))
    e_row, e_type, e_ts = e_row[order], e_type[order], e_ts[order]
    not_click = e_type != 2
    types = np.array(["delivered", "opened", "clicked", "unsubscribed"], dtype=object)
    return _table(
        "message_events",
        {
            "event_id": _ids(f"ME{yyyymmdd}", np.arange(1, len(e_ts) + 1), 7),
            "ts": _ts(e_ts),
            "message_id": pa.array(msgs["message_id"].to_numpy()[e_row].astype(str), type=pa.string()),
            "customer_id": pa.array(msgs["customer_id"].to_numpy()[e_row].astype(str), type=pa.string()),
            "event_type": pa.array(types[e_type], type=pa.string()),
            "channel": pa.array(msgs["channel"].to_numpy()[e_row].astype(str), type=pa.string()),
            "sku": world.sku_pa.take(pa.array(product[e_row], mask=not_click)),
            "session_id": pc.if_else(
                pa.array(not_click), pa.scalar(None, pa.string()), _session_ids(yyyymmdd, clicked, e_row)
            ),
        },
    )


def _visits(
    world: World,
    msgs: pd.DataFrame,
    yyyymmdd: str,
    clicked: np.ndarray,
    bought: np.ndarray,
    product: np.ndarray,
    qty: np.ndarray,
    clicked_at: np.ndarray,
    carted_at: np.ndarray,
    paid_at: np.ndarray,
    promos: list[_Promo],
) -> dict[str, pa.Table]:
    """The sessions the clicks opened: a view at ``message``, and for a purchase a cart, a checkout, an order."""
    cust = msgs["customer"].to_numpy(np.int64)
    channel = np.array([SHOP_CHANNEL_OF[c] for c in msgs["channel"]], dtype=np.int64)
    rows = np.flatnonzero(clicked)
    buys = np.flatnonzero(bought)
    e_row = np.concatenate([rows, buys, buys])
    e_type = np.repeat([0, 1, 2], [len(rows), len(buys), len(buys)])
    e_ts = np.concatenate([clicked_at[rows], carted_at[buys], paid_at[buys]])
    order = np.lexsort((e_type, e_row, e_ts))
    e_row, e_type, e_ts = e_row[order], e_type[order], e_ts[order]
    placement = np.where(e_type == 2, PLACEMENTS.index("cart"), MESSAGE_PLACEMENT)
    events = _table(
        "events",
        {
            "event_id": _ids(f"EM{yyyymmdd}", np.arange(1, len(e_ts) + 1), 7),
            "ts": _ts(e_ts),
            "customer_id": world.customer_pa.take(pa.array(cust[e_row])),
            "session_id": _session_ids(yyyymmdd, clicked, e_row),
            "sku": world.sku_pa.take(pa.array(product[e_row])),
            "event_type": _pa_strings(["view", "cart", "purchase"]).take(pa.array(e_type)),
            "channel": _pa_strings(CHANNELS).take(pa.array(channel[e_row])),
            "placement": _pa_strings(PLACEMENTS).take(pa.array(placement)),
            "region": _pa_strings(r for r, _ in REGIONS).take(pa.array(world.region[cust[e_row]])),
            "device": _pa_strings(DEVICES).take(pa.array(world.device[cust[e_row]])),
        },
    )
    buys = buys[np.argsort(paid_at[buys], kind="stable")]
    disc = _discount_matrix(world, promos)[world.product_cat[product[buys]], channel[buys]]
    offer = msgs["discount_pct"].to_numpy(float)[buys] / 100.0
    line_disc = np.maximum(offer, disc)
    price = world.price[product[buys]]
    amount = np.round(qty[buys] * price * (1.0 - line_disc), 2)
    order_ids = _ids(f"OM{yyyymmdd}", np.arange(1, len(buys) + 1), 6)
    region = world.region[cust[buys]]
    orders = _table(
        "orders",
        {
            "order_id": order_ids,
            "ts": _ts(paid_at[buys]),
            "customer_id": world.customer_pa.take(pa.array(cust[buys])),
            "session_id": _session_ids(yyyymmdd, clicked, buys),
            "channel": _pa_strings(CHANNELS).take(pa.array(channel[buys])),
            "region": _pa_strings(r for r, _ in REGIONS).take(pa.array(region)),
            "country": _pa_strings(c for _, c in REGIONS).take(pa.array(region)),
            "currency": pa.array([CURRENCY] * len(buys), type=pa.string()),
            "order_total": pa.array(amount, type=pa.float64()),
            "status": pa.array(["placed"] * len(buys), type=pa.string()),
        },
    )
    order_items = _table(
        "order_items",
        {
            "order_id": order_ids,
            "line_no": pa.array(np.ones(len(buys), dtype=np.int32), type=pa.int32()),
            "ts": _ts(paid_at[buys]),
            "sku": world.sku_pa.take(pa.array(product[buys])),
            "qty": pa.array(qty[buys], type=pa.int64()),
            "unit_price": pa.array(price, type=pa.float64()),
            "discount": pa.array(line_disc, type=pa.float64()),
            "warehouse_id": _pa_strings(f"WH{w + 1:02d}" for w in world.customer_warehouse[cust[buys]]),
        },
    )
    return {"events": events, "orders": orders, "order_items": order_items}
