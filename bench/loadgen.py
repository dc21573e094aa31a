"""The fallback load generator when wrk is missing: async httpx clients in a process of their own.

    python -m bench.loadgen '{"url": "http://127.0.0.1:8000", "connections": 16, "seconds": 10, "headers": {}, "paths": ["/"]}'

Prints one JSON line with the same keys as the wrk runner in `bench.server`."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx

from bench.server import percentile


async def run(url: str, connections: int, seconds: float, headers: dict[str, str], paths: list[str]) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=10) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def one(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                before = time.perf_counter()
                try:
                    response = await client.get(paths[i % len(paths)])
                    ok = response.status_code < 400
                except httpx.HTTPError:
                    ok = False
                i += 1
                if ok:
                    latencies.append((time.perf_counter() - before) * 1000)
                else:
                    errors += 1

        await asyncio.gather(*(one(n) for n in range(connections)))
        elapsed = time.perf_counter() - started
    return {
        "generator": "httpx (python -m bench.loadgen)",
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests": len(latencies) + errors,
        "requests_per_second": round((len(latencies) + errors) / elapsed, 1),
        "errors": errors,
        **{f"p{p}_ms": round(percentile(latencies, p / 100), 2) for p in (50, 90, 95, 99)},
        "max_ms": round(max(latencies, default=0), 2),
    }


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(
        json.dumps(asyncio.run(run(spec["url"], spec["connections"], spec["seconds"], spec["headers"], spec["paths"])))
    )
