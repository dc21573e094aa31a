"""The listing API: providers create, edit, document, submit and withdraw services with a token; anyone
reads what is listed; the same rules and messages as the pages."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from catalog.models import Document, Plan, Service, ServiceStatus, ServiceVersion, VersionState
from tests.catalog.listing_factories import (  # noqa: F401  (catalog_alone is a fixture)
    EXECUTABLE,
    PDF,
    api_token,
    catalog_alone,
    complete_json,
    draft_service,
    listed_service,
)
from tests.helpers import audit_actions, count, make_organisation, make_user

pytestmark = pytest.mark.usefixtures("catalog_alone")


async def _provider(sessions, **fields):
    organisation = await make_organisation(sessions, "provider", **fields)
    user = await make_user(sessions, organisation)
    return organisation, user, await api_token(sessions, user)


async def _version(sessions, service_id: int) -> ServiceVersion:
    async with sessions() as session:
        return (
            await session.scalars(
                sa.select(ServiceVersion)
                .where(ServiceVersion.service_id == service_id)
                .order_by(ServiceVersion.number.desc())
                .limit(1)
            )
        ).one()


async def test_a_provider_creates_a_draft_with_a_token(client, sessions) -> None:
    _org, _user, headers = await _provider(sessions)
    response = await client.post(
        "/api/services",
        json={"name": "Nuri Mail", "plans": [{"name": "Basic", "unit_price": "3,000"}]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "draft" and body["listed_version"] is None
    assert body["open_version"]["number"] == 1 and body["open_version"]["lock_version"] == 1
    assert body["open_version"]["name"] == "Nuri Mail" and body["open_version"]["plans"][0]["unit_price"] == 3000
    assert "service.create" in await audit_actions(sessions)


async def test_the_api_takes_only_bearer_tokens_of_providers(client, sessions, web) -> None:
    assert (await client.post("/api/services", json={"name": "x"})).status_code == 401
    await web.login_as("provider")  # a signed-in browser session is not enough for /api
    assert (await client.post("/api/services", json={"name": "x"})).status_code == 401
    agency = await make_user(sessions, await make_organisation(sessions, "agency"))
    response = await client.post("/api/services", json={"name": "x"}, headers=await api_token(sessions, agency))
    assert response.status_code == 403 and response.headers["content-type"].startswith("application/problem+json")
    assert await count(sessions, Service) == 0


async def test_patch_changes_only_the_fields_given(client, sessions, settings) -> None:
    org, user, headers = await _provider(sessions)
    service_id = await draft_service(sessions, settings, user, org)
    response = await client.patch(
        f"/api/services/{service_id}",
        json={"lock_version": 1, "summary": "Shorter summary", "sla_availability": 99.99},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    version = await _version(sessions, service_id)
    assert (version.summary, version.sla_availability_bp, version.name, version.lock_version) == (
        "Shorter summary",
        9999,
        "Baram Analytics",
        2,
    )
    async with sessions() as session:
        assert (
            await session.scalar(sa.select(sa.func.count()).select_from(Plan).where(Plan.version_id == version.id)) == 2
        )
    assert response.json()["open_version"]["sla_availability"] == 99.99


async def test_a_stale_patch_answers_409_with_what_changed_and_overwrites_nothing(client, sessions, settings) -> None:
    org, user, headers = await _provider(sessions)
    service_id = await draft_service(sessions, settings, user, org)
    first = await client.patch(
        f"/api/services/{service_id}", json={"lock_version": 1, "name": "Colleague's name"}, headers=headers
    )
    assert first.status_code == 200
    second = await client.patch(
        f"/api/services/{service_id}", json={"lock_version": 1, "name": "My name"}, headers=headers
    )
    assert second.status_code == 409
    problem = second.json()
    assert problem["status"] == 409 and "Someone else saved" in problem["detail"]
    assert problem["errors"]["name"] == "Baram Analytics → Colleague's name"
    assert problem["errors"]["lock_version"] == "2"
    version = await _version(sessions, service_id)
    assert (version.name, version.lock_version) == ("Colleague's name", 2)


async def test_a_price_that_is_not_a_whole_number_is_refused_by_the_api(client, sessions, settings) -> None:
    org, user, headers = await _provider(sessions)
    service_id = await draft_service(sessions, settings, user, org)
    response = await client.patch(
        f"/api/services/{service_id}",
        json={"lock_version": 1, "plans": [{"name": "Basic", "unit": "user_month", "unit_price": 12.5}]},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == {"plans.0.unit_price": "Enter a whole number."}
    assert (await _version(sessions, service_id)).lock_version == 1
    created = await client.post("/api/services", json={"plans": [{"unit_price": "twelve"}]}, headers=headers)
    assert created.status_code == 422 and await count(sessions, Service) == 1


async def test_api_submission_names_every_missing_field(client, sessions) -> None:
    _org, _user, headers = await _provider(sessions)
    created = (
        await client.post("/api/services", json={"name": "Bare", "plans": [{"name": "Basic"}]}, headers=headers)
    ).json()
    response = await client.post(f"/api/services/{created['id']}/submit", json={"lock_version": 1}, headers=headers)
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {
        "summary",
        "description",
        "category",
        "deployment_model",
        "features",
        "benefits",
        "data_country",
        "data_region",
        "sla_availability",
        "support_hours",
        "support_channels",
        "response_time_minutes",
        "service_credits",
        "onboarding_terms",
        "data_export_format",
        "data_return_terms",
        "data_deletion_terms",
        "plans.0.unit",
        "plans.0.unit_price",
        "documents.service_definition",
    }
    assert (await _version(sessions, created["id"])).state == VersionState.draft


async def test_a_provider_documents_and_submits_through_the_api(client, sessions) -> None:
    _org, _user, headers = await _provider(sessions)
    created = (await client.post("/api/services", json=complete_json(), headers=headers)).json()
    service_id = created["id"]
    refused = await client.post(
        f"/api/services/{service_id}/documents",
        data={"kind": "service_definition"},
        files={"file": ("definition.pdf", EXECUTABLE, "application/pdf")},
        headers=headers,
    )
    assert refused.status_code == 422 and "file" in refused.json()["errors"]
    uploaded = await client.post(
        f"/api/services/{service_id}/documents",
        data={"kind": "service_definition"},
        files={"file": ("definition.pdf", PDF, "application/pdf")},
        headers=headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["content_type"] == "application/pdf" and uploaded.json()["url"].startswith("/documents/")
    assert await count(sessions, Document) == 1
    response = await client.post(f"/api/services/{service_id}/submit", json={"lock_version": 1}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "submitted" and response.json()["open_version"]["state"] == "submitted"
    locked = await client.patch(
        f"/api/services/{service_id}", json={"lock_version": 2, "name": "Later"}, headers=headers
    )
    assert locked.status_code == 409 and "with the committee" in locked.json()["detail"]


async def test_another_providers_listing_is_not_found_through_the_api(client, sessions, settings) -> None:
    org, user, _headers = await _provider(sessions)
    service_id = await draft_service(sessions, settings, user, org)
    _other, _other_user, headers = await _provider(sessions)
    assert (await client.get(f"/api/services/{service_id}", headers=headers)).status_code == 404
    assert (await client.get(f"/api/services/{service_id}")).status_code == 404
    for method, path, kwargs in (
        ("patch", "", {"json": {"lock_version": 1, "name": "Hijacked"}}),
        ("post", "/submit", {"json": {"lock_version": 1}}),
        ("post", "/withdraw", {"json": {"reason": "x", "confirm": True}}),
        ("post", "/revise", {}),
        (
            "post",
            "/documents",
            {"data": {"kind": "terms_of_use"}, "files": {"file": ("t.pdf", PDF, "application/pdf")}},
        ),
    ):
        response = await getattr(client, method)(f"/api/services/{service_id}{path}", headers=headers, **kwargs)
        assert response.status_code == 404, path
    version = await _version(sessions, service_id)
    assert (version.name, version.lock_version, version.state) == ("Baram Analytics", 1, VersionState.draft)
    assert await count(sessions, Document) == 1


async def test_anyone_reads_a_listed_service_with_everything_a_buyer_needs(client, sessions, settings) -> None:
    org, user, _headers = await _provider(
        sessions, name="Baram Data", contact_email="sales@baram.example.kr", is_sme=True
    )
    service_id = await listed_service(sessions, settings, user, org)
    response = await client.get(f"/api/services/{service_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "listed" and body["listed_version"] == 1 and "open_version" not in body
    assert body["provider"] == {
        "id": org.id,
        "name": "Baram Data",
        "contact_email": "sales@baram.example.kr",
        "contact_phone": "",
        "website": "",
        "is_sme": True,
    }
    version = body["version"]
    assert version["state"] == "listed" and version["sla_availability"] == 99.9
    assert [plan["unit_price"] for plan in version["plans"]] == [150, 40]
    assert version["certifications"][0] == {
        "scheme": "CSAP",
        "name": "",
        "csap_type": "iaas",
        "grade": "high",
        "valid_from": "2025-03-01",
        "valid_to": "2030-02-28",
    }
    assert version["documents"][0]["kind"] == "service_definition"
    assert [v["number"] for v in body["versions"]] == [1]


async def test_withdrawal_through_the_api_needs_a_reason_and_confirmation_then_answers_410(
    client, sessions, settings
) -> None:
    org, user, headers = await _provider(sessions)
    service_id = await listed_service(sessions, settings, user, org)
    refused = await client.post(f"/api/services/{service_id}/withdraw", json={"reason": ""}, headers=headers)
    assert refused.status_code == 422 and set(refused.json()["errors"]) == {"reason", "confirm"}
    async with sessions() as session:
        assert (await session.get(Service, service_id)).status == ServiceStatus.listed
    response = await client.post(
        f"/api/services/{service_id}/withdraw", json={"reason": "End of life", "confirm": True}, headers=headers
    )
    assert response.status_code == 200 and response.json()["status"] == "withdrawn"
    gone = await client.get(f"/api/services/{service_id}")
    assert gone.status_code == 410
    assert gone.json()["errors"]["reason"] == "End of life" and "withdrawn on" in gone.json()["detail"]
    again = await client.post(
        f"/api/services/{service_id}/withdraw", json={"reason": "Again", "confirm": True}, headers=headers
    )
    assert again.status_code == 409


async def test_versions_and_differences_through_the_api(client, sessions, settings) -> None:
    org, user, headers = await _provider(sessions)
    service_id = await listed_service(sessions, settings, user, org)
    revised = await client.post(f"/api/services/{service_id}/revise", headers=headers)
    assert revised.status_code == 201 and revised.json()["open_version"]["number"] == 2
    await client.patch(
        f"/api/services/{service_id}", json={"lock_version": 1, "data_region": "Daejeon"}, headers=headers
    )
    own = await client.get(f"/api/services/{service_id}/versions", headers=headers)
    assert [(v["number"], v["state"]) for v in own.json()] == [(1, "listed"), (2, "draft")]
    public = await client.get(f"/api/services/{service_id}/versions")
    assert [(v["number"], v["state"]) for v in public.json()] == [(1, "listed")]
    difference = await client.get(f"/api/services/{service_id}/diff?from=1&to=2", headers=headers)
    assert difference.status_code == 200
    assert difference.json()["changes"] == [
        {"field": "data_region", "label": "Data location: region", "old": "Busan", "new": "Daejeon"}
    ]
    assert (await client.get(f"/api/services/{service_id}/diff?from=1&to=2")).status_code == 404
    listed = await client.get(f"/api/services/{service_id}")
    assert listed.json()["version"]["data_region"] == "Busan"


async def test_the_listing_api_appears_in_the_openapi_schema(client) -> None:
    schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/api/services",
        "/api/services/{service_id}",
        "/api/services/{service_id}/submit",
        "/api/services/{service_id}/withdraw",
        "/api/services/{service_id}/documents",
        "/api/services/{service_id}/versions",
        "/api/services/{service_id}/diff",
    ):
        assert path in schema["paths"], path
    assert not any(path.startswith("/services/") for path in schema["paths"])
