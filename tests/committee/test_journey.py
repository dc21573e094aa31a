"""The whole way through pages: a provider's real submission, the secretariat's check, the chair's assignment,
three independent reviews, the certificate, and the service in an agency's search."""

from __future__ import annotations

import sqlalchemy as sa

from catalog import listings, schemas
from catalog.models import Document, ServiceVersion
from committee.models import Case, Certificate
from tests.committee.factories import make_user, token_for, world
from tests.helpers import make_organisation

LISTING = {
    "name": "Gangnam Secure Mail",
    "summary": "E-mail for agencies, hosted in Korea",
    "description": "Encrypted e-mail and calendars.",
    "category": "saas",
    "deployment_model": "public",
    "features": ["Encryption"],
    "benefits": ["No tender needed"],
    "data_country": "KR",
    "data_region": "Seoul",
    "certifications": [
        {
            "scheme": "CSAP",
            "csap_type": "saas_standard",
            "grade": "medium",
            "valid_from": "2025-01-01",
            "valid_to": "2099-01-01",
        }
    ],
    "sla_availability": "99.9",
    "support_hours": "24/7",
    "support_channels": ["email"],
    "response_time_minutes": 60,
    "service_credits": "10%",
    "onboarding_terms": "5 days",
    "data_export_format": "mbox",
    "data_return_terms": "30 days",
    "data_deletion_terms": "30 days",
    "plans": [{"name": "Basic", "unit": "user_month", "unit_price": 4000}],
}

REVIEW_FORM = {
    "management.passed": "pass",
    "management.score": "80",
    "sanctions.passed": "pass",
    "security.passed": "pass",
    "security.score": "90",
    "stability.passed": "pass",
    "stability.score": "75",
    "support.passed": "pass",
    "support.score": "70",
}


async def test_a_submission_is_checked_assigned_reviewed_certified_and_found_by_an_agency(sessions, web, client):
    w = await world(sessions)
    provider = w.as_(w.provider_user)
    async with sessions() as session, session.begin():
        created = await listings.create_service(session, provider, schemas.ListingInput.model_validate(LISTING))
        version = await session.get(ServiceVersion, created.open_version_id)
        session.add(
            Document(
                version_id=version.id,
                kind="service_definition",
                original_name="definition.pdf",
                storage_key="journey-test-key",
                content_type="application/pdf",
                size=100,
                sha256="0" * 64,
            )
        )
        await session.flush()
        await listings.submit(session, provider, created.id, version.lock_version)
    async with sessions() as session:
        case = await session.scalar(sa.select(Case).where(Case.service_id == created.id))
    assert case is not None and case.state == "intake"
    path = f"/committee/cases/{case.id}"

    await web.login(w.operator.email)
    queue = await web.client.get("/committee/queue")
    assert "Gangnam Secure Mail" in queue.text
    assert (await web.submit(f"{path}/complete", form_page=path)).status_code == 303
    await web.logout()

    await web.login(w.chair.email)
    page = await web.client.get(path)
    assert "Gangnam Secure Mail" in page.text and "Encrypted e-mail and calendars." in page.text
    response = await web.submit(f"{path}/assign", {"member_ids": [str(m.id) for m in w.members[:3]]}, form_page=path)
    assert response.status_code == 303, response.text
    await web.logout()

    for member in w.members[:3]:
        await web.login(member.email)
        mine = await web.client.get("/committee/cases")
        assert "Gangnam Secure Mail" in mine.text
        response = await web.submit(f"{path}/review", REVIEW_FORM, form_page=path)
        assert response.status_code == 303, response.text
        await web.logout()

    async with sessions() as session:
        certificate = await session.scalar(sa.select(Certificate).where(Certificate.case_id == case.id))
    assert certificate is not None and certificate.version_id == version.id

    agency = await make_organisation(sessions, "agency", name="Gangnam District Office")
    buyer_token = await token_for(sessions, await make_user(sessions, agency))
    found = await client.get(
        "/api/search", params={"q": "Gangnam Secure"}, headers={"Authorization": f"Bearer {buyer_token}"}
    )
    assert [hit["id"] for hit in found.json()["results"]] == [created.id]
    verification = await client.get(f"/certificates/{certificate.number}")
    assert "This certificate is valid." in verification.text and "Gangnam Secure Mail" in verification.text
