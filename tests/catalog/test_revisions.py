"""Revisions: changing a listed service makes a new draft; the listed version stays visible, unchanged,
until the revision is listed; every version ever listed is kept; anyone who may see a service can
compare two of its versions."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from catalog import listings
from catalog.models import ListedService, Plan, Service, ServiceStatus, ServiceVersion, VersionState
from catalog.storage import LocalStorage
from market.auth import SystemActor
from market.errors import Conflict
from market.models import Organisation
from tests.catalog.listing_factories import (  # noqa: F401  (catalog_alone is a fixture)
    catalog_alone,
    complete_form,
    draft_service,
    listed_service,
    lock_version_on,
    principal,
    submit_and_list,
)
from tests.helpers import audit_actions, make_organisation, make_user

pytestmark = pytest.mark.usefixtures("catalog_alone")
COMMITTEE = SystemActor(email="committee")


async def _own_listed(web, settings) -> tuple[int, Organisation]:
    user = await web.login_as("provider")
    async with web.sessions() as session:
        organisation = await session.get(Organisation, user.organisation_id)
    return await listed_service(web.sessions, settings, user, organisation), organisation


async def _versions(sessions, service_id: int) -> list[ServiceVersion]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(ServiceVersion)
                    .where(ServiceVersion.service_id == service_id)
                    .order_by(ServiceVersion.number)
                )
            ).all()
        )


async def _revise(web, service_id: int):
    return await web.submit(f"/services/{service_id}/revise", form_page=f"/services/{service_id}/revise")


async def _save_revision(web, service_id: int, **fields: str):
    page = await web.client.get(f"/services/{service_id}/edit")
    return await web.submit(
        f"/services/{service_id}/edit",
        {"action": "save", "lock_version": lock_version_on(page), **complete_form(**fields)},
        form_page=f"/services/{service_id}/edit",
    )


async def test_a_revision_copies_the_listed_version_with_its_plans_and_documents(web, settings) -> None:
    service_id, _org = await _own_listed(web, settings)
    response = await _revise(web, service_id)
    assert response.status_code == 303 and response.headers["location"] == f"/services/{service_id}/edit"
    listed, draft = await _versions(web.sessions, service_id)
    assert (listed.state, draft.state, draft.number) == (VersionState.listed, VersionState.draft, 2)
    for field in (
        "name",
        "summary",
        "description",
        "features",
        "certifications",
        "sla_availability_bp",
        "data_export_format",
    ):
        assert getattr(draft, field) == getattr(listed, field), field
    async with web.sessions() as session:
        plans = {
            version_id: [
                (p.name, p.unit, p.unit_price)
                for p in (
                    await session.scalars(sa.select(Plan).where(Plan.version_id == version_id).order_by(Plan.position))
                ).all()
            ]
            for version_id in (listed.id, draft.id)
        }
        service = await session.get(Service, service_id)
    assert plans[draft.id] == plans[listed.id] == [("Per core", "vcpu_hour", 150), ("Storage", "gb_month", 40)]
    assert (service.listed_version_id, service.open_version_id, service.status) == (
        listed.id,
        draft.id,
        ServiceStatus.listed,
    )
    assert "service.revise" in await audit_actions(web.sessions)
    edit = await web.client.get(f"/services/{service_id}/edit")
    assert "This is a revision" in edit.text and "Documents (1 attached)" in edit.text


async def test_the_listed_version_stays_visible_and_unchanged_while_a_revision_is_edited(web, settings) -> None:
    service_id, _org = await _own_listed(web, settings)
    await _revise(web, service_id)
    saved = await _save_revision(web, service_id, name="Baram Analytics Pro", **{"plans.0.unit_price": "99000"})
    assert saved.status_code == 303, saved.text[:2000]
    await web.logout()
    public = await web.client.get(f"/services/{service_id}")
    assert public.status_code == 200
    assert "Baram Analytics Pro" not in public.text and "Baram Analytics" in public.text and "₩150" in public.text
    assert (await web.client.get(f"/services/{service_id}?version=2")).status_code == 404
    async with web.sessions() as session:
        row = await session.get(ListedService, service_id)
    assert (row.name, row.min_price) == ("Baram Analytics", 40)


async def test_listing_a_revision_supersedes_the_old_version_and_keeps_it(web, settings) -> None:
    user = await make_user(web.sessions, org := await make_organisation(web.sessions, "provider"))
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        version = await listings.start_revision(
            session, principal(user, org), LocalStorage(settings.data_dir / "documents"), service_id
        )
        await listings.save_draft(
            session,
            principal(user, org),
            service_id,
            version.lock_version,
            {
                "name": "Baram Analytics 2",
                "plans": [
                    {
                        "name": "Per core",
                        "unit": "vcpu_hour",
                        "unit_price": 120,
                        "vat_included": True,
                        "minimum_term_months": 1,
                        "free_trial_days": 0,
                    }
                ],
            },
        )
    await submit_and_list(web.sessions, user, org, service_id)
    first, second = await _versions(web.sessions, service_id)
    assert (first.state, second.state) == (VersionState.superseded, VersionState.listed)
    async with web.sessions() as session:
        service = await session.get(Service, service_id)
        row = await session.get(ListedService, service_id)
    assert (service.listed_version_id, service.open_version_id) == (second.id, None)
    assert (row.version_id, row.name, row.min_price, row.free_trial) == (second.id, "Baram Analytics 2", 120, False)
    current = await web.client.get(f"/services/{service_id}")
    assert "Baram Analytics 2" in current.text and "₩120" in current.text
    old = await web.client.get(f"/services/{service_id}?version=1")  # anyone may read what was once listed
    assert old.status_code == 200 and "₩150" in old.text and "Superseded" in old.text
    actions = await audit_actions(web.sessions)
    assert actions.count("service.list") == 2 and "revision.submitted" not in actions


async def test_anyone_who_sees_the_service_can_compare_two_listed_versions(web, settings) -> None:
    user = await make_user(web.sessions, org := await make_organisation(web.sessions, "provider"))
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        version = await listings.start_revision(
            session, principal(user, org), LocalStorage(settings.data_dir / "documents"), service_id
        )
        await listings.save_draft(
            session,
            principal(user, org),
            service_id,
            version.lock_version,
            {
                "summary": "Managed analytics, now with GPUs",
                "sla_availability_bp": 9995,
                "plans": [
                    {
                        "name": "Per core",
                        "unit": "vcpu_hour",
                        "unit_price": 150,
                        "vat_included": False,
                        "minimum_term_months": 1,
                        "free_trial_days": 14,
                    },
                    {
                        "name": "Storage",
                        "unit": "gb_month",
                        "unit_price": 35,
                        "vat_included": False,
                        "minimum_term_months": 0,
                        "free_trial_days": 0,
                    },
                    {
                        "name": "GPU",
                        "unit": "vcpu_hour",
                        "unit_price": 2500,
                        "vat_included": False,
                        "minimum_term_months": 0,
                        "free_trial_days": 0,
                    },
                ],
            },
        )
    await submit_and_list(web.sessions, user, org, service_id)
    await web.login_as("agency")
    page = await web.client.get(f"/services/{service_id}/diff?from=1&to=2")
    assert page.status_code == 200
    rows = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td><del>([^<]*)</del></td><td><ins>([^<]*)</ins></td></tr>', page.text
    )
    assert rows == [
        ("Summary", "Managed big data analytics", "Managed analytics, now with GPUs"),
        ("SLA availability", "99.9 %", "99.95 %"),
        ("Plan 2: unit price", "₩40", "₩35"),
        ("Plan 3: name", "—", "GPU"),
        ("Plan 3: unit", "—", "per vCPU-hour"),
        ("Plan 3: unit price", "—", "₩2,500"),
        ("Plan 3: VAT included", "—", "No"),
        ("Plan 3: minimum term", "—", "0 months"),
        ("Plan 3: free trial", "—", "0 days"),
    ]
    same = await web.client.get(f"/services/{service_id}/diff?from=2&to=2")
    assert "Nothing differs" in same.text
    default = await web.client.get(f"/services/{service_id}/diff")
    assert "Fields changed from version 1 to version 2" in default.text


async def test_a_draft_revision_can_be_compared_by_its_owner_only(web, settings) -> None:
    service_id, _org = await _own_listed(web, settings)
    await _revise(web, service_id)
    await _save_revision(web, service_id, summary="Draft wording")
    own = await web.client.get(f"/services/{service_id}/diff?from=1&to=2")
    assert own.status_code == 200 and "Draft wording" in own.text
    await web.logout()
    assert (await web.client.get(f"/services/{service_id}/diff?from=1&to=2")).status_code == 404
    assert (await web.client.get(f"/services/{service_id}/diff?from=1&to=9")).status_code == 404


async def test_only_one_revision_may_be_open_at_a_time(web, settings) -> None:
    service_id, _org = await _own_listed(web, settings)
    assert (await _revise(web, service_id)).status_code == 303
    second = await _revise(web, service_id)
    assert second.status_code == 409 and "only one at a time" in second.text
    assert len(await _versions(web.sessions, service_id)) == 2
    assert (await audit_actions(web.sessions)).count("service.revise") == 1


async def test_a_refused_revision_is_kept_and_the_listed_version_stays(web, settings) -> None:
    user = await make_user(web.sessions, org := await make_organisation(web.sessions, "provider"))
    service_id = await listed_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        version = await listings.start_revision(
            session, principal(user, org), LocalStorage(settings.data_dir / "documents"), service_id
        )
        await listings.submit(session, principal(user, org), service_id, version.lock_version)
    async with web.sessions() as session, session.begin():
        await listings.refuse_revision(session, COMMITTEE, service_id, "Evidence missing")
    first, second = await _versions(web.sessions, service_id)
    assert (first.state, second.state) == (VersionState.listed, VersionState.refused)
    async with web.sessions() as session:
        service = await session.get(Service, service_id)
    assert (service.status, service.listed_version_id, service.open_version_id) == (
        ServiceStatus.listed,
        first.id,
        None,
    )
    assert "service.refuse" in await audit_actions(web.sessions)
    async with web.sessions() as session, session.begin():
        third = await listings.start_revision(
            session, principal(user, org), LocalStorage(settings.data_dir / "documents"), service_id
        )
    assert third.number == 3


async def test_a_refused_first_submission_returns_the_service_to_draft(web, settings, catalog_alone) -> None:
    user = await make_user(web.sessions, org := await make_organisation(web.sessions, "provider"))
    service_id = await draft_service(web.sessions, settings, user, org)
    async with web.sessions() as session, session.begin():
        await listings.submit(session, principal(user, org), service_id, 1)
        await listings.refuse_revision(session, COMMITTEE, service_id, "Not a cloud service")
    async with web.sessions() as session:
        service = await session.get(Service, service_id)
    assert (service.status, service.status_reason, service.open_version_id) == (
        ServiceStatus.draft,
        "Not a cloud service",
        None,
    )
    async with web.sessions() as session, session.begin():
        version = await listings.start_revision(
            session, principal(user, org), LocalStorage(settings.data_dir / "documents"), service_id
        )
        await listings.submit(session, principal(user, org), service_id, version.lock_version)
    assert [event["version_id"] for event in catalog_alone["service.submitted"]] == [
        v.id for v in await _versions(web.sessions, service_id)
    ]


async def test_a_returned_submission_becomes_an_editable_draft_again(web, settings) -> None:
    service_id, _org = await _own_listed(web, settings)
    await _revise(web, service_id)
    page = await web.client.get(f"/services/{service_id}/submit")
    submitted = await web.submit(
        f"/services/{service_id}/submit",
        {"lock_version": lock_version_on(page)},
        form_page=f"/services/{service_id}/submit",
    )
    assert submitted.status_code == 303
    assert (await web.client.get(f"/services/{service_id}/edit")).text.count("is with the committee") == 1
    async with web.sessions() as session, session.begin():
        await listings.return_to_provider(session, COMMITTEE, service_id, "Add the ISO certificate")
    saved = await _save_revision(web, service_id, summary="With ISO")
    assert saved.status_code == 303
    assert (await _versions(web.sessions, service_id))[-1].summary == "With ISO"
    assert "service.return" in await audit_actions(web.sessions)


async def test_revision_listing_and_refusal_need_a_submission(web, settings) -> None:
    service_id, _org = await _own_listed(web, settings)
    await _revise(web, service_id)
    async with web.sessions() as session:
        with pytest.raises(Conflict, match="cannot become listed"):
            await listings.list_version(session, COMMITTEE, service_id)
        with pytest.raises(Conflict, match="cannot become refused"):
            await listings.refuse_revision(session, COMMITTEE, service_id)
        await session.rollback()
