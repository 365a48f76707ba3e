"""The closed-loop store: the simulated shop, answering the lists and purchase orders the platform published.

Day D of the shop reads the exports of D-1 (``recommendations`` for D, or the newest lists within a week when a
day was held back by the champion gate; ``replenishment_plan`` as of D-1) and its
own stock at the end of D-1, which it keeps under ``state_root`` as a real shop keeps its stock system:

- stock at the start of D = the end of D-1 + deliveries due on D (+ the first stock of products launched on D);
- every session of a customer with a list shows it at the ``for_you`` placement (``impressions``); clicks,
  carts and purchases follow the simulator's truth (:func:`ml.sources.simulated.for_you_appeal`);
- checkouts are filled first come first served; what the stock cannot serve is logged in ``lost_sales``;
- purchase orders: the plan's rows with an order quantity, or, without a plan, the shop's own reorder rule
  (order up to the world's level from the primary supplier when the position falls below the expected demand
  over the lead time plus a day, with the world's safety factor); every order is raised to its supplier's
  minimum order quantity and arrives after that supplier's true lead time.

- messages: the ones the platform exported on D-1 are sent on D and answered (:mod:`ml.shop.messages`):
  ``message_events``, and for each click a visit whose purchases are orders of that session.
- category pages: a session browsing a category is shown the page of its customer's arm of the category-page
  experiment (:mod:`ml.shop.pages`: the platform's ranked page, or the bestsellers), logged as ``impressions`` at
  the ``category_page`` placement; clicks are views there and follow the same truth as ``for_you``.

Without exports and without an earlier state the day is exactly the open-loop simulator's (the same bytes), plus
empty ``impressions``, ``lost_sales`` and ``message_events``. With the same exports and the same state, a day is identical again.
Closed-loop days run in order: a day refuses to run when the state of the day before is missing but an earlier
one exists.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.exports import read_export, read_latest_export
from ml.recommend.experiment import arms, list_ids
from ml.search.category_pages import page_arms
from ml.shop.messages import FATIGUE_DAYS, answer_messages
from ml.shop.pages import category_pages_for
from ml.sources import empty_table
from ml.sources.schema import CLOSED_LOOP_TABLES, OPEN_LOOP_TABLES, TABLES
from ml.sources.simulated import (
    _SAFETY,
    START_DATE,
    ShopFront,
    SimulatedStore,
    World,
    _promotions,
    _simulate_traffic,
    inventory_table,
)

SHOWN_ITEMS = 10
"""How many items of a served list the ``for_you`` placement shows."""
TRAFFIC_TABLES = ("events", "orders", "order_items", *CLOSED_LOOP_TABLES)


@dataclass
class ShopState:
    """The shop's stock at the end of a day: units on hand and the purchase orders not yet delivered."""

    on_hand: np.ndarray
    """products x warehouses."""
    pipeline: pd.DataFrame
    """One row per open purchase order: ``product, warehouse, arrival_t`` (day offset) and ``qty``."""

    def on_order(self) -> np.ndarray:
        out = np.zeros_like(self.on_hand)
        np.add.at(
            out,
            (self.pipeline["product"].to_numpy(), self.pipeline["warehouse"].to_numpy()),
            self.pipeline["qty"].to_numpy(),
        )
        return out

    def save(self, path: Path) -> None:
        """Write atomically: a reader sees the previous state or this one, never half of it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                on_hand=self.on_hand,
                **{
                    f"pipeline_{c}": self.pipeline[c].to_numpy(np.int64)
                    for c in ("product", "warehouse", "arrival_t", "qty")
                },
            )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ShopState:
        with np.load(path) as data:
            pipeline = pd.DataFrame(
                {c: data[f"pipeline_{c}"] for c in ("product", "warehouse", "arrival_t", "qty")}
            )
            return cls(data["on_hand"].copy(), pipeline)


class ClosedLoopStore(SimulatedStore):
    """The simulated store in closed-loop mode (see the module docstring)."""

    tables = TABLES

    def __init__(
        self,
        scale: str = "small",
        seed: int = 42,
        *,
        exports_root: Path,
        state_root: Path,
        shown_items: int = SHOWN_ITEMS,
    ) -> None:
        super().__init__(scale=scale, seed=seed)
        self.exports_root, self.state_root, self.shown_items = (
            Path(exports_root),
            Path(state_root),
            shown_items,
        )

    @cached_property
    def category_page_arms(self) -> np.ndarray:
        """Each customer's arm of the category-page experiment (by position), hashed once per store."""
        return page_arms(self.world.customer_ids)

    # -- state ----------------------------------------------------------------------------------------------------
    def state_path(self, day: date) -> Path:
        return self.state_root / f"date={day.isoformat()}" / "stock.npz"

    def load_state(self, day: date) -> ShopState | None:
        path = self.state_path(day)
        return ShopState.load(path) if path.exists() else None

    def _earlier_state_days(self, day: date) -> list[date]:
        if not self.state_root.exists():
            return []
        days = [date.fromisoformat(p.name.removeprefix("date=")) for p in self.state_root.glob("date=*")]
        return sorted(d for d in days if d < day)

    @staticmethod
    def initial_state(world: World, t: int) -> ShopState:
        """The open-loop store's stock at the end of day offset ``t``, with its orders in transit."""
        launched, on_hand, on_order = world.stock(t)
        on_hand = np.where(launched[:, None], on_hand, 0)
        on_order = np.where(launched[:, None], on_order, 0)
        prod, wh = np.nonzero(on_order > 0)
        age = np.maximum(t - world.product_launch_day, 0)
        pos = (age[prod] + world.cycle_phase[prod, wh]) % world.cycle_days[prod]
        pipeline = pd.DataFrame(
            {
                "product": prod,
                "warehouse": wh,
                "arrival_t": t + world.cycle_days[prod] - pos,
                "qty": on_order[prod, wh],
            }
        )
        return ShopState(on_hand.astype(np.int64), pipeline.astype(np.int64))

    # -- a day ------------------------------------------------------------------------------------------------------
    def day_tables(self, day: date, tables=None) -> dict[str, pa.Table]:
        built, _ = self.closed_day(day)
        wanted = tuple(tables) if tables is not None else self.tables
        return {name: built[name] for name in wanted}

    def write_day(self, day: date, landing_root: Path) -> dict[str, int]:
        built, state = self.closed_day(day)
        counts = self.write_tables(built, day, landing_root)
        if state is not None:
            state.save(self.state_path(day))
        return counts

    def closed_day(self, day: date) -> tuple[dict[str, pa.Table], ShopState | None]:
        """The day's tables and the shop's state at its end (``None`` for an open-loop day)."""
        self.check_day(day)
        world, t = self.world, (day - START_DATE).days
        yesterday = day - timedelta(days=1)
        # the newest lists published by yesterday: a day the champion gate held back keeps the last ones on show
        lists = read_latest_export(self.exports_root, "recommendations", yesterday)
        plan = read_export(self.exports_root, "replenishment_plan", yesterday)
        previous = self.load_state(yesterday)
        if previous is None:
            earlier = self._earlier_state_days(day)
            if earlier:
                raise RuntimeError(
                    f"closed-loop shop: {day} needs the shop's stock at the end of {yesterday}, which was never "
                    f"built (last built day: {earlier[-1]}). Closed-loop days run one after another: run "
                    f"{earlier[-1] + timedelta(days=1)} .. {day} in order."
                )
            if lists is None and plan is None:
                built = SimulatedStore.day_tables(self, day, OPEN_LOOP_TABLES)
                built.update({name: empty_table(name) for name in CLOSED_LOOP_TABLES})
                return {name: built[name] for name in self.tables}, None
            previous = self.initial_state(world, t - 1)

        on_hand = previous.on_hand.copy()
        due = previous.pipeline["arrival_t"].to_numpy() <= t
        arriving = previous.pipeline[due]
        np.add.at(
            on_hand,
            (arriving["product"].to_numpy(), arriving["warehouse"].to_numpy()),
            arriving["qty"].to_numpy(),
        )
        pipeline = previous.pipeline[~due]
        launched_today = world.product_launch_day == t
        on_hand[launched_today] = world.order_up_to[launched_today]

        front = ShopFront(
            on_hand,
            *self._lists(world, lists, day),
            category_page=category_pages_for(world, self.exports_root, day, self.category_page_arms),
        )
        promos = _promotions(world, t)
        traffic = _simulate_traffic(world, day, t, promos, front)
        end_on_hand = on_hand - traffic.pop("sold_units")
        messages = read_export(self.exports_root, "messages", yesterday)
        answers = answer_messages(world, day, t, messages, self._recent_messages(day), end_on_hand, promos)
        end_on_hand = end_on_hand - answers.sold_units
        for name, table in answers.tables.items():
            traffic[name] = pa.concat_tables([traffic[name], table]) if name in traffic else table
        ordered = self._purchase_orders(world, plan, t, end_on_hand, pipeline)
        state = ShopState(end_on_hand, pd.concat([pipeline, ordered], ignore_index=True).astype(np.int64))

        reference = [n for n in OPEN_LOOP_TABLES if n not in TRAFFIC_TABLES and n != "inventory"]
        built = SimulatedStore.day_tables(self, day, reference)
        built.update(traffic)
        built["inventory"] = inventory_table(
            world, day, world.product_launch_day <= t, state.on_hand, state.on_order()
        )
        return {name: built[name] for name in self.tables}, state

    def _recent_messages(self, day: date) -> pd.Series:
        """Messages sent to each customer in the fatigue window before ``day`` (from the exports the shop sent)."""
        sent = [
            read_export(self.exports_root, "messages", day - timedelta(days=k), columns=["customer_id"])
            for k in range(2, FATIGUE_DAYS + 2)
        ]
        sent = [s for s in sent if s is not None]
        if not sent:
            return pd.Series(dtype=float)
        return pd.concat(sent)["customer_id"].astype(str).value_counts().astype(float)

    def _lists(self, world: World, lists: pd.DataFrame | None, day: date) -> tuple[np.ndarray, ...]:
        """The served lists as the front shows them: customers x ranks product positions and per-customer ids."""
        n = world.spec.n_customers
        matrix = np.full((n, self.shown_items), -1, dtype=np.int64)
        list_id = np.full(n, None, dtype=object)
        version = np.full(n, None, dtype=object)
        arm = np.full(n, None, dtype=object)
        if lists is None or lists.empty:
            return matrix, list_id, version, arm
        rows = lists[lists["rank"] <= self.shown_items]
        cust = pd.Index(world.customer_ids).get_indexer(rows["customer_id"].astype(str))
        prod = pd.Index(world.skus).get_indexer(rows["sku"].astype(str))
        ok = (cust >= 0) & (prod >= 0)
        rows, cust, prod = rows[ok], cust[ok], prod[ok]
        matrix[cust, rows["rank"].to_numpy() - 1] = prod
        versions = rows["model_version"].astype(str).to_numpy()
        ids = (
            rows["list_id"].to_numpy()
            if "list_id" in rows
            else list_ids(day.isoformat(), rows["customer_id"].astype(str), versions)
        )
        arm_of = rows["arm"].to_numpy() if "arm" in rows else arms(rows["customer_id"].astype(str))
        list_id[cust], version[cust], arm[cust] = ids, versions, arm_of
        return matrix, list_id, version, arm

    @staticmethod
    def _purchase_orders(
        world: World, plan: pd.DataFrame | None, t: int, on_hand: np.ndarray, pipeline: pd.DataFrame
    ) -> pd.DataFrame:
        """Orders placed on day ``t``: the plan's, or the shop's own reorder rule when no plan was published."""
        launched = world.product_launch_day <= t
        if plan is not None and not plan.empty:
            rows = plan[plan["order_qty"] > 0]
            prod = pd.Index(world.skus).get_indexer(rows["sku"].astype(str))
            wh = rows["warehouse_id"].str.removeprefix("WH").astype(int).to_numpy() - 1
            ok = (prod >= 0) & (wh >= 0) & (wh < world.spec.n_warehouses)
            rows, prod, wh = rows[ok], prod[ok], wh[ok]
            alternate = (
                rows["use_alternate"].fillna(False).astype(bool).to_numpy()
                if "use_alternate" in rows
                else False
            )
            supplier = np.where(alternate, world.product_alt_supplier[prod], world.product_supplier[prod])
            qty = np.ceil(rows["order_qty"].to_numpy(float))
        else:
            position = on_hand + ShopState(on_hand, pipeline).on_order()
            reorder_at = np.ceil(world.expected_demand * (world.product_lead[:, None] + 1) * _SAFETY)
            prod, wh = np.nonzero((position < reorder_at) & launched[:, None])
            qty = world.order_up_to[prod, wh] - position[prod, wh]
            supplier = world.product_supplier[prod]
        # suppliers hold every buyer to their minimum order quantity, the plan and the shop's own rule alike
        qty = np.maximum(qty, world.supplier_moq[supplier])
        lead = world.supplier_lead[supplier]
        return pd.DataFrame({"product": prod, "warehouse": wh, "arrival_t": t + lead, "qty": qty}).astype(
            np.int64
        )
