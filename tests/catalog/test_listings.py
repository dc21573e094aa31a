"""Providers list services through the pages: drafts, every field, submission, withdrawal, the dashboard,
who sees what, and the search row kept in step with what is listed."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest
import sqlalchemy as sa

from catalog import listings
from catalog.listings import StaleEdit
from catalog.models import ListedService, Plan, Service, ServiceStatus, ServiceVersion, VersionEdit, VersionState
from market.auth import SystemActor
from market.errors import Conflict
from market.models import Organisation
from market.schemas import MONEY_MAX
from tests.catalog.listing_factories import (  # noqa: F401  (catalog_alone is a fixture)
    catalog_alone,
    complete_form,
    draft_service,
    listed_service,
    lock_version_on,
    principal,
    service_id_from,
)
from tests.committee.factories import appoint  # the committee's reviewers are its members in office
from tests.helpers import audit_actions, count, make_organisation, make_user

pytestmark = pytest.mark.usefixtures("catalog_alone")


async def _version(sessions, service_id: int, number: int | None = None) -> ServiceVersion:
    async with sessions() as session:
        query = sa.select(ServiceVersion).where(ServiceVersion.service_id == service_id)
        query = query.where(ServiceVersion.number == number) if number else query.order_by(ServiceVersion.number.desc())
        return (await session.scalars(query.limit(1))).one()


async def _service(sessions, service_id: int) -> Service:
    async with sessions() as session:
        return await session.get(Service, service_id)


async def _plans(sessions, version_id: int) -> list[Plan]:
    async with sessions() as session:
        return list(
            (await session.scalars(sa.select(Plan).where(Plan.version_id == version_id).order_by(Plan.position))).all()
        )


async def _create_draft(web, **fields: str) -> int:
    response = await web.submit("/services/new", {"action": "save", **fields}, form_page="/services/new")
    assert response.status_code == 303, response.text[:2000]
    return service_id_from(response)


async def _save(web, service_id: int, data: dict[str, str], lock_version: str | None = None):
    page = await web.client.get(f"/services/{service_id}/edit")
    lock = lock_version or lock_version_on(page)
    return await web.submit(
        f"/services/{service_id}/edit",
        {"action": "save", "lock_version": lock, **data},
        form_page=f"/services/{service_id}/edit",
    )


# --- drafts -----------------------------------------------------------------------------------------


async def test_provider_saves_an_incomplete_draft_and_finds_it_on_the_dashboard(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(web, name="Half-written service")
    version = await _version(web.sessions, service_id)
    assert (version.state, version.name, version.summary, version.number) == (
        VersionState.draft,
        "Half-written service",
        "",
        1,
    )
    assert (await _service(web.sessions, service_id)).status == ServiceStatus.draft
    dashboard = await web.client.get("/provider/services")
    assert dashboard.status_code == 200
    assert "Half-written service" in dashboard.text and "Draft version 1" in dashboard.text
    assert "service.create" in await audit_actions(web.sessions)


async def test_the_new_service_form_offers_three_empty_plan_and_certification_rows(web) -> None:
    await web.login_as("provider")
    page = await web.client.get("/services/new")
    assert page.status_code == 200
    for group in ("plans", "certifications"):
        assert f'name="{group}.2.name"' in page.text
        assert f'name="{group}.3.name"' not in page.text
    assert 'for="field-plans.0.unit_price"' in page.text  # every input has its label


async def test_add_another_plan_shows_one_more_row_keeps_entries_and_saves_nothing(web) -> None:
    await web.login_as("provider")
    response = await web.submit(
        "/services/new",
        {"action": "add_plan", "plans_rows": "3", "name": "Kept name", "plans.0.name": "Basic"},
        form_page="/services/new",
    )
    assert response.status_code == 200
    assert 'name="plans.3.name"' in response.text and 'name="plans.4.name"' not in response.text
    assert 'value="Kept name"' in response.text and 'value="Basic"' in response.text
    assert await count(web.sessions, Service) == 0


async def test_add_another_certification_on_the_edit_page_shows_one_more_row(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(web, name="Rows")
    page = await web.client.get(f"/services/{service_id}/edit")
    response = await web.submit(
        f"/services/{service_id}/edit",
        {
            "action": "add_certification",
            "lock_version": lock_version_on(page),
            "certifications_rows": "3",
            "name": "Rows",
        },
        form_page=f"/services/{service_id}/edit",
    )
    assert response.status_code == 200
    assert 'name="certifications.3.scheme"' in response.text
    assert (await _version(web.sessions, service_id)).lock_version == 1


async def test_the_edit_form_stores_every_field_of_a_listing(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(web, name="Draft")
    response = await _save(web, service_id, complete_form())
    assert response.status_code == 303, response.text[:3000]
    version = await _version(web.sessions, service_id)
    assert version.name == "Hanbit Cloud Drive" and version.summary.startswith("Secure file sharing")
    assert (version.category, version.deployment_model) == ("saas", "public")
    assert version.features == ["Sharing with expiry", "Version history"]
    assert version.benefits == ["Less e-mail", "A full audit trail"]
    assert (version.data_country, version.data_region) == ("KR", "Seoul")
    assert version.certifications == [
        {
            "scheme": "CSAP",
            "name": "",
            "csap_type": "saas_standard",
            "grade": "medium",
            "valid_from": "2025-01-01",
            "valid_to": "2030-12-31",
        },
        {
            "scheme": "ISO27001",
            "name": "",
            "csap_type": "",
            "grade": "",
            "valid_from": "2024-06-01",
            "valid_to": "2029-05-31",
        },
    ]
    assert version.sla_availability_bp == 9995
    assert (version.support_hours, sorted(version.support_channels), version.response_time_minutes) == (
        "24x7",
        ["email", "phone"],
        30,
    )
    assert (
        version.service_credits
        and version.onboarding_terms
        and version.data_return_terms
        and version.data_deletion_terms
    )
    assert version.data_export_format == "CSV and ZIP"
    assert version.lock_version == 2
    plans = await _plans(web.sessions, version.id)
    assert [
        (p.name, p.unit, p.unit_price, p.vat_included, p.minimum_term_months, p.free_trial_days) for p in plans
    ] == [
        ("Basic", "user_month", 12000, True, 12, 30),
        ("Enterprise", "user_month", 9000, False, 24, 0),
    ]
    assert (await audit_actions(web.sessions))[-1] == "service.save"
    page = await web.client.get(f"/services/{service_id}/edit")
    assert 'value="12000"' in page.text and 'value="99.95"' in page.text and "Version history" in page.text


async def test_a_price_that_is_not_a_whole_number_is_refused_and_changes_nothing(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(web, **{"name": "Priced", "plans.0.name": "Basic", "plans.0.unit_price": "1000"})
    response = await _save(
        web, service_id, {"name": "Renamed", "plans.0.name": "Basic", "plans.0.unit_price": "1000.50"}
    )
    assert response.status_code == 422
    assert "Enter a whole number." in response.text
    assert 'href="#field-plans.0.unit_price"' in response.text
    version = await _version(web.sessions, service_id)
    assert (version.name, version.lock_version) == ("Priced", 1)
    assert [plan.unit_price for plan in await _plans(web.sessions, version.id)] == [1000]
    assert "service.save" not in await audit_actions(web.sessions)


async def test_a_plan_price_beyond_32_bits_is_kept_whole_and_one_beyond_the_money_limit_is_refused(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(
        web, **{"name": "Sovereign region", "plans.0.name": "Region", "plans.0.unit_price": "3,000,000,000"}
    )
    version = await _version(web.sessions, service_id)
    assert [plan.unit_price for plan in await _plans(web.sessions, version.id)] == [3_000_000_000]
    response = await _save(
        web,
        service_id,
        {"name": "Sovereign region", "plans.0.name": "Region", "plans.0.unit_price": str(MONEY_MAX + 1)},
    )
    assert response.status_code == 422
    assert f"Enter a whole number from 0 to {MONEY_MAX:,}." in response.text
    assert [plan.unit_price for plan in await _plans(web.sessions, version.id)] == [3_000_000_000]
    saved = await _save(
        web, service_id, {"name": "Sovereign region", "plans.0.name": "Region", "plans.0.unit_price": str(MONEY_MAX)}
    )
    assert saved.status_code == 303
    assert [plan.unit_price for plan in await _plans(web.sessions, version.id)] == [MONEY_MAX]


async def test_wrong_values_in_a_draft_are_refused_with_a_message_each(web) -> None:
    await web.login_as("provider")
    response = await web.submit(
        "/services/new",
        {
            "name": "x",
            "category": "mainframe",
            "sla_availability": "120",
            "data_country": "Korea",
            "certifications.0.scheme": "ISO27001",
            "certifications.0.valid_from": "2026-01-01",
            "certifications.0.valid_to": "2025-01-01",
            "plans.0.name": "p",
            "plans.0.unit_price": "-5",
        },
        form_page="/services/new",
    )
    assert response.status_code == 422
    for field in ("category", "sla_availability", "data_country", "certifications.0.valid_to", "plans.0.unit_price"):
        assert f'href="#field-{field}"' in response.text, field
    assert await count(web.sessions, Service) == 0


# --- submission ---------------------------------------------------------------------------------------


async def test_submission_names_every_missing_field_at_once_and_changes_nothing(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(
        web, **{"name": "Only a name", "plans.0.name": "Basic", "certifications.0.scheme": "CSAP"}
    )
    page = await web.client.get(f"/services/{service_id}/submit")
    response = await web.submit(
        f"/services/{service_id}/submit",
        {"lock_version": lock_version_on(page)},
        form_page=f"/services/{service_id}/submit",
    )
    assert response.status_code == 422
    expected = [
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
        "certifications.0.csap_type",
        "certifications.0.grade",
        "certifications.0.valid_from",
        "certifications.0.valid_to",
    ]
    for field in expected:
        assert f'/services/{service_id}/edit#field-{field}"' in response.text, field
    assert f'href="/services/{service_id}/documents"' in response.text  # the service definition is missing too
    assert "24 answers are missing or wrong" in response.text
    version = await _version(web.sessions, service_id)
    assert version.state == VersionState.draft and version.submitted_at is None
    assert (await _service(web.sessions, service_id)).status == ServiceStatus.draft
    assert "service.submit" not in await audit_actions(web.sessions)


async def test_an_expired_certification_is_named_on_submission(web, settings) -> None:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        organisation = await session.get(Organisation, user.organisation_id)
    service_id = await draft_service(
        web.sessions,
        settings,
        user,
        organisation,
        certifications=[{"scheme": "ISO27018", "valid_from": "2019-01-01", "valid_to": "2022-01-01"}],
    )
    page = await web.client.get(f"/services/{service_id}/submit")
    assert "The certification expired on 2022-01-01." in page.text
    response = await web.submit(
        f"/services/{service_id}/submit",
        {"lock_version": lock_version_on(page)},
        form_page=f"/services/{service_id}/submit",
    )
    assert response.status_code == 422
    assert (await _version(web.sessions, service_id)).state == VersionState.draft


async def test_a_complete_draft_is_submitted_announced_to_the_committee_and_then_locked(web, catalog_alone) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(web, **complete_form())
    token = await web.csrf(f"/services/{service_id}/documents")
    upload = await web.client.post(
        f"/services/{service_id}/documents",
        data={"_csrf_token": token, "kind": "service_definition"},
        files={"file": ("definition.pdf", b"%PDF-1.5\nbody\n%%EOF", "application/pdf")},
        follow_redirects=False,
    )
    assert upload.status_code == 303, upload.text[:2000]
    page = await web.client.get(f"/services/{service_id}/submit")
    assert "is complete" in page.text
    response = await web.submit(
        f"/services/{service_id}/submit",
        {"lock_version": lock_version_on(page)},
        form_page=f"/services/{service_id}/submit",
    )
    assert response.status_code == 303, response.text[:2000]
    version = await _version(web.sessions, service_id)
    assert version.state == VersionState.submitted and version.submitted_at is not None
    assert (await _service(web.sessions, service_id)).status == ServiceStatus.submitted
    assert "service.submit" in await audit_actions(web.sessions)
    assert [(event["service_id"], event["version_id"]) for event in catalog_alone["service.submitted"]] == [
        (service_id, version.id)
    ]
    edit = await _save(web, service_id, {"name": "Changed after submission"}, lock_version=str(version.lock_version))
    assert edit.status_code == 409
    assert (await _version(web.sessions, service_id)).name == "Hanbit Cloud Drive"
    dashboard = await web.client.get("/provider/services")
    assert "Version 1: submitted" in dashboard.text


# --- concurrency ----------------------------------------------------------------------------------------


async def test_a_stale_save_is_refused_with_409_and_shows_what_changed_meanwhile(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(
        web, **{"name": "Shared draft", "summary": "First words", "plans.0.name": "Basic", "plans.0.unit_price": "100"}
    )
    started = lock_version_on(await web.client.get(f"/services/{service_id}/edit"))
    first = await _save(
        web,
        service_id,
        {"name": "Shared draft", "summary": "Colleague's words", "plans.0.name": "Basic", "plans.0.unit_price": "150"},
        started,
    )
    assert first.status_code == 303
    second = await _save(
        web,
        service_id,
        {"name": "My new name", "summary": "First words", "plans.0.name": "Basic", "plans.0.unit_price": "100"},
        started,
    )
    assert second.status_code == 409
    assert "Changed meanwhile" in second.text
    changed = re.findall(r"<tr><th scope=\"row\">([^<]+)</th><td>([^<]*)</td><td>([^<]*)</td></tr>", second.text)
    assert ("Summary", "First words", "Colleague&#39;s words") in changed
    assert ("Plan 1: unit price", "₩100", "₩150") in changed
    assert 'value="My new name"' in second.text  # the user's entries are kept in the form
    assert f'name="lock_version" value="{int(started) + 1}"' in second.text
    version = await _version(web.sessions, service_id)
    assert (version.name, version.summary, version.lock_version) == ("Shared draft", "Colleague's words", 2)
    assert (await audit_actions(web.sessions)).count("service.save") == 1


async def test_every_save_keeps_what_the_draft_said_for_later_comparison(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(web, name="One")
    await _save(web, service_id, {"name": "Two"})
    version = await _version(web.sessions, service_id)
    async with web.sessions() as session:
        edits = (
            await session.scalars(
                sa.select(VersionEdit).where(VersionEdit.version_id == version.id).order_by(VersionEdit.lock_version)
            )
        ).all()
    assert [(edit.lock_version, edit.content["name"]) for edit in edits] == [(1, "One"), (2, "Two")]


# --- who sees and changes what ----------------------------------------------------------------------------


async def test_another_providers_listing_answers_404_everywhere_and_nothing_changes(web, settings) -> None:
    owner_org = await make_organisation(web.sessions, "provider")
    owner = await make_user(web.sessions, owner_org)
    service_id = await draft_service(web.sessions, settings, owner, owner_org)
    before = await _version(web.sessions, service_id)
    await web.login_as("provider")
    events = len(await audit_actions(web.sessions))
    for path in ("", "/edit", "/submit", "/documents", "/withdraw", "/revise"):
        assert (await web.client.get(f"/services/{service_id}{path}")).status_code == 404, path
    token = await web.csrf("/provider/services")
    for path, data in (
        ("/edit", {"name": "Hijacked", "lock_version": "1"}),
        ("/submit", {"lock_version": "1"}),
        ("/withdraw", {"reason": "x", "confirm": "yes"}),
        ("/revise", {}),
    ):
        response = await web.client.post(
            f"/services/{service_id}{path}", data={"_csrf_token": token, **data}, follow_redirects=False
        )
        assert response.status_code == 404, path
    after = await _version(web.sessions, service_id)
    assert (after.name, after.lock_version, after.state) == (before.name, before.lock_version, before.state)
    actions = await audit_actions(web.sessions)
    # nothing changed; each refusal on another provider's service is written down as a security event
    assert [action for action in actions if not action.startswith("security.")] == actions[:events]
    assert actions[events:] == ["security.refused"] * 10
    dashboard = await web.client.get("/provider/services")
    assert "Baram Analytics" not in dashboard.text and "You have not listed any service yet." in dashboard.text


@pytest.mark.parametrize("kind", [None, "agency", "committee", "operator"])
async def test_nobody_outside_the_provider_sees_a_draft(web, settings, kind) -> None:
    owner_org = await make_organisation(web.sessions, "provider")
    owner = await make_user(web.sessions, owner_org)
    service_id = await draft_service(web.sessions, settings, owner, owner_org)
    if kind:
        await web.login_as(kind)
    assert (await web.client.get(f"/services/{service_id}")).status_code == 404
    assert (await web.client.get(f"/services/{service_id}/diff")).status_code == 404


async def test_the_committee_sees_a_submitted_version_and_the_public_does_not(web, settings) -> None:
    owner_org = await make_organisation(web.sessions, "provider")
    owner = await make_user(web.sessions, owner_org)
    service_id = await draft_service(web.sessions, settings, owner, owner_org)
    async with web.sessions() as session, session.begin():
        await listings.submit(session, principal(owner, owner_org), service_id, 1)
    assert (await web.client.get(f"/services/{service_id}")).status_code == 404
    member = await web.login_as("committee")
    assert (await web.client.get(f"/services/{service_id}")).status_code == 404  # not (or no longer) in office
    await appoint(web.sessions, member)
    page = await web.client.get(f"/services/{service_id}")
    assert page.status_code == 200 and "Baram Analytics" in page.text


async def test_provider_pages_need_a_provider(web) -> None:
    response = await web.client.get("/services/new", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    await web.login_as("agency")
    assert (await web.client.get("/services/new")).status_code == 403
    assert (await web.client.get("/provider/services")).status_code == 403


# --- the service page ---------------------------------------------------------------------------------------


async def test_the_service_page_shows_what_a_buyer_needs(web, settings) -> None:
    org = await make_organisation(
        web.sessions, "provider", name="Baram Data", contact_email="sales@baram.example.kr", contact_phone="02-123-4567"
    )
    user = await make_user(web.sessions, org)
    service_id = await listed_service(web.sessions, settings, user, org)
    page = await web.client.get(f"/services/{service_id}")
    assert page.status_code == 200
    for text in (
        "Baram Analytics",
        "Managed big data analytics",
        "Per core",
        "₩150",
        "per vCPU-hour",
        "Storage",
        "₩40",
        "99.9 %",
        "60 minutes",
        "weekdays 09:00-18:00 KST",
        "E-mail, Web portal",
        "CSAP",
        "grade high",
        "2030-02-28",
        "ISO/IEC 27017",
        "2028-01-01",
        "definition.pdf",
        "sales@baram.example.kr",
        "02-123-4567",
        "Baram Data",
        "Parquet",
        "Managed Spark",
    ):
        assert text in page.text, text
    assert "For your organisation" not in page.text


async def test_the_owner_sees_its_draft_revision_beside_the_listed_version(web, settings) -> None:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        org = await session.get(Organisation, user.organisation_id)
    service_id = await listed_service(web.sessions, settings, user, org)
    revise = await web.submit(f"/services/{service_id}/revise", form_page=f"/services/{service_id}/revise")
    assert revise.status_code == 303
    await _save(web, service_id, complete_form(name="Renamed in revision"))
    page = await web.client.get(f"/services/{service_id}")
    assert "Baram Analytics" in page.text and "Version 2 is open (draft)" in page.text
    draft = await web.client.get(f"/services/{service_id}?version=2")
    assert "Renamed in revision" in draft.text and "which buyers do not see" in draft.text
    dashboard = await web.client.get("/provider/services")
    assert "Draft version 2" in dashboard.text and "Version 1" in dashboard.text and "Listed" in dashboard.text


# --- withdrawal and 410 -------------------------------------------------------------------------------------


async def _own_listed(web, settings) -> int:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        org = await session.get(Organisation, user.organisation_id)
    return await listed_service(web.sessions, settings, user, org)


async def test_withdrawal_asks_for_confirmation_first(web, settings) -> None:
    service_id = await _own_listed(web, settings)
    page = await web.client.get(f"/services/{service_id}/withdraw")
    assert page.status_code == 200 and "cannot be undone" in page.text
    assert (await _service(web.sessions, service_id)).status == ServiceStatus.listed
    unconfirmed = await web.submit(
        f"/services/{service_id}/withdraw",
        {"reason": "Replaced by a new product"},
        form_page=f"/services/{service_id}/withdraw",
    )
    assert unconfirmed.status_code == 422 and "Confirm that the service should be withdrawn." in unconfirmed.text
    assert (await _service(web.sessions, service_id)).status == ServiceStatus.listed
    assert await count(web.sessions, ListedService) == 1
    assert "service.withdraw" not in await audit_actions(web.sessions)


async def test_withdrawing_takes_the_service_out_of_search_and_its_page_answers_410(
    web, settings, catalog_alone
) -> None:
    service_id = await _own_listed(web, settings)
    response = await web.submit(
        f"/services/{service_id}/withdraw",
        {"reason": "Replaced by a new product", "confirm": "yes"},
        form_page=f"/services/{service_id}/withdraw",
    )
    assert response.status_code == 303 and response.headers["location"] == "/provider/services"
    service = await _service(web.sessions, service_id)
    assert (service.status, service.status_reason) == (ServiceStatus.withdrawn, "Replaced by a new product")
    assert await count(web.sessions, ListedService) == 0
    assert "service.withdraw" in await audit_actions(web.sessions)
    assert catalog_alone["service.delisted"] == [
        {"service_id": service_id, "status": "withdrawn", "reason": "Replaced by a new product"}
    ]
    own = await web.client.get(f"/services/{service_id}")
    assert own.status_code == 200 and "withdrawn since" in own.text  # the provider keeps its record
    await web.logout()
    gone = await web.client.get(f"/services/{service_id}")
    assert gone.status_code == 410
    date = service.status_changed_at.astimezone(settings.zone).date().isoformat()
    assert f"withdrawn on {date}" in gone.text and "Replaced by a new product" in gone.text
    again = await web.login_as("provider")
    assert again and (await web.client.get(f"/services/{service_id}")).status_code == 410  # another provider


async def test_a_draft_cannot_be_withdrawn(web) -> None:
    await web.login_as("provider")
    service_id = await _create_draft(web, name="Draft only")
    response = await web.submit(
        f"/services/{service_id}/withdraw", {"reason": "x", "confirm": "yes"}, form_page="/provider/services"
    )
    assert response.status_code == 409 and "cannot become withdrawn" in response.text
    assert (await _service(web.sessions, service_id)).status == ServiceStatus.draft


@pytest.mark.parametrize("status", [ServiceStatus.revoked, ServiceStatus.expired])
async def test_a_revoked_or_expired_service_answers_410_with_the_reason(web, settings, status) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        await listings.change_status(session, SystemActor(email="committee"), service_id, status, "Certificate ended")
    response = await web.client.get(f"/services/{service_id}")
    assert response.status_code == 410 and "Certificate ended" in response.text and status.value in response.text
    assert f"service.{ {'revoked': 'revoke', 'expired': 'expire'}[status.value] }" in await audit_actions(web.sessions)


# --- the state machine --------------------------------------------------------------------------------------


async def test_forbidden_transitions_are_refused_with_a_message(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await draft_service(web.sessions, settings, user, org)
    actor = SystemActor(email="committee")
    async with web.sessions() as session:
        with pytest.raises(Conflict, match="cannot become listed"):
            await listings.list_version(session, actor, service_id)  # a draft is not a submission
        with pytest.raises(Conflict, match="cannot become suspended"):
            await listings.change_status(session, actor, service_id, ServiceStatus.suspended, "")
        await session.rollback()
    listed_id = await listed_service(web.sessions, settings, user, org, name="Second")
    async with web.sessions() as session:
        with pytest.raises(Conflict, match="no submission"):
            await listings.list_version(session, actor, listed_id)
        with pytest.raises(Conflict, match="cannot become submitted"):
            await listings.change_status(session, actor, listed_id, ServiceStatus.submitted, "")
        await session.rollback()


# --- the search projection -----------------------------------------------------------------------------------


async def test_refresh_listing_writes_the_search_row_from_the_listed_version(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider", name="Nuri Soft", is_sme=True)
    user = await make_user(web.sessions, org)
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session:
        row = await session.get(ListedService, service_id)
        version = await session.get(ServiceVersion, row.version_id)
    assert row.version_id == version.id and version.state == VersionState.listed
    assert (row.provider_id, row.provider_name, row.is_sme) == (org.id, "Nuri Soft", True)
    assert (row.name, row.summary, row.category, row.deployment_model) == (
        "Baram Analytics",
        "Managed big data analytics",
        "cloud_big_data",
        "private",
    )
    assert "Spark and SQL" in row.body and "Managed Spark" in row.body and "No cluster to run" in row.body
    assert row.certification_schemes == "|CSAP|ISO27017|"
    assert (row.csap_grade, row.data_country, row.sla_availability_bp) == ("high", "KR", 9990)
    assert (row.min_price, row.min_price_unit, row.free_trial) == (40, "gb_month", True)
    assert row.listed_at == version.listed_at
    assert (
        row.tiebreak
        == int(hashlib.sha256(str(service_id).encode()).hexdigest()[:7], 16)
        == listings.tiebreak(service_id)
    )


async def test_refresh_listing_removes_the_row_while_not_listed_and_restores_it(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await listed_service(
        web.sessions, settings, user, org, plans=[{"name": "Only", "unit": "project", "unit_price": 5_000_000}]
    )
    actor = SystemActor(email="committee")
    async with web.sessions() as session, session.begin():
        await listings.change_status(session, actor, service_id, ServiceStatus.suspended, "Documents out of date")
    assert await count(web.sessions, ListedService) == 0
    page = await web.client.get(f"/services/{service_id}")
    assert page.status_code == 200 and "suspended" in page.text and "Documents out of date" in page.text
    async with web.sessions() as session, session.begin():
        await listings.change_status(session, actor, service_id, ServiceStatus.listed, "")
    async with web.sessions() as session:
        row = await session.get(ListedService, service_id)
    assert (row.min_price, row.min_price_unit, row.free_trial, row.certification_schemes) == (
        5_000_000,
        "project",
        False,
        "|CSAP|ISO27017|",
    )
    actions = await audit_actions(web.sessions)
    assert "service.suspend" in actions and "service.reinstate" in actions


async def test_refresh_listing_follows_the_providers_sme_standing(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider", is_sme=False)
    user = await make_user(web.sessions, org)
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        (await session.get(Organisation, org.id)).is_sme = True
        (await session.get(Organisation, org.id)).name = "Renamed Provider"
        assert await listings.refresh_provider_listings(session, org.id) == 1
    async with web.sessions() as session:
        row = await session.get(ListedService, service_id)
    assert (row.is_sme, row.provider_name) == (True, "Renamed Provider")


async def test_two_saves_at_the_same_moment_let_exactly_one_through(web, settings) -> None:
    org = await make_organisation(web.sessions, "provider")
    user = await make_user(web.sessions, org)
    service_id = await draft_service(web.sessions, settings, user, org)
    async with web.sessions() as session:
        organisation = await session.get(Organisation, org.id)
    actor = principal(user, organisation)

    async def save(name: str) -> str:
        try:
            async with web.sessions() as session, session.begin():
                await listings.save_draft(session, actor, service_id, 1, {"name": name})
        except StaleEdit as exc:
            assert [change.field for change in exc.changes] == ["name"]
            return "refused"
        return "saved"

    outcomes = await asyncio.gather(save("First writer"), save("Second writer"))
    assert sorted(outcomes) == ["refused", "saved"]
    version = await _version(web.sessions, service_id)
    assert version.lock_version == 2 and version.name in {"First writer", "Second writer"}
    assert (await audit_actions(web.sessions)).count("service.save") == 1


async def test_blank_optional_numbers_save_a_draft_and_out_of_range_ones_are_named(web) -> None:
    await web.login_as("provider")
    blank = {
        "name": "Blank numbers",
        "plans.0.name": "Basic",
        "plans.0.unit": "user_month",
        "plans.0.unit_price": "",
        "plans.0.minimum_term_months": "",
        "plans.0.free_trial_days": "",
        "response_time_minutes": "",
    }
    response = await web.submit("/services/new", blank)
    assert response.status_code == 303, response.text
    wrong = await web.submit("/services/new", {**blank, "name": "Too long a trial", "plans.0.free_trial_days": "400"})
    assert wrong.status_code == 422 and "365" in wrong.text
