"""The asset graph as a reviewed snapshot: every asset's group, dependencies (with their partition mapping when it is
not day-for-day), partitioning and checks. A change to the graph changes ``tests/snapshots/asset_graph.json``, so
it shows up in review next to the code that made it.

To accept a reviewed change: ``AIGC_UPDATE_SNAPSHOT=1 .venv/bin/python -m pytest tests/test_asset_graph_snapshot.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg

from orchestration.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def _mapping(mapping) -> str:
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        return f"days {mapping.start_offset}..{mapping.end_offset}"
    return type(mapping).__name__


def graph_snapshot() -> dict:
    graph = defs.resolve_asset_graph()
    out = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        deps = []
        for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
            mapping = graph.get_partition_mapping(key, parent)
            plain = (
                mapping is None
                or isinstance(mapping, dg.IdentityPartitionMapping)
                or (
                    isinstance(mapping, dg.TimeWindowPartitionMapping)
                    and (mapping.start_offset, mapping.end_offset) == (0, 0)
                )
            )
            deps.append(parent.to_user_string() + ("" if plain else f" [{_mapping(mapping)}]"))
        checks = sorted(
            f"{c.name}{' (blocking)' if graph.get_check_spec(c).blocking else ''}" for c in node.check_keys
        )
        out[key.to_user_string()] = {
            "group": node.group_name,
            "partitioned": node.partitions_def is not None,
            "deps": deps,
            "checks": checks,
        }
    return out


def test_the_asset_graph_matches_its_reviewed_snapshot():
    current = graph_snapshot()
    if os.environ.get("AIGC_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    reviewed = json.loads(SNAPSHOT.read_text())
    added, removed = sorted(set(current) - set(reviewed)), sorted(set(reviewed) - set(current))
    assert not added and not removed, f"assets added {added}, removed {removed}"
    changed = {k: {"now": current[k], "reviewed": reviewed[k]} for k in current if current[k] != reviewed[k]}
    assert not changed, json.dumps(changed, indent=2)
    # the snapshot says what the architecture promises: lineage from landing to the served lists, every daily
    # asset partitioned, model state declared on the previous day
    assert "recommend/candidate_models [days -1..-1]" in reviewed["recommend/candidate_models"]["deps"]
    assert all(entry["partitioned"] for entry in reviewed.values())
    assert "features/customer_windows" in reviewed["people/user_profiles"]["deps"]
