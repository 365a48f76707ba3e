"""Asset keys that more than one domain names: the landing files and raw tables of each contract table."""

import dagster as dg


def landing_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", table])


def raw_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", table])
