"""Revisions of a listed service: a light review by one member replaces or keeps the listed version."""

from __future__ import annotations

import sqlalchemy as sa

from catalog.models import ListedService, Plan, Service, ServiceVersion, VersionState
from committee.models import Case
from market import hooks
from market.database import utcnow
from tests.committee.factories import certified_service, world


async def _submit_revision(w, service_id, name):
    async with w.sessions() as session, session.begin():
        owner = await session.get(Service, service_id)
        listed = await session.get(ServiceVersion, owner.listed_version_id)
        fields = {
            c: getattr(listed, c)
            for c in (
                "summary",
                "description",
                "category",
                "deployment_model",
                "features",
                "benefits",
                "data_country",
                "data_region",
                "certifications",
                "sla_availability_bp",
                "support_hours",
                "support_channels",
                "response_time_minutes",
                "service_credits",
                "onboarding_terms",
                "data_export_format",
                "data_return_terms",
                "data_deletion_terms",
            )
        }
        version = ServiceVersion(
            service_id=service_id, number=2, state=VersionState.submitted, name=name, submitted_at=utcnow(), **fields
        )
        session.add(version)
        await session.flush()
        session.add(Plan(version_id=version.id, name="Standard", unit="user_month", unit_price=9000))
        owner.open_version_id = version.id
        await hooks.emit(
            "revision.submitted", session, service_id=service_id, version_id=version.id, actor=w.as_(w.provider_user)
        )
        return await session.scalar(sa.select(Case.id).where(Case.version_id == version.id))


async def test_an_approved_revision_replaces_the_listed_version(sessions, client):
    w = await world(sessions)
    service_id, _case_id = await certified_service(w, name="Old Name")
    case_id = await _submit_revision(w, service_id, "New Name")
    detail = await client.get(f"/api/committee/cases/{case_id}", headers=w.bearer(w.chair))
    assert detail.json()["kind"] == "revision" and detail.json()["state"] == "assignment"
    assert any(change["field"] == "name" for change in detail.json()["differences"])
    two = await client.post(
        f"/api/committee/cases/{case_id}/assign",
        headers=w.bearer(w.chair),
        json={"member_ids": [w.members[0].id, w.members[1].id]},
    )
    assert two.status_code == 409  # one member reviews a revision
    assigned = await client.post(f"/api/committee/cases/{case_id}/auto-assign", headers=w.bearer(w.chair))
    assert assigned.status_code == 200 and len(assigned.json()["assigned"]) == 1
    reviewer = next(m for m in [w.chair, *w.members] if m.id == assigned.json()["assigned"][0])
    response = await client.post(
        f"/api/committee/cases/{case_id}/review", headers=w.bearer(reviewer), json={"approve": True}
    )
    assert response.status_code == 201 and response.json()["case_state"] == "approved"
    async with sessions() as session:
        listed = await session.get(ListedService, service_id)
        old = await session.scalar(
            sa.select(ServiceVersion).where(ServiceVersion.service_id == service_id, ServiceVersion.number == 1)
        )
    assert listed.name == "New Name" and old.state == "superseded"


async def test_a_refused_revision_keeps_the_listed_version_and_says_why(sessions, client):
    w = await world(sessions)
    service_id, _case_id = await certified_service(w, name="Steady Name")
    case_id = await _submit_revision(w, service_id, "Risky Name")
    await client.post(
        f"/api/committee/cases/{case_id}/assign", headers=w.bearer(w.chair), json={"member_ids": [w.members[0].id]}
    )
    no_reason = await client.post(
        f"/api/committee/cases/{case_id}/review", headers=w.bearer(w.members[0]), json={"approve": False}
    )
    assert no_reason.status_code == 422
    response = await client.post(
        f"/api/committee/cases/{case_id}/review",
        headers=w.bearer(w.members[0]),
        json={"approve": False, "comment": "The price cut hides a shorter SLA."},
    )
    assert response.json()["case_state"] == "refused"
    async with sessions() as session:
        listed = await session.get(ListedService, service_id)
        revision = await session.scalar(
            sa.select(ServiceVersion).where(ServiceVersion.service_id == service_id, ServiceVersion.number == 2)
        )
    assert listed.name == "Steady Name" and revision.state == "refused"
    provider = await client.get(f"/api/provider/cases/{case_id}", headers=w.bearer(w.provider_user))
    assert provider.json()["decision"]["reason"] == "The price cut hides a shorter SLA."
