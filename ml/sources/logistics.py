"""Warehouses and delivery lanes of the simulated store: where stock sits, what a parcel costs, how long it takes.

The store's regions get a site on a rough map (kilometres east and north, British National Grid style, Dublin for
Ireland), each warehouse sits at the busiest region it serves, and a lane's cost and delivery time follow the road
distance, with the Irish Sea adding a day and a ferry charge. No random numbers: the lanes are a function of the
world's region-to-warehouse map and its expected demand, so they draw nothing from the world's random streams and
leave every other table's bytes as they are.

A warehouse can dispatch a fixed number of units a day (:data:`CAPACITY_HEADROOM` times the units its regions
are expected to buy on an ordinary day), so peaks, promotions and weekends can exceed it: then a parcel waits a
day, or ships from a warehouse with room. The store itself ships every order from the customer's home warehouse
on the day; the lanes and capacities are what a delivery allocation (``ml.supply.allocation``) plans with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

REGION_SITES: dict[str, tuple[float, float]] = {
    "london": (530.0, 180.0),
    "south": (440.0, 110.0),
    "midlands": (405.0, 290.0),
    "north": (385.0, 420.0),
    "east": (590.0, 280.0),
    "west": (330.0, 150.0),
    "scotland": (300.0, 670.0),
    "ireland": (120.0, 370.0),
}
"""A point per region, kilometres east and north (roughly London, Southampton, Birmingham, Manchester, Cambridge,
Bristol, Glasgow/Edinburgh, Dublin)."""
OVER_SEA = {"ireland"}
ROAD_FACTOR = 1.25
"""Road kilometres per straight-line kilometre."""
NEXT_DAY_KM = 350.0
"""A parcel within this many road kilometres arrives the next day; each further band of it adds a day."""
SEA_DAYS = 1
SEA_CHARGE_GBP = 4.0
PARCEL_BASE_GBP = 3.2
PARCEL_PER_KM_GBP = 0.004
UNIT_BASE_GBP = 0.15
UNIT_PER_KM_GBP = 0.0004
BULK_UNIT_BASE_GBP = 0.05
BULK_UNIT_PER_KM_GBP = 0.0002
BULK_SEA_UNIT_GBP = 0.3
"""A unit moved between warehouses on a pallet pays no parcel charge: this base, per kilometre and sea rate."""
PROMISE_DAYS_GB = 2
PROMISE_DAYS_OVER_SEA = 3
"""The delivery promise shown at checkout; a parcel that takes longer is late."""
CAPACITY_HEADROOM = 1.3


@dataclass(frozen=True)
class Lane:
    warehouse: int
    region: str
    road_km: float
    delivery_days: int
    promise_days: int
    cost_per_order: float
    cost_per_unit: float
    bulk_cost_per_unit: float


def warehouse_sites(regions: list[str], region_warehouse: np.ndarray, region_weight: np.ndarray) -> list[str]:
    """Each warehouse's site: the region with the most demand among those it serves (the first on a tie)."""
    sites = []
    for w in range(int(region_warehouse.max()) + 1):
        served = np.flatnonzero(region_warehouse == w)
        sites.append(regions[int(served[np.argmax(region_weight[served])])])
    return sites


def lanes(regions: list[str], sites: list[str]) -> list[Lane]:
    """Every warehouse-to-region lane, priced and timed by road distance (and the sea where it is crossed)."""
    out = []
    for w, site in enumerate(sites):
        (x0, y0) = REGION_SITES[site]
        for region in regions:
            x1, y1 = REGION_SITES[region]
            km = ROAD_FACTOR * math.hypot(x1 - x0, y1 - y0)
            sea = (site in OVER_SEA) != (region in OVER_SEA)
            days = 1 + int(km // NEXT_DAY_KM) + (SEA_DAYS if sea else 0)
            out.append(
                Lane(
                    warehouse=w,
                    region=region,
                    road_km=round(km, 1),
                    delivery_days=days,
                    promise_days=PROMISE_DAYS_OVER_SEA if region in OVER_SEA else PROMISE_DAYS_GB,
                    cost_per_order=round(
                        PARCEL_BASE_GBP + PARCEL_PER_KM_GBP * km + (SEA_CHARGE_GBP if sea else 0), 2
                    ),
                    cost_per_unit=round(UNIT_BASE_GBP + UNIT_PER_KM_GBP * km, 3),
                    bulk_cost_per_unit=round(
                        BULK_UNIT_BASE_GBP + BULK_UNIT_PER_KM_GBP * km + (BULK_SEA_UNIT_GBP if sea else 0), 3
                    ),
                )
            )
    return out


def daily_capacity(expected_units_per_warehouse: np.ndarray) -> np.ndarray:
    """Units each warehouse can dispatch a day: the headroom over its ordinary day's expected units."""
    return np.ceil(CAPACITY_HEADROOM * expected_units_per_warehouse).astype(np.int64)
