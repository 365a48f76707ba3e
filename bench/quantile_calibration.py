"""How the daily forecast's quantiles cover on validation, per demand class, on the two Online Retail years.

    python -m bench.quantile_calibration --origins 2010-11-08,2011-11-07 --out bench/results/quantile_calibration.json

At each origin it fits the platform's daily model (``fast``, the served levels 0.5, 0.8, 0.9, 0.95, 0.99) on the
clean daily SKU demand up to that origin (the forecast protocol's preparation, ``ml.forecast.protocol``) and
reports the selection's calibration table (``ml.forecast.quantiles.calibration_table``): per demand class and
level, the validation points, the coverage of the uncalibrated negative binomial, the calibrated level served,
and the coverage on the latest validation origin of the level calibrated on the earlier ones.

Only validation data is read: the validation origins lie before each origin, and nothing after an origin is
seen (``Forecaster.fit(origin=...)`` drops it). 2011-11-07 is the forecast benchmark's test origin; fitting there
reads none of its test window.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from bench import docstring_parser

log = logging.getLogger("bench.quantile_calibration")


def parse_args(argv=None):
    p = docstring_parser("python -m bench.quantile_calibration", __doc__)
    p.add_argument("--origins", default="2010-11-08,2011-11-07", help="comma-separated trading days (ISO)")
    p.add_argument("--year-one-only", action="store_true", help="Online Retail (I) alone (2010-12-01 on)")
    p.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = p.parse_args(argv)
    args.origins = [pd.Timestamp(d) for d in args.origins.split(",") if d]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from ml.forecast.daily import SERVED_QUANTILES
    from ml.forecast.models import fast_model
    from ml.forecast.protocol import online_retail_daily
    from ml.sources.online_retail import DEFAULT_YEAR_BEFORE, read_lines

    demand = online_retail_daily(
        read_lines(year_before_path=None if args.year_one_only else DEFAULT_YEAR_BEFORE)
    )
    out = {
        "command": "python -m bench.quantile_calibration " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": f"{platform.node()} {platform.machine()}",
        "date": date.today().isoformat(),
        "data": f"{demand['ds'].min().date()} .. {demand['ds'].max().date()}",
        "levels": list(SERVED_QUANTILES),
        "origins": {},
    }
    for origin in args.origins:
        if origin not in set(demand["ds"]):
            raise SystemExit(f"{origin.date()} is not a trading day of the data")
        started = time.perf_counter()
        model = fast_model(quantiles=SERVED_QUANTILES).fit(demand[["unique_id", "ds", "y"]], origin=origin)
        summary = model.selection_summary()
        out["origins"][str(origin.date())] = {
            "validation_origins": summary["validation_origins"],
            "calibration": model.calibration_,
            "seconds": round(time.perf_counter() - started, 1),
        }
        log.info(
            "origin %s: %d rows, %.0f s",
            origin.date(),
            len(model.calibration_),
            time.perf_counter() - started,
        )
        for row in model.calibration_:
            log.info(
                "  %-12s %.2f  points %7d  uncalibrated %.3f  level %.3f  held out %.3f",
                row["group"],
                row["level"],
                row["points"],
                row["coverage_uncalibrated"],
                row["calibrated_level"],
                row["coverage_held_out"],
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str))
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
