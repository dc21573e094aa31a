"""Agencies' procurement projects: saved search, ended search frozen as evidence, exports, the outcome."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog import projects
from catalog.listings import refresh_listing
from catalog.models import Project, Service, ServiceVersion, SnapshotItem, VersionState
from market.database import utcnow
from market.models import Organisation, User
from tests.catalog.listed import list_service, plan
from tests.catalog.listing_factories import api_token
from tests.helpers import Browserless, audit_actions, count, make_organisation, make_user

Client = AsyncTestClient[Litestar]
Sessions = async_sessionmaker[AsyncSession]
SEOUL = ZoneInfo("Asia/Seoul")


@pytest.fixture
async def provider(sessions: Sessions) -> Organisation:
    return await make_organisation(
        sessions,
        "provider",
        "Hanbit Cloud Co., Ltd.",
        contact_email="sales@hanbit.example.kr",
        contact_phone="02-123-4567",
    )


@pytest.fixture
async def mail(sessions: Sessions, provider: Organisation) -> list[Service]:
    return [
        await list_service(
            sessions,
            provider,
            "Mail One",
            summary="Agency e-mail",
            category="saas",
            plans=[plan("Basic", "user_month", 9_000)],
        ),
        await list_service(
            sessions,
            provider,
            "Mail Two",
            summary="Secure e-mail",
            category="saas",
            plans=[plan("Pro", "user_month", 12_000)],
        ),
        await list_service(sessions, provider, "Compute", summary="Virtual machines", category="iaas"),
    ]


@pytest.fixture
async def buyer(web: Browserless) -> User:
    return await web.login_as("agency")


async def save(web: Browserless, search: str, name: str = "Email 2026", project: str = "new") -> int:
    response = await web.submit(
        "/projects/save-search", {"search": search, "project": project, "name": name}, form_page="/services"
    )
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/projects/(\d+)", response.headers["location"])
    assert match
    return int(match.group(1))


async def end(web: Browserless, project_id: int) -> int:
    response = await web.submit(f"/projects/{project_id}/end", form_page=f"/projects/{project_id}/end")
    return response.status_code


async def load(sessions: Sessions, project_id: int) -> Project:
    async with sessions() as session:
        found = await session.get(Project, project_id)
        assert found
        return found


# --- saving and ending ------------------------------------------------------------------------------


@pytest.mark.usefixtures("mail", "buyer")
async def test_an_agency_saves_the_search_into_a_named_project(web: Browserless, sessions: Sessions) -> None:
    project_id = await save(web, "q=mail&category=saas")
    project = await load(sessions, project_id)
    assert project.name == "Email 2026"
    assert project.query["q"] == "mail" and project.query["category"] == ["saas"]
    assert "Keywords: mail" in project.query_description and "SaaS" in project.query_description
    page = await web.client.get(f"/projects/{project_id}")
    assert "It finds 2 services now." in page.text
    assert "project.create" in await audit_actions(sessions)


@pytest.mark.usefixtures("mail", "buyer")
async def test_a_count_past_the_search_cap_says_at_least(web: Browserless, monkeypatch: pytest.MonkeyPatch) -> None:
    project_id = await save(web, "q=mail")
    monkeypatch.setattr("catalog.search.results.TOTAL_CAP", 1)  # two services match: more than the search counts
    page = await web.client.get(f"/projects/{project_id}")
    assert "It finds 1+ services now." in page.text
    monkeypatch.setattr("catalog.projects.SNAPSHOT_LIMIT", 0)
    assert "The search finds 1+ services." in (await web.client.get(f"/projects/{project_id}/end")).text


@pytest.mark.usefixtures("mail", "buyer")
async def test_saving_again_replaces_the_active_search(web: Browserless, sessions: Sessions) -> None:
    project_id = await save(web, "q=mail")
    again = await save(web, "q=compute&category=iaas", project=str(project_id))
    assert again == project_id
    project = await load(sessions, project_id)
    assert project.query["q"] == "compute" and project.query["category"] == ["iaas"]
    assert await count(sessions, Project) == 1
    assert "project.save_search" in await audit_actions(sessions)


@pytest.mark.usefixtures("mail", "buyer")
async def test_a_new_project_needs_a_name(web: Browserless, sessions: Sessions) -> None:
    response = await web.submit(
        "/projects/save-search", {"search": "q=mail", "project": "new", "name": " "}, form_page="/services"
    )
    assert response.status_code == 422
    assert "Give the new project a name." in response.text
    assert await count(sessions, Project) == 0


@pytest.mark.usefixtures("buyer")
async def test_ending_the_search_freezes_what_each_service_said(
    web: Browserless, sessions: Sessions, mail: list[Service]
) -> None:
    project_id = await save(web, "q=mail")
    confirm = await web.client.get(f"/projects/{project_id}/end")
    assert "The search finds 2 services." in confirm.text
    assert await end(web, project_id) == 303
    project = await load(sessions, project_id)
    assert project.status == "ended" and project.ended_at is not None
    async with sessions() as session:
        items = (
            await session.scalars(
                sa.select(SnapshotItem).where(SnapshotItem.project_id == project_id).order_by(SnapshotItem.position)
            )
        ).all()
    assert {item.service_id for item in items} == {mail[0].id, mail[1].id}
    first = next(item for item in items if item.service_id == mail[0].id)
    assert first.data["name"] == "Mail One" and first.data["provider"] == "Hanbit Cloud Co., Ltd."
    assert first.data["contact"]["email"] == "sales@hanbit.example.kr"
    assert first.data["min_price"] == 9_000 and first.data["url"].endswith(f"/services/{mail[0].id}")
    assert first.data["plans"][0]["unit_price"] == 9_000
    assert "project.end_search" in await audit_actions(sessions)


@pytest.mark.usefixtures("buyer")
async def test_the_snapshot_is_unchanged_after_the_provider_changes_the_service(
    web: Browserless, sessions: Sessions, mail: list[Service], provider: Organisation
) -> None:
    project_id = await save(web, "q=mail")
    assert await end(web, project_id) == 303
    async with sessions() as session, session.begin():  # a revision is listed and the provider's contact changes
        service = await session.get(Service, mail[0].id)
        old = await session.get(ServiceVersion, service.listed_version_id)
        old.state = VersionState.superseded
        new = ServiceVersion(
            service_id=service.id,
            number=2,
            state=VersionState.listed,
            name="Mail One Renamed",
            summary="Now different",
            category="saas",
            deployment_model="public",
            listed_at=utcnow(),
        )
        session.add(new)
        await session.flush()
        service.listed_version_id = new.id
        organisation = await session.get(Organisation, provider.id)
        organisation.contact_email = "new@hanbit.example.kr"
        await refresh_listing(session, service)
    page = await web.client.get(f"/projects/{project_id}")
    assert "Mail One Renamed" not in page.text and "Agency e-mail" in page.text
    export = await web.client.get(f"/projects/{project_id}/export/csv")
    assert "Mail One Renamed" not in export.text and "sales@hanbit.example.kr" in export.text
    search = await web.client.get("/api/search", params={"q": "renamed"})
    assert search.json()["total"] == 1  # the live catalogue did change


@pytest.mark.usefixtures("mail", "buyer")
async def test_an_ended_search_cannot_be_edited_or_ended_again(web: Browserless, sessions: Sessions) -> None:
    project_id = await save(web, "q=mail")
    assert await end(web, project_id) == 303
    response = await web.submit(
        "/projects/save-search", {"search": "q=compute", "project": str(project_id), "name": ""}, form_page="/services"
    )
    assert response.status_code == 409
    assert (await web.submit(f"/projects/{project_id}/end", form_page=f"/projects/{project_id}")).status_code == 409
    project = await load(sessions, project_id)
    assert project.query["q"] == "mail"
    assert await count(sessions, SnapshotItem) == 2


@pytest.mark.usefixtures("buyer")
async def test_more_results_than_the_limit_ask_to_refine_first(
    web: Browserless, sessions: Sessions, provider: Organisation
) -> None:
    for number in range(projects.SNAPSHOT_LIMIT + 1):
        await list_service(sessions, provider, f"Archive {number}", summary="Records")
    project_id = await save(web, "q=archive")
    confirm = await web.client.get(f"/projects/{project_id}/end")
    assert "Refine it to at most 30 services" in confirm.text
    assert await end(web, project_id) == 409
    assert (await load(sessions, project_id)).status == "active"
    assert await count(sessions, SnapshotItem) == 0


# --- the outcome -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("buyer")
async def test_the_outcome_is_recorded_once_and_is_final(
    web: Browserless, sessions: Sessions, mail: list[Service]
) -> None:
    project_id = await save(web, "q=mail")
    assert await end(web, project_id) == 303
    form = {"outcome": "awarded", "service_id": str(mail[1].id), "reason": "Best value for 300 users", "confirm": "yes"}
    first = await web.submit(f"/projects/{project_id}/outcome", form)
    assert first.status_code == 303
    project = await load(sessions, project_id)
    assert (project.outcome, project.outcome_service_id, project.outcome_reason) == (
        "awarded",
        mail[1].id,
        "Best value for 300 users",
    )
    second = await web.submit(
        f"/projects/{project_id}/outcome", {**form, "outcome": "cancelled"}, form_page=f"/projects/{project_id}"
    )
    assert second.status_code == 409
    assert (await load(sessions, project_id)).outcome == "awarded"
    assert (await audit_actions(sessions)).count("project.record_outcome") == 1
    page = await web.client.get(f"/projects/{project_id}")
    assert "Awarded" in page.text and "Best value for 300 users" in page.text


@pytest.mark.usefixtures("buyer")
async def test_an_award_must_name_a_service_of_the_snapshot_and_give_a_reason(
    web: Browserless, sessions: Sessions, mail: list[Service]
) -> None:
    project_id = await save(web, "q=mail")
    assert await end(web, project_id) == 303
    outside = await web.submit(
        f"/projects/{project_id}/outcome",
        {"outcome": "awarded", "service_id": str(mail[2].id), "reason": "x", "confirm": "yes"},
    )
    assert outside.status_code == 422
    assert "Choose one of the services of the ended search." in outside.text
    no_reason = await web.submit(
        f"/projects/{project_id}/outcome", {"outcome": "none_suitable", "reason": "", "confirm": "yes"}
    )
    assert no_reason.status_code == 422
    unconfirmed = await web.submit(f"/projects/{project_id}/outcome", {"outcome": "cancelled", "reason": "Budget cut"})
    assert unconfirmed.status_code == 422
    assert (await load(sessions, project_id)).outcome is None


@pytest.mark.usefixtures("mail", "buyer")
async def test_no_outcome_before_the_search_ends(web: Browserless, sessions: Sessions) -> None:
    project_id = await save(web, "q=mail")
    response = await web.submit(
        f"/projects/{project_id}/outcome",
        {"outcome": "cancelled", "reason": "Budget cut", "confirm": "yes"},
        form_page=f"/projects/{project_id}",
    )
    assert response.status_code == 409
    assert (await load(sessions, project_id)).outcome is None


# --- who may see a project ---------------------------------------------------------------------------


@pytest.mark.usefixtures("mail", "buyer")
async def test_another_agency_gets_404_for_every_page_and_call(
    web: Browserless, sessions: Sessions, client: Client
) -> None:
    project_id = await save(web, "q=mail")
    assert await end(web, project_id) == 303
    other = await make_organisation(sessions, "agency")
    stranger = await make_user(sessions, other)
    headers = await api_token(sessions, stranger)
    for path in (f"/api/projects/{project_id}", f"/api/projects/{project_id}/export/csv"):
        assert (await client.get(path, headers=headers)).status_code == 404
    assert (
        await client.post(
            f"/api/projects/{project_id}/outcome", json={"outcome": "cancelled", "reason": "x"}, headers=headers
        )
    ).status_code == 404
    assert (
        await client.put(f"/api/projects/{project_id}/search", json={"query": {}}, headers=headers)
    ).status_code == 404
    assert (await client.get("/api/projects", headers=headers)).json()["total"] == 0
    await web.logout()
    await web.login(stranger.email)
    assert (await web.client.get(f"/projects/{project_id}")).status_code == 404
    assert (await web.client.get(f"/projects/{project_id}/export/xlsx")).status_code == 404
    assert (await load(sessions, project_id)).outcome is None


async def test_projects_are_for_agencies_only(web: Browserless, client: Client, sessions: Sessions) -> None:
    assert (await client.get("/api/projects")).status_code == 401
    anonymous = await client.get("/projects", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    seller = await web.login_as("provider")
    assert (await web.client.get("/projects")).status_code == 403
    assert (await client.get("/api/projects", headers=await api_token(sessions, seller))).status_code == 403


# --- exports -----------------------------------------------------------------------------------------


def _filename(disposition: str) -> str:
    match = re.search(r"filename\*=UTF-8''([^;]+)", disposition)
    assert match, disposition
    return unquote(match.group(1))


@pytest.mark.usefixtures("buyer")
async def test_the_ended_search_exports_as_csv_and_xlsx_with_header_rows(
    web: Browserless, sessions: Sessions, mail: list[Service]
) -> None:
    project_id = await save(web, "q=mail&category=saas", name="Email 2026")
    assert await end(web, project_id) == 303
    ended = (await load(sessions, project_id)).ended_at
    day = ended.astimezone(SEOUL).date().isoformat()

    response = await web.client.get(f"/projects/{project_id}/export/csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert _filename(response.headers["content-disposition"]) == f"{day}-email-2026-results.csv"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["Project", "Email 2026"]
    assert rows[1][0] == "Search ended" and rows[1][1].startswith(ended.astimezone(SEOUL).strftime("%Y-%m-%d %H:%M"))
    assert rows[2][0] == "Search" and "Keywords: mail" in rows[2][1] and "SaaS" in rows[2][1]
    header = rows.index(
        ["No.", "Provider", "Service", "Summary", "Lowest price (KRW)", "Unit", "Page address", "Contact"]
    )
    services = rows[header + 1 :]
    assert len(services) == 2
    one = next(row for row in services if row[2] == "Mail One")
    assert one[1] == "Hanbit Cloud Co., Ltd." and one[3] == "Agency e-mail" and one[4] == "9000"
    assert one[5] == "per user per month" and one[6].endswith(f"/services/{mail[0].id}")
    assert one[7] == "sales@hanbit.example.kr 02-123-4567"

    workbook = await web.client.get(f"/projects/{project_id}/export/xlsx")
    assert workbook.status_code == 200
    assert _filename(workbook.headers["content-disposition"]) == f"{day}-email-2026-results.xlsx"
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    values = [[cell for cell in row if cell is not None] for row in sheet.iter_rows(values_only=True)]
    assert values[0] == ["Project", "Email 2026"]
    assert ["No.", "Provider", "Service", "Summary", "Lowest price (KRW)", "Unit", "Page address", "Contact"] in values
    assert sum(1 for row in values if "Mail One" in row or "Mail Two" in row) == 2
    assert (await audit_actions(sessions)).count("project.export") == 2


@pytest.mark.usefixtures("mail", "buyer")
async def test_a_korean_project_name_keeps_its_letters_in_the_file_name(web: Browserless, sessions: Sessions) -> None:
    project_id = await save(web, "q=mail", name="2026년 메일 / 협업")
    assert await end(web, project_id) == 303
    response = await web.client.get(f"/projects/{project_id}/export/csv")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d-2026년-메일-협업-results\.csv", _filename(response.headers["content-disposition"])
    )
    assert 'filename="' in response.headers["content-disposition"]


@pytest.mark.usefixtures("mail", "buyer")
async def test_an_active_search_has_no_export(web: Browserless) -> None:
    project_id = await save(web, "q=mail")
    assert (await web.client.get(f"/projects/{project_id}/export/csv")).status_code == 404


# --- the API and compare from a project --------------------------------------------------------------


async def test_the_api_runs_the_whole_project(client: Client, sessions: Sessions, mail: list[Service]) -> None:
    agency = await make_organisation(sessions, "agency")
    headers = await api_token(sessions, await make_user(sessions, agency))
    created = await client.post(
        "/api/projects", json={"name": "Mail", "query": {"q": "mail", "category": ["saas"]}}, headers=headers
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    assert created.json()["matching"] == 2 and created.json()["matching_capped"] is False
    saved = await client.put(f"/api/projects/{project_id}/search", json={"query": {"q": "mail one"}}, headers=headers)
    assert saved.json()["matching"] == 1
    ended = await client.post(f"/api/projects/{project_id}/end", headers=headers)
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert [item["name"] for item in ended.json()["results"]] == ["Mail One"]
    outcome = {"outcome": "awarded", "service_id": mail[0].id, "reason": "Only fit"}
    assert (await client.post(f"/api/projects/{project_id}/outcome", json=outcome, headers=headers)).status_code == 200
    assert (await client.post(f"/api/projects/{project_id}/outcome", json=outcome, headers=headers)).status_code == 409
    bad = await client.post("/api/projects", json={"name": "", "query": {"price_max": "lots"}}, headers=headers)
    assert bad.status_code == 422
    assert await count(sessions, Project) == 1


async def test_compare_from_a_project_shows_the_frozen_versions(
    web: Browserless, sessions: Sessions, mail: list[Service], buyer: User
) -> None:
    project_id = await save(web, "q=mail")
    assert await end(web, project_id) == 303
    async with sessions() as session, session.begin():
        service = await session.get(Service, mail[0].id)
        old = await session.get(ServiceVersion, service.listed_version_id)
        old.state = VersionState.superseded
        new = ServiceVersion(
            service_id=service.id,
            number=2,
            state=VersionState.listed,
            name="Mail One Renamed",
            category="saas",
            deployment_model="public",
            listed_at=utcnow(),
        )
        session.add(new)
        await session.flush()
        service.listed_version_id = new.id
        await refresh_listing(session, service)
    params = [("ids", str(mail[0].id)), ("ids", str(mail[1].id)), ("project", str(project_id))]
    headers = await api_token(sessions, buyer)
    frozen = (await web.client.get("/api/compare", params=params, headers=headers)).json()
    assert [column["name"] for column in frozen["services"]] == ["Mail One", "Mail Two"]
    live = (await web.client.get("/api/compare", params=params[:2], headers=headers)).json()
    assert live["services"][0]["name"] == "Mail One Renamed"
    outside = [*params[:1], ("ids", str(mail[2].id)), params[2]]
    assert (await web.client.get("/api/compare", params=outside, headers=headers)).status_code == 404
    page = await web.client.get("/compare", params=params)
    assert page.status_code == 200 and "Mail One Renamed" not in page.text and "Back to the project" in page.text


def test_the_snapshot_limit_is_thirty() -> None:
    assert projects.SNAPSHOT_LIMIT == 30
    assert isinstance(utcnow(), datetime)
