"""Asset keys that more than one domain names: the landing files and raw tables of each contract table, and the
feedback mart that both the feedback and the recommend assets read."""

import dagster as dg

EXPOSED_CUSTOMERS = dg.AssetKey(["marts", "fct_exposed_customers"])
"""The feedback mart the online metrics, the champion gate and the retrain rule read."""


def landing_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", table])


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])
