"""No route lets one organisation read or change another's objects, checked over the app's route table.

The demo data fills every table; a user of a fresh agency and of a fresh provider (owning nothing) then
calls every route that takes an object id, with the ids of the demo's objects. Reading answers 401, 403,
404 or 410, except where the object is public by design (a service that has been listed, its documents
and versions; certificates and the contract register are reached by number, not id). Changing anything
is refused and no audit event is written. A new route is covered the day it is added.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from market import accounts
from market.demo import load
from market.models import AuditEvent, Organisation, User
from tests.helpers import count, make_organisation, make_user
from tests.market.test_tokens import principal_of

IDS = (1, 2, 3, 4)
INT_PARAM = re.compile(r"\{(\w+):int\}")
REFUSED = {400, 401, 403, 404, 405, 409, 410, 413, 422}
# Object ids of catalogue rows that are public once the service has been listed.
LISTED_SERVICE_PATHS = re.compile(r"^(/api)?/services/\{service_id:int\}(/diff|/versions|/documents)?$")


def routes_with_ids(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not INT_PARAM.search(route.path) or ":str}" in route.path:
            continue
        for method in sorted(getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


def fill(path: str, value: int) -> str:
    return INT_PARAM.sub(str(value), path)


async def public_services(sessions: Any) -> set[int]:
    async with sessions() as session:
        rows = await session.execute(sa.text("SELECT id FROM catalog_service WHERE listed_version_id IS NOT NULL"))
        return {row[0] for row in rows}


async def public_documents(sessions: Any) -> set[int]:
    async with sessions() as session:
        rows = await session.execute(sa.text(
            "SELECT d.id FROM catalog_document d JOIN catalog_service_version v ON v.id = d.version_id "
            "WHERE v.state IN ('listed', 'superseded')"
        ))
        return {row[0] for row in rows}


@pytest.fixture
async def demo(sessions: Any, settings: Any) -> None:
    """The demo's objects take the low ids; a demo user's tokens too, so the stranger's own come later."""
    async with sessions() as session, session.begin():
        await load(session, settings, echo=lambda _line: None)
    async with sessions() as session, session.begin():
        owner = await session.scalar(sa.select(User).order_by(User.id))
        organisation = await session.get(Organisation, owner.organisation_id)
        for name in ("first", "second", "third", "fourth"):
            await accounts.create_token(session, principal_of(owner, organisation), name)


@pytest.mark.parametrize("kind", ["agency", "provider"])
async def test_a_stranger_reads_nothing_of_anothers_through_any_route(web: Any, app: Any, demo: None, kind: str) -> None:
    organisation = await make_organisation(web.sessions, kind)
    user = await make_user(web.sessions, organisation)
    async with web.sessions() as session, session.begin():
        _, token = await accounts.create_token(session, principal_of(user, organisation), "matrix")
    assert (await web.login(user.email)).status_code == 303
    listed, documents = await public_services(web.sessions), await public_documents(web.sessions)

    leaks = []
    for method, path in routes_with_ids(app):
        if method != "GET":
            continue
        for value in IDS:
            headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api") else {}
            response = await web.client.get(fill(path, value), headers=headers, follow_redirects=False)
            public = (LISTED_SERVICE_PATHS.match(path) and value in listed) or (path == "/documents/{document_id:int}" and value in documents)
            if response.status_code not in REFUSED and not (public and response.status_code == 200):
                leaks.append(f"GET {fill(path, value)} -> {response.status_code}")
    assert not leaks, "\n".join(leaks)


@pytest.mark.parametrize("kind", ["agency", "provider"])
async def test_a_stranger_changes_nothing_of_anothers_through_any_route(web: Any, app: Any, demo: None, kind: str) -> None:
    organisation = await make_organisation(web.sessions, kind)
    user = await make_user(web.sessions, organisation)
    async with web.sessions() as session, session.begin():
        _, token = await accounts.create_token(session, principal_of(user, organisation), "matrix")
    assert (await web.login(user.email)).status_code == 303
    csrf = await web.csrf("/")
    events = await count(web.sessions, AuditEvent)

    accepted = []
    for method, path in routes_with_ids(app):
        if method == "GET":
            continue
        for value in IDS:
            url = fill(path, value)
            if path.startswith("/api"):
                response = await web.client.request(method, url, json={}, headers={"Authorization": f"Bearer {token}"})
            else:
                response = await web.client.request(method, url, data={"_csrf_token": csrf}, follow_redirects=False)
            if response.status_code not in REFUSED:
                accepted.append(f"{method} {url} -> {response.status_code}")
    assert not accepted, "\n".join(accepted)
    assert await count(web.sessions, AuditEvent) == events
