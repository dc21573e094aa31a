"""Bulk loading of the generated catalogue: COPY into PostgreSQL, executemany into SQLite. Both databases
are first reset and migrated to head by the application's own migrations; on PostgreSQL the search indexes
and the narrow search table (0003, 0006) are built once after the load."""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench import generate
from market import schema_version

MIGRATIONS = Path(schema_version.MIGRATIONS_DIR) / "versions"
BATCH = 5_000


def _migration(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"migration_{name}", MIGRATIONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _batches(items: Iterable[generate.Listing], size: int = BATCH) -> Iterable[list[generate.Listing]]:
    batch: list[generate.Listing] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- PostgreSQL ------------------------------------------------------------------------------------


async def _ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(asyncpg_dsn(parsed.set(database="postgres").render_as_string(hide_password=False)))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


async def _reset_postgres(url: str) -> None:
    await _ensure_database(url)
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    finally:
        await connection.close()


async def _copy_postgres(url: str, seed: int, count: int, providers: int) -> None:
    narrow = _migration("0006_search_speed")
    indexes = {**_migration("0003_catalog_search").POSTGRES_INDEXES, **narrow.POSTGRES_INDEXES}
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await connection.execute("SET maintenance_work_mem = '512MB'")
        for name in indexes:  # rebuilt once after the load: much faster than row by row
            await connection.execute(f"DROP INDEX IF EXISTS {name}")
        # the narrow search table is filled in one statement after the load rather than by its trigger
        await connection.execute("ALTER TABLE catalog_listed_service DISABLE TRIGGER catalog_search_rows_sync")
        created = datetime(2025, 6, 1, tzinfo=UTC)
        rng = generate.random.Random(seed)
        await connection.copy_records_to_table(
            "organisation",
            columns=generate.ORGANISATION_COLUMNS,
            records=[
                generate.organisation_row(number, name, sme, created)
                for number, name, sme in generate.providers(rng, providers)
            ],
        )
        for batch in _batches(generate.listings(seed, count, providers)):
            tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in generate.COLUMNS}
            for item in batch:
                for table, row in generate.rows(item, json_text=True).items():
                    tables[table].append(row)
            for table, records in tables.items():
                await connection.copy_records_to_table(table, columns=generate.COLUMNS[table], records=records)
        await connection.execute("ALTER TABLE catalog_listed_service ENABLE TRIGGER catalog_search_rows_sync")
        for statement in narrow.POSTGRES_FILL:
            await connection.execute(statement)
        for statement in indexes.values():
            await connection.execute(statement)
        for table in ("organisation", "catalog_service", "catalog_service_version", "catalog_plan"):
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


def load_postgres(url: str, seed: int, count: int, providers: int) -> float:
    started = time.perf_counter()
    asyncio.run(_reset_postgres(url))
    schema_version.upgrade(url)
    asyncio.run(_copy_postgres(url, seed, count, providers))
    return time.perf_counter() - started


# --- SQLite ----------------------------------------------------------------------------------------


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):  # as SQLAlchemy stores UTCDateTime on SQLite: naive UTC text
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, bool):
        return int(value)
    return value


def load_sqlite(path: Path, seed: int, count: int, providers: int) -> float:
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    schema_version.upgrade(f"sqlite+aiosqlite:///{path}")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("BEGIN")
        created = datetime(2025, 6, 1, tzinfo=UTC)
        rng = generate.random.Random(seed)
        placeholders = ", ".join("?" for _ in generate.ORGANISATION_COLUMNS)
        connection.executemany(
            f"INSERT INTO organisation ({', '.join(generate.ORGANISATION_COLUMNS)}) VALUES ({placeholders})",
            [
                tuple(_sqlite_value(v) for v in generate.organisation_row(n, name, sme, created))
                for n, name, sme in generate.providers(rng, providers)
            ],
        )
        statements = {
            table: f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
            for table, columns in generate.COLUMNS.items()
        }
        for batch in _batches(generate.listings(seed, count, providers)):
            tables: dict[str, list[tuple[Any, ...]]] = {name: [] for name in generate.COLUMNS}
            for item in batch:
                for table, row in generate.rows(item, json_text=True).items():
                    tables[table].append(tuple(_sqlite_value(value) for value in row))
            for table, records in tables.items():
                connection.executemany(statements[table], records)  # the triggers fill the FTS5 tables
        connection.execute("COMMIT")
        for table in ("catalog_search_words", "catalog_search_trigrams"):
            connection.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    return time.perf_counter() - started


# --- demo data -------------------------------------------------------------------------------------


def load_demo(url: str) -> float:
    """The demo's organisations, users and data added to the generated catalogue by `market demo` itself
    (its documents under var/bench, where the benchmarks' servers keep their data); a second run adds nothing."""
    import os
    import subprocess
    import sys

    started = time.perf_counter()
    data_dir = Path(__file__).resolve().parent.parent / "var" / "bench"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MARKET_DATABASE_URL": url, "MARKET_DATA_DIR": str(data_dir), "MARKET_LOG_LEVEL": "WARNING"}
    subprocess.run(
        [str(Path(sys.executable).parent / "market"), "demo"], env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - started
