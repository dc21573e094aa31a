"""Service page (`python -m bench --only service`): GET /services/{id} (the HTML page a visitor reads, from the
database: the listed version, its plans and documents, the provider, the certificate panel) under wrk, round
robin over a seeded sample of listed services, against `market serve --workers 2` on the PostgreSQL catalogue.
The floor: the same lookup through the driver, that is the statements the page's two reads run (captured from
the application for each service as asyncpg receives them), replayed in a transaction over as many asyncpg
connections as wrk opens, for as long. Target: at least 2,000 requests per second."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench import load
from bench.server import Profile, Server, machine, measure, percentile, postgres_url, save, wrk

TARGET_RPS = 2_000
SAMPLE = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass  # --seconds and --connections come with the catalogue's


async def _service_ids(database_url: str, seed: int) -> list[int]:
    connection = await asyncpg.connect(load.asyncpg_dsn(database_url))
    try:
        ids = [
            row[0]
            for row in await connection.fetch("SELECT id FROM catalog_service WHERE status = 'listed' ORDER BY id")
        ]
    finally:
        await connection.close()
    return sorted(random.Random(seed).sample(ids, min(SAMPLE, len(ids))))


async def captured_lookups(database_url: str, service_ids: list[int]) -> list[list[tuple[str, Any]]]:
    """Per service, the statements its page runs (the page handler's two reads), as the driver receives them."""
    from catalog import listings
    from market import hooks
    from market.assembly import assemble
    from market.database import create_engine
    from market.settings import Settings

    parts = assemble()  # every package's tables, and the service page's panels
    zone = Settings.from_env().zone
    engine = create_engine(database_url, pooled=False)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def capture(_connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    lookups: list[list[tuple[str, Any]]] = []
    try:
        async with async_sessionmaker(engine, info=parts.session_info())() as session:
            await session.execute(text("SELECT 1"))  # connects: the dialect's own first queries are not the page's
            await session.rollback()
            for service_id in service_ids:
                statements.clear()
                await listings.view_service(session, None, service_id, None, zone=zone)
                await hooks.service_panels(session, service_id)
                lookups.append(
                    [
                        (sql, args)
                        for sql, args in statements
                        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))
                    ]
                )
                await session.rollback()
    finally:
        await engine.dispose()
    return lookups


async def driver_floor(
    database_url: str, lookups: list[list[tuple[str, Any]]], connections: int, seconds: float
) -> dict[str, Any]:
    dsn = load.asyncpg_dsn(database_url)
    pool = [await asyncpg.connect(dsn) for _ in range(connections)]
    latencies: list[float] = []

    async def once(connection: asyncpg.Connection, statements: list[tuple[str, Any]]) -> None:
        async with connection.transaction(readonly=False):
            for sql, args in statements:
                await connection.fetch(sql, *(args or ()))

    backends = [await connection.fetchval("SELECT pg_backend_pid()") for connection in pool]
    try:
        for statements in lookups:  # warm-up: prepares every statement on one connection, fills the cache
            await once(pool[0], statements)
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        cpu_before = time.process_time(), sum(_cpu_seconds(pid) for pid in backends)

        async def client(number: int, connection: asyncpg.Connection) -> None:
            i = number
            while time.perf_counter() < deadline:
                before = time.perf_counter()
                await once(connection, lookups[i % len(lookups)])
                latencies.append((time.perf_counter() - before) * 1000)
                i += 1

        await asyncio.gather(*(client(n, connection) for n, connection in enumerate(pool)))
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_before[0]
        database_cpu = sum(_cpu_seconds(pid) for pid in backends) - cpu_before[1]
    finally:
        for connection in pool:
            await connection.close()
    return {
        "generator": "asyncpg in this process",
        "connections": connections,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "errors": 0,
        **{f"p{p}_ms": round(percentile(latencies, p / 100), 2) for p in (50, 90, 95, 99)},
        # the driver's side (this process: asyncpg and the loop) and PostgreSQL's backends, per lookup
        "client_cpu_ms_per_request": round(client_cpu * 1000 / max(len(latencies), 1), 3),
        "database_cpu_ms_per_request": round(database_cpu * 1000 / max(len(latencies), 1), 3),
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a local process (a PostgreSQL backend); 0 where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace) -> Path:
    started = datetime.now(UTC)
    database_url = postgres_url()
    ids = asyncio.run(_service_ids(database_url, args.seed))
    paths = [f"/services/{service_id}" for service_id in ids]
    report: dict[str, Any] = {
        "benchmark": "service page",
        "started_at": started.isoformat(timespec="seconds"),
        "n": args.n,
        "seed": args.seed,
        "services": len(ids),
        "server_workers": args.workers,
        "machine": machine(),
        "target_rps": TARGET_RPS,
    }
    lookups = asyncio.run(captured_lookups(database_url, ids))
    report["statements_per_page"] = round(sum(map(len, lookups)) / len(lookups), 1)
    server = Server(database_url, args.workers)
    try:
        server.wait()
        first = httpx.get(server.url + paths[0], timeout=30)
        first.raise_for_status()
        report["page_bytes"] = len(first.content)
        wrk(server.url, connections=args.connections, seconds=2, paths=paths)  # warm-up
        with Profile(args.profile, server, "service_page", args.seconds):
            report["app"] = measure(
                server, server.url, database_url, connections=args.connections, seconds=args.seconds, paths=paths
            )
    finally:
        server.stop()
    print(
        f"  service page app   : {report['app']['requests_per_second']:9.1f} req/s  p99 {report['app']['p99_ms']:7.1f} ms",
        flush=True,
    )
    report["driver"] = asyncio.run(driver_floor(database_url, lookups, args.connections, args.seconds))
    print(
        f"  service page driver: {report['driver']['requests_per_second']:9.1f} req/s  p99 {report['driver']['p99_ms']:7.1f} ms",
        flush=True,
    )
    report["ratio_to_driver"] = round(report["app"]["requests_per_second"] / report["driver"]["requests_per_second"], 4)
    report["target_met"] = report["app"]["requests_per_second"] >= TARGET_RPS
    target = save("service-page", report)
    print(table(report))
    return target


def table(report: dict[str, Any]) -> str:
    lines = [f"{'service page':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  CPU ms a request"]
    app, driver = report["app"], report["driver"]
    lines.append(
        f"{'market serve (2 workers)':28} {app['requests_per_second']:9.1f} {app['p50_ms']:8.1f} {app['p99_ms']:8.1f} {app['errors']:>6}  "
        f"{app['server_cpu_ms_per_request']} (app processes) + {app.get('database_cpu_ms_per_request')} (PostgreSQL)"
    )
    lines.append(
        f"{'same lookup, asyncpg':28} {driver['requests_per_second']:9.1f} {driver['p50_ms']:8.1f} {driver['p99_ms']:8.1f} {driver['errors']:>6}  "
        f"{driver['client_cpu_ms_per_request']} (driver side) + {driver['database_cpu_ms_per_request']} (PostgreSQL)"
    )
    verdict = "met" if report["target_met"] else "MISSED"
    lines.append(
        f"{report['statements_per_page']} statements a page; ratio to the driver {report['ratio_to_driver']:.3f}; "
        f"target >= {TARGET_RPS} req/s: {verdict}"
    )
    return "\n".join(lines)
