"""Load test of the read API on loopback: N concurrent keep-alive clients for S seconds against real exports.

    python -m bench.api_load --exports .data/exports --clients 50 --seconds 60 --out bench/results/api_load.json

Starts ``python -m api.app`` on a free loopback port over ``--exports`` (with a token, and the per-client rate
limit off: every simulated client shares one address and one token, which the limit would rightly throttle),
then runs ``--clients`` closed-loop clients, each sending its next request as soon as the previous answer has
arrived, over one HTTP/1.1 keep-alive connection. The request mix draws real ids from the exports: 50%
``/recommendations/{customer}``, 20% ``/forecast/{sku}``, 15% ``/messages/{customer}`` (when messages exist),
15% ``/replenishment?sku=``; one customer in ten is unknown (a 404 is an answer, not an error). Reported: requests,
throughput, latency p50/p95/p99 (ms, client side, from writing the request to reading the whole answer), answers
by status, and errors (5xx, broken connections, timeouts). The load generator runs on the same 2 cores as the
server, so throughput is a floor of what the server alone could do.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import secrets
import sys
import time
from pathlib import Path

import duckdb
import numpy as np

from api.local import serve_locally
from api.store import day_folders


def _ids(exports: Path, output: str, column: str, limit: int = 5000) -> list[str]:
    days = day_folders(exports, output)
    if not days:
        return []
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT DISTINCT {column} FROM read_parquet(?) WHERE {column} IS NOT NULL LIMIT {int(limit)}",
            [str(days[-1][1] / "*.parquet")],
        ).fetchall()
    return [str(r[0]) for r in rows]


def request_mix(exports: Path, seed: int = 0) -> list[str]:
    """10,000 request paths drawn with the mix of the module docstring from the exports' real ids."""
    customers = _ids(exports, "recommendations", "customer_id")
    skus = _ids(exports, "demand_forecast", "sku")
    messaged = _ids(exports, "messages", "customer_id")
    if not customers or not skus:
        raise SystemExit(
            f"{exports}: needs recommendations and demand_forecast exports (run make demo first)"
        )
    rng = random.Random(seed)
    paths = []
    for _ in range(10_000):
        u = rng.random()
        customer = rng.choice(customers) if rng.random() > 0.1 else f"unknown-{rng.randrange(10**6)}"
        if u < 0.5:
            paths.append(f"/recommendations/{customer}?k=10")
        elif u < 0.7:
            paths.append(f"/forecast/{rng.choice(skus)}?horizon=28")
        elif u < 0.85 and messaged:
            paths.append(f"/messages/{rng.choice(messaged)}")
        else:
            paths.append(f"/replenishment?sku={rng.choice(skus)}")
    return paths


async def _client(host: str, port: int, token: str, paths: list[str], until: float, out: list, seed: int):
    rng = random.Random(seed)
    reader = writer = None
    while time.perf_counter() < until:
        path = rng.choice(paths)
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 30)
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            await reader.readexactly(length)
            out.append((status, (time.perf_counter() - t0) * 1000))
            if close:
                writer.close()
                reader = writer = None
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            out.append((0, (time.perf_counter() - t0) * 1000))  # 0: no answer
            if writer is not None:
                writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _load(port: int, token: str, paths: list[str], clients: int, seconds: float) -> list:
    out: list = []
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_client("127.0.0.1", port, token, paths, until, out, i) for i in range(clients)))
    return out


def run(exports: Path, clients: int, seconds: float) -> dict:
    paths = request_mix(exports)
    token = secrets.token_hex(16)
    with serve_locally(exports, {"AIGC_API_TOKEN": token, "AIGC_API_RATE": "0"}) as base:
        port = int(base.rsplit(":", 1)[1])
        # Warm-up: load every output's snapshot once, as the first requests of a day would.
        asyncio.run(_load(port, token, paths, 4, 3.0))
        print(f"{clients} clients for {seconds:g} s ...", file=sys.stderr)
        answers = asyncio.run(_load(port, token, paths, clients, seconds))
    statuses = np.array([s for s, _ in answers])
    ms = np.array([m for _, m in answers])
    ok = (statuses > 0) & (statuses < 500)
    by_status: dict[str, int] = {}
    for s in statuses:
        key = str(s) if s else "no answer"
        by_status[key] = by_status.get(key, 0) + 1
    return {
        "exports": str(exports),
        "clients": clients,
        "seconds": seconds,
        "requests": int(len(answers)),
        "requests_per_second": round(len(answers) / seconds, 1),
        "latency_ms": {
            "p50": round(float(np.percentile(ms[ok], 50)), 1),
            "p95": round(float(np.percentile(ms[ok], 95)), 1),
            "p99": round(float(np.percentile(ms[ok], 99)), 1),
        },
        "answers_by_status": by_status,
        "errors": int((~ok).sum()),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--exports", type=Path, required=True, help="an exports folder ($DATA_DIR/exports)")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=None, help="JSON file to write (default: print only)")
    args = ap.parse_args(argv)
    result = run(args.exports, args.clients, args.seconds)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
