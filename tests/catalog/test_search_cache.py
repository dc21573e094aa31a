"""Recent searches answered from this process's memory (catalog/search_cache.py), through real requests: the same
search asked again reads nothing, a change made through this process is seen at once, one made through another
process within the time to live, 0 turns it off, and the number of entries is bounded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog import search, search_cache
from catalog.models import ListedService
from market.app import create_app
from market.database import reading
from market.models import Organisation
from market.settings import Settings, SettingsError, configure, configured
from market.state import db_config_of
from tests.catalog.listed import add_listed, list_service
from tests.catalog.listing_factories import api_token
from tests.helpers import make_organisation, make_user

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Statements:
    """The statements an app's engine runs that read the catalogue's search tables."""

    def __init__(self, app: Litestar) -> None:
        self.engine = db_config_of(app).get_engine().sync_engine
        self.seen: list[str] = []

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "catalog_listed_service" in statement or "catalog_search" in statement:
            self.seen.append(statement)

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)

    def take(self) -> int:
        found, self.seen = len(self.seen), []
        return found


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(app: Litestar, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> search_cache.SearchCache:
    """The session's app with a cache on (the suite's settings turn it off), for this test only."""
    kept = search_cache.SearchCache(60, entries=3, clock=clock)
    monkeypatch.setitem(app.state, search_cache.STATE_KEY, kept)
    return kept


@pytest.fixture
def statements(app: Litestar) -> Iterator[Statements]:
    with Statements(app) as counter:
        yield counter


@pytest.fixture
async def provider(sessions: Sessions) -> Organisation:
    return await make_organisation(sessions, "provider", "Hanbit Cloud Co., Ltd.", is_sme=True)


async def names(client: Client, **params: Any) -> list[str]:
    response = await client.get("/api/search", params=params)
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["results"]]


async def test_the_same_search_asked_again_reads_nothing_from_the_database(
    base_settings: Settings, sessions: Sessions, provider: Organisation, settings: Settings
) -> None:
    await list_service(sessions, provider, "Seoul Mail", summary="E-mail for agencies")
    await list_service(sessions, provider, "Busan Backup", summary="Nightly backups")
    before = configured()
    app = create_app(base_settings.with_(search_cache_seconds=30))  # the setting reaches the app's cache
    try:
        with Statements(app) as counter:
            async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
                first = await client.get("/api/search")
                assert first.status_code == 200 and first.json()["total"] == 2
                assert counter.take() > 0
                second = await client.get("/api/search")
                assert second.json() == first.json()
                assert counter.take() == 0
                page = await client.get("/services")  # the page asks the same search: served from memory too
                assert page.status_code == 200 and "Seoul Mail" in page.text
                assert counter.take() == 0
                korean = await client.get(
                    "/api/search", headers={"Accept-Language": "ko"}
                )  # labels in Korean: its own entry
                assert counter.take() > 0
                assert korean.json()["facets"][0]["label"] != first.json()["facets"][0]["label"]
                reordered = await client.get("/api/search?category=saas&category=paas")
                again = await client.get("/api/search?category=paas&category=saas")  # the same choices, another order
                assert (
                    again.json()["query"]["category"] == ["paas", "saas"]
                    and reordered.json()["results"] == again.json()["results"]
                )
        kept = search_cache.of(app)
        assert kept.seconds == 30 and kept.hits == 3 and kept.misses == 3
    finally:
        configure(before)


async def test_a_change_to_the_listed_services_in_this_process_is_seen_at_once(
    client: Client, cache: search_cache.SearchCache, sessions: Sessions, provider: Organisation, statements: Statements
) -> None:
    kept = await list_service(sessions, provider, "Seoul Mail")
    assert await names(client) == ["Seoul Mail"]
    assert await names(client) == ["Seoul Mail"] and cache.hits == 1
    await list_service(sessions, provider, "Busan Backup")  # refresh_listing, in this process
    assert sorted(await names(client)) == ["Busan Backup", "Seoul Mail"]
    # withdrawn by its provider through the API: gone from the next search
    user = await make_user(sessions, provider)
    response = await client.post(
        f"/api/services/{kept.id}/withdraw",
        json={"reason": "End of life", "confirm": True},
        headers=await api_token(sessions, user),
    )
    assert response.status_code == 200, response.text
    assert await names(client) == ["Busan Backup"]


async def test_an_entry_is_not_served_past_its_time_to_live(
    client: Client,
    cache: search_cache.SearchCache,
    clock: Clock,
    sessions: Sessions,
    provider: Organisation,
    statements: Statements,
) -> None:
    await list_service(sessions, provider, "Seoul Mail")
    await names(client)
    statements.take()
    clock.now += 59
    await names(client)
    assert statements.take() == 0
    clock.now += 2
    await names(client)
    assert statements.take() > 0 and cache.misses == 2


async def test_a_change_made_through_another_process_is_seen_once_the_time_to_live_passed(
    client: Client,
    cache: search_cache.SearchCache,
    clock: Clock,
    sessions: Sessions,
    provider: Organisation,
    database_url: str,
) -> None:
    await list_service(sessions, provider, "Seoul Mail")
    assert await names(client) == ["Seoul Mail"]
    other = (
        "import asyncio, sys\n"
        "from market.database import create_engine\n"
        "from market.assembly import assemble\n"
        "from market.models import Organisation\n"
        "from tests.catalog.listed import list_service\n"
        "parts = assemble()\n"
        "async def main():\n"
        "    engine = create_engine(sys.argv[1], pooled=False)\n"
        "    sessions = parts.sessions(engine)\n"
        "    async with sessions() as session:\n"
        "        provider = await session.get(Organisation, int(sys.argv[2]))\n"
        "    await list_service(sessions, provider, 'Busan Backup')\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run(
        [sys.executable, "-c", other, database_url, str(provider.id)],
        cwd=ROOT,
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    async with sessions() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(ListedService)) == 2
    assert await names(client) == ["Seoul Mail"]  # within the time to live: this process does not know yet
    clock.now += 61
    assert sorted(await names(client)) == ["Busan Backup", "Seoul Mail"]


async def test_a_search_read_before_a_change_was_committed_is_never_served(
    app: Litestar, sessions: Sessions, provider: Organisation, clock: Clock, settings: Settings
) -> None:
    await list_service(sessions, provider, "Seoul Mail")
    kept = search_cache.SearchCache(60, clock=clock)
    async with sessions() as reader:
        with reading():  # on SQLite: a read transaction, beside the writer below
            await reader.execute(sa.text("SELECT 1 FROM catalog_listed_service"))  # began before the change
        await list_service(sessions, provider, "Busan Backup")  # committed meanwhile, in this process
        read = await kept.search(reader, search.Criteria())
    assert len(kept) == 0 and read.total in (1, 2)  # what it read may be either: it is not kept
    async with sessions() as reader:
        assert (await kept.search(reader, search.Criteria())).total == 2
        assert len(kept) == 1
        assert (await kept.search(reader, search.Criteria())).total == 2 and kept.hits == 1


async def test_a_search_read_while_a_change_was_not_yet_committed_is_not_served_after_the_commit(
    sessions: Sessions, provider: Organisation, clock: Clock, settings: Settings
) -> None:
    await list_service(sessions, provider, "Seoul Mail")
    kept = search_cache.SearchCache(60, clock=clock)
    async with sessions() as writer:
        async with writer.begin():
            await add_listed(writer, provider, "Busan Backup")  # written, not yet committed
            async with sessions() as reader:
                with reading():
                    assert (await kept.search(reader, search.Criteria())).total == 1  # the committed rows
            assert len(kept) == 1
        # committed: the entry read before is not served
        async with sessions() as reader:
            assert (await kept.search(reader, search.Criteria())).total == 2 and kept.hits == 0


async def test_zero_seconds_turns_the_cache_off(
    client: Client, app: Litestar, sessions: Sessions, provider: Organisation, statements: Statements
) -> None:
    await list_service(sessions, provider, "Seoul Mail")
    assert search_cache.of(app).seconds == 0  # the suite's settings
    await names(client)
    assert statements.take() > 0
    await names(client)
    assert statements.take() > 0
    assert len(search_cache.of(app)) == 0


def test_the_time_to_live_is_read_from_the_environment_and_checked(tmp_path: Path) -> None:
    environment = {"MARKET_DATA_DIR": str(tmp_path)}
    assert Settings.from_env(environment).search_cache_seconds == 5
    assert Settings.from_env({**environment, "MARKET_SEARCH_CACHE_SECONDS": "0"}).search_cache_seconds == 0
    assert Settings.from_env({**environment, "MARKET_SEARCH_CACHE_SECONDS": "2.5"}).search_cache_seconds == 2.5
    for wrong in ("-1", "five", "nan", "inf"):
        with pytest.raises(SettingsError, match="MARKET_SEARCH_CACHE_SECONDS"):
            Settings.from_env({**environment, "MARKET_SEARCH_CACHE_SECONDS": wrong})


async def test_the_least_recently_used_search_goes_first_past_the_bound(
    client: Client, cache: search_cache.SearchCache, sessions: Sessions, provider: Organisation, statements: Statements
) -> None:
    await list_service(sessions, provider, "Seoul Mail", summary="mail hosting backup storage")
    for word in ("mail", "hosting", "backup"):
        await names(client, q=word)
    await names(client, q="mail")  # used again: "hosting" is now the least recent
    statements.take()
    await names(client, q="storage")
    assert len(cache) == 3 and statements.take() > 0
    await names(client, q="mail")
    await names(client, q="backup")
    assert statements.take() == 0
    await names(client, q="hosting")
    assert statements.take() > 0 and len(cache) == 3


async def test_a_project_counts_its_search_through_the_cache(
    client: Client, cache: search_cache.SearchCache, sessions: Sessions, provider: Organisation
) -> None:
    await list_service(sessions, provider, "Seoul Mail", summary="mail")
    user = await make_user(sessions, await make_organisation(sessions, "agency"))
    headers = await api_token(sessions, user)
    created = await client.post("/api/projects", json={"name": "Mail", "query": {"q": "mail"}}, headers=headers)
    assert created.status_code == 201, created.text
    project = created.json()["id"]
    assert (await client.get(f"/api/projects/{project}", headers=headers)).json()["matching"] == 1
    hits = cache.hits
    assert (await client.get(f"/api/projects/{project}", headers=headers)).json()["matching"] == 1
    assert cache.hits == hits + 1
    await list_service(sessions, provider, "Busan Mail", summary="mail")
    assert (await client.get(f"/api/projects/{project}", headers=headers)).json()["matching"] == 2
