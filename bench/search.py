"""Search (`python -m bench --only search`): generate N listings into PostgreSQL and SQLite, then measure GET
/api/search over HTTP against a real `market serve --workers 2`, and the same SQL through the database driver
as the floor.

    N=100000 SEED=20261123 python -m bench --only search    # the defaults
    python -m bench --only search --n 20000 --requests 100   # a quicker run
    python -m bench --only search --skip-load                # reuse the data of the previous run (same N and seed)

Environment: BENCH_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/market_bench, a
database of its own: it is dropped and rebuilt), BENCH_SQLITE (default var/bench/market_bench.db).
Prints a table and writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import async_sessionmaker

from bench import load
from bench.server import RESULTS, ROOT, Server, postgres_url

DEFAULT_SQLITE = ROOT / "var" / "bench" / "market_bench.db"

# keyword plus 3 filters (deployment model, SLA at least, unit price at most), facets, first page
FILTERS: list[tuple[str, str]] = [
    ("deployment", "public"),
    ("deployment", "hybrid"),
    ("sla", "99.5"),
    ("price_max", "1000000"),
]
TERMS = [
    ("rare", "quantum"),
    ("common", "backup"),
    ("very common", "cloud"),
    ("common, Korean", "보안관제"),
    ("very common, Korean", "클라우드"),
]
# The targets at 100,000 listings, PostgreSQL, through HTTP (p95, milliseconds).
TARGET_P95_MS = {"rare": 25.0, "common": 25.0, "very common": 60.0}


@dataclass
class Measure:
    database: str
    label: str
    term: str
    mode: str  # http, driver
    clients: int
    matches: int
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0  # answers other than 200 (SQLite under 8 clients: "database is locked", see README)
    capped: bool = False  # the search counted TOTAL_CAP services and stopped: `matches` is "at least"
    cpu_ms: float | None = None  # PostgreSQL's own CPU time per search (driver, one client), whatever else runs

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "label": self.label,
            "term": self.term,
            "mode": self.mode,
            "clients": self.clients,
            "matches": self.matches,
            "matches_capped": self.capped,
            "requests": len(self.latencies_ms),
            "errors": self.errors,
            "p50_ms": round(self.percentile(0.50), 2),
            "p95_ms": round(self.percentile(0.95), 2),
            "p99_ms": round(self.percentile(0.99), 2),
            "server_cpu_ms": self.cpu_ms,
        }


def params(term: str) -> list[tuple[str, str]]:
    return [("q", term), *FILTERS]


async def http_run(url: str, term: str, clients: int, requests: int, warmup: int) -> tuple[list[float], int, int, bool]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        first = await client.get("/api/search", params=params(term))
        first.raise_for_status()
        total, capped = first.json()["total"], first.json().get("total_capped", False)
        for _ in range(warmup):
            (await client.get("/api/search", params=params(term))).raise_for_status()
        latencies: list[float] = []
        errors = 0
        per_client = max(1, requests // clients)

        async def one_client() -> None:
            nonlocal errors
            for _ in range(per_client):
                started = time.perf_counter()
                response = await client.get("/api/search", params=params(term))
                if response.status_code != 200:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(one_client() for _ in range(clients)))
        return latencies, total, errors, capped


# --- the floor: the same SQL through the driver --------------------------------------------------


async def captured_sql(database_url: str, term: str) -> tuple[list[tuple[str, Any]], int]:
    """The statements one search runs, as the driver receives them (SQL text and parameters)."""
    from catalog import search
    from market.database import create_engine
    from market.schema_version import import_models

    import_models()
    engine = create_engine(database_url, pooled=False)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def capture(_connection: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        statements.append((statement, parameters))

    try:
        async with async_sessionmaker(engine)() as session:
            raw: dict[str, list[str]] = {}
            for key, value in params(term):
                raw.setdefault(key, []).append(value)
            criteria = search.parse_criteria(raw)
            await search.search(session, criteria, 1)  # connects: the dialect's own first queries are not the search's
            await session.rollback()
            statements.clear()
            results = await search.search(session, criteria, 1)
    finally:
        await engine.dispose()
    return statements, results.total


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a local process (a PostgreSQL backend), or None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def postgres_floor(
    database_url: str, statements: list[tuple[str, Any]], clients: int, requests: int, warmup: int
) -> tuple[list[float], float | None]:
    """Latencies, and (one client, a local server) the backend's CPU milliseconds per search: unlike the
    latency, that does not grow when other processes share the cores."""
    dsn = load.asyncpg_dsn(database_url)
    connections = [await asyncpg.connect(dsn) for _ in range(clients)]
    latencies: list[float] = []
    pid = await connections[0].fetchval("SELECT pg_backend_pid()") if clients == 1 else None

    async def once(connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            for sql, args in statements:
                await connection.fetch(sql, *(args or ()))

    try:
        for _ in range(warmup):
            await once(connections[0])

        async def one_client(connection: asyncpg.Connection) -> None:
            for _ in range(max(1, requests // clients)):
                started = time.perf_counter()
                await once(connection)
                latencies.append((time.perf_counter() - started) * 1000)

        before = _cpu_seconds(pid) if pid else None
        await asyncio.gather(*(one_client(connection) for connection in connections))
        after = _cpu_seconds(pid) if pid else None
    finally:
        for connection in connections:
            await connection.close()
    cpu = (
        round((after - before) * 1000 / len(latencies), 1)
        if before is not None and after is not None and latencies
        else None
    )
    return latencies, cpu


def sqlite_floor(
    path: Path, statements: list[tuple[str, Any]], clients: int, requests: int, warmup: int
) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def once(connection: sqlite3.Connection) -> None:
        # the captured statements start with the application's own BEGIN (IMMEDIATE: see market.database)
        for sql, args in statements:
            connection.execute(sql, args or ()).fetchall()
        connection.execute("COMMIT")

    def one_client() -> None:
        # the application's busy timeout (market.database.SQLITE_BUSY_TIMEOUT_MS)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        try:
            for _ in range(max(1, requests // clients)):
                started = time.perf_counter()
                try:
                    once(connection)
                except sqlite3.OperationalError:  # "database is locked": BEGIN IMMEDIATE waited too long
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    continue
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)
        finally:
            connection.close()

    warm = sqlite3.connect(path, isolation_level=None)
    for _ in range(warmup):
        once(warm)
    warm.close()
    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


# --- the run ---------------------------------------------------------------------------------------


def _postgres_settings(database_url: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        connection = await asyncpg.connect(load.asyncpg_dsn(database_url))
        try:
            names = (
                "server_version",
                "shared_buffers",
                "work_mem",
                "effective_cache_size",
                "max_parallel_workers_per_gather",
            )
            return {name: await connection.fetchval(f"SHOW {name}") for name in names}
        finally:
            await connection.close()

    return asyncio.run(read())


def measure_database(
    name: str, database_url: str, floor: Callable[..., Any], args: argparse.Namespace
) -> list[Measure]:
    measures: list[Measure] = []
    # Every search is asked many times over: the cache of recent searches (MARKET_SEARCH_CACHE_SECONDS) would
    # answer all but the first from memory, and the search itself is what is measured here, beside its SQL.
    server = Server(database_url, args.workers, env={"MARKET_SEARCH_CACHE_SECONDS": "0"})
    try:
        server.wait()
        wanted = set(filter(None, args.terms.split(",")))
        for label, term in TERMS:
            if wanted and term not in wanted:
                continue
            statements, matches = asyncio.run(captured_sql(database_url, term))
            for clients in (1, 8):
                # SQLite's very common terms take about a second a search: fewer requests keep `make bench` short
                requests = (args.sqlite_requests if name == "sqlite" else args.requests) * (2 if clients > 1 else 1)
                warmup = min(args.warmup, 5) if name == "sqlite" else args.warmup
                latencies, total, errors, capped = asyncio.run(http_run(server.url, term, clients, requests, warmup))
                if total != matches:
                    raise RuntimeError(f"{name} {term!r}: HTTP found {total}, the driver {matches}")
                measures.append(Measure(name, label, term, "http", clients, total, latencies, errors, capped))
                print(
                    f"  {name:10} {term:10} http   x{clients}: p95 {measures[-1].percentile(0.95):8.1f} ms", flush=True
                )
                result = floor(statements, clients, requests, warmup)
                latencies, cpu = asyncio.run(result) if isinstance(result, Awaitable) else (result, None)
                measures.append(
                    Measure(name, label, term, "driver", clients, matches, latencies, capped=capped, cpu_ms=cpu)
                )
                print(
                    f"  {name:10} {term:10} driver x{clients}: p95 {measures[-1].percentile(0.95):8.1f} ms", flush=True
                )
    finally:
        server.stop()
    return measures


def table(measures: list[Measure]) -> str:
    lines = [
        f"{'database':10} {'term':12} {'label':20} {'matches':>8} {'mode':6} {'clients':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6} {'cpu ms':>6}  target"
    ]
    floors = {(m.database, m.term, m.clients): m.percentile(0.95) for m in measures if m.mode == "driver"}
    for m in measures:
        verdict = ""
        if m.database == "postgresql" and m.mode == "http" and m.clients == 1 and m.label in TARGET_P95_MS:
            limit = TARGET_P95_MS[m.label]
            p95 = m.percentile(0.95)
            ok = p95 <= limit and (m.label == "very common" or p95 <= 2 * floors[(m.database, m.term, 1)])
            verdict = (
                f"{'met' if ok else 'MISSED'} (p95 <= {limit:g} ms"
                + ("" if m.label == "very common" else ", <= 2x driver")
                + ")"
            )
        lines.append(
            f"{m.database:10} {m.term:12} {m.label:20} {str(m.matches) + ('+' if m.capped else ''):>8} {m.mode:6} {m.clients:>7} "
            f"{m.percentile(0.5):8.1f} {m.percentile(0.95):8.1f} {m.percentile(0.99):8.1f} {m.errors:>6} "
            f"{'' if m.cpu_ms is None else m.cpu_ms:>6}  {verdict}"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("search")
    group.add_argument(
        "--requests",
        type=int,
        default=int(os.environ.get("REQUESTS", "200")),
        help="measured requests per term for one client (twice as many for 8)",
    )
    group.add_argument(
        "--sqlite-requests",
        type=int,
        default=int(os.environ.get("SQLITE_REQUESTS", "40")),
        help="the same on SQLite (default 40; its warm-up at most 5)",
    )
    group.add_argument("--warmup", type=int, default=20)
    group.add_argument(
        "--databases", default="postgresql,sqlite", help="where to measure the search (default: postgresql,sqlite)"
    )
    group.add_argument("--terms", default="", help="measure only these terms (comma-separated; default: all)")


def run(args: argparse.Namespace) -> Path:
    """Loads the catalogue (unless --skip-load) and measures; the other benchmarks use the PostgreSQL data."""
    postgres = postgres_url()
    sqlite_path = Path(os.environ.get("BENCH_SQLITE", DEFAULT_SQLITE))
    providers = max(50, args.n // 250)
    wanted = args.databases.split(",")
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "n": args.n,
        "seed": args.seed,
        "providers": providers,
        "requests": args.requests,
        "sqlite_requests": args.sqlite_requests,
        "warmup": args.warmup,
        "server_workers": args.workers,
        "filters": FILTERS,
        "terms": args.terms or "all",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_before": os.getloadavg(),
            "sqlite": sqlite3.sqlite_version,
        },
        "load_seconds": {},
        "results": [],
    }
    measures: list[Measure] = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    target = RESULTS / f"{started.strftime('%Y%m%d-%H%M%S')}-n{args.n}.json"

    def save() -> None:  # after each database, so that a failure later keeps what was measured
        report["machine"]["load_average_after"] = os.getloadavg()
        report["results"] = [measure.summary() for measure in measures]
        target.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    if "postgresql" in wanted:
        if not args.skip_load:
            print(f"loading {args.n} listings into PostgreSQL ({postgres.split('@')[-1]}) ...", flush=True)
            report["load_seconds"]["postgresql"] = round(load.load_postgres(postgres, args.seed, args.n, providers), 1)
            print(f"  {report['load_seconds']['postgresql']} s", flush=True)
        report["postgresql"] = _postgres_settings(postgres)
        measures += measure_database(
            "postgresql",
            postgres,
            lambda statements, clients, requests, warmup: postgres_floor(
                postgres, statements, clients, requests, warmup
            ),
            args,
        )
        save()
    if "sqlite" in wanted:
        if not args.skip_load:
            print(f"loading {args.n} listings into SQLite ({sqlite_path}) ...", flush=True)
            report["load_seconds"]["sqlite"] = round(load.load_sqlite(sqlite_path, args.seed, args.n, providers), 1)
            print(f"  {report['load_seconds']['sqlite']} s", flush=True)
        sqlite_url = f"sqlite+aiosqlite:///{sqlite_path}"
        measures += measure_database(
            "sqlite",
            sqlite_url,
            lambda statements, clients, requests, warmup: sqlite_floor(
                sqlite_path, statements, clients, requests, warmup
            ),
            args,
        )
        save()
    print()
    print(table(measures))
    print(f"\nwritten: {target.relative_to(ROOT)}")
    return target
