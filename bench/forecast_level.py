"""Store-level diagnostic: could the level of the test window be seen from the validation origins?

    python -m bench.forecast_level --data data/online_retail/online_retail.csv.gz --out level.json

For each rolling origin before the test origin (every ``--step`` periods, ``--n-origins`` of them) and for the
test origin itself, it sums the demand of the series in scope there (the protocol's scope rule) and compares the
next ``horizon`` periods with simple level rules fitted on the periods up to that origin: the mean of the last
28 periods, a linear trend over the last 56, simple exponential smoothing (alpha 0.05). ``bias`` is
``forecast / actual - 1`` over the window (negative = under-forecast), the same pooled bias as the benchmark.

Why it exists: every SKU model under-forecasts the Online Retail test window (the November–December peak), and
the selection rule can only correct what its validation origins show. If no validation origin shows the test's
level change, no validation-only rule can remove that bias; this script measures whether they do.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from ml.forecast.protocol import (
    HORIZON,
    in_scope,
    load_panel,
    make_split,
    read_demand_csv,
    validation_origins,
)


def level_rules(total: np.ndarray, origin: int, horizon: int) -> dict[str, float]:
    """Mean daily demand over the next ``horizon`` periods by each rule, from ``total[: origin + 1]`` only."""
    x = np.arange(56)
    slope, intercept = np.polyfit(x, total[origin - 55 : origin + 1], 1)
    return {
        "last28_mean": float(total[origin - 27 : origin + 1].mean()),
        "trend56": float(intercept + slope * (55 + (horizon + 1) / 2)),
        "ses_0.05": float(pd.Series(total[: origin + 1]).ewm(alpha=0.05).mean().iloc[-1]),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.forecast_level", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="Online Retail CSV(.gz) or a long CSV unique_id, ds, y")
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--horizon", type=int, default=HORIZON)
    ap.add_argument("--n-origins", type=int, default=8, help="rolling origins before the test origin")
    ap.add_argument("--step", type=int, default=14, help="periods between rolling origins")
    args = ap.parse_args(argv)

    df, kind = read_demand_csv(args.data)
    panel = load_panel(df, kind)
    h = args.horizon
    test = make_split(panel, horizon=h).origin
    origins = [*validation_origins(test, args.n_origins, args.step, h), test]
    y = panel.filled()
    rows = []
    for o in origins:
        total = y[in_scope(panel, o)].sum(axis=0)
        actual = float(total[o + 1 : o + 1 + h].mean())
        row = {
            "origin": str(panel.calendar[o])[:10],
            "window": "test" if o == test else "validation",
            "next_vs_last28": round(actual / total[o - 27 : o + 1].mean(), 3),
            "last28_vs_previous28": round(total[o - 27 : o + 1].mean() / total[o - 55 : o - 27].mean(), 3),
        }
        row.update({f"bias_{k}": round(v / actual - 1, 3) for k, v in level_rules(total, o, h).items()})
        rows.append(row)
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    out = {"dataset": kind, "horizon": h, "origins": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
