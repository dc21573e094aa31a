"""Certificates: verification and register, revocation, suspension, bars, expiry with reminders, renewal."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from catalog.models import ListedService, Service
from committee import cases, certificates
from committee.models import Case, Certificate, CertificateStatus, Reminder
from committee.workflow import CERTIFICATE
from market import clock
from market.errors import Conflict
from market.models import OutboxMessage
from tests.committee.factories import (
    certified_service,
    review,
    submitted_service,
    world,
)
from tests.helpers import count


async def _certificate(sessions, case_id) -> Certificate:
    async with sessions() as session:
        return await session.scalar(sa.select(Certificate).where(Certificate.case_id == case_id))


async def _status(sessions, service_id) -> tuple[str, bool]:
    async with sessions() as session:
        owner = await session.get(Service, service_id)
        return owner.status, await session.get(ListedService, service_id) is not None


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)


async def _sweep(sessions, day: date):
    async with sessions() as session, session.begin():
        return await certificates.sweep(session, None, now=at(day))


async def test_anyone_verifies_a_certificate_by_its_number(sessions, client):
    w = await world(sessions)
    service_id, case_id = await certified_service(w, name="Verified Cloud")
    number = (await _certificate(sessions, case_id)).number
    page = await client.get(f"/certificates/{number}")
    assert page.status_code == 200 and "This certificate is valid." in page.text and "Verified Cloud" in page.text
    api = await client.get(f"/api/certificates/{number}")
    assert api.json()["status"] == "valid" and api.json()["service_id"] == service_id
    assert (await client.get("/api/certificates/DS-1999-99999")).status_code == 404
    register = await client.get("/certificates")
    assert number in register.text
    assert (await client.get("/certificates?page=2")).status_code == 404


async def test_the_certified_service_appears_in_search(sessions, client):
    w = await world(sessions)
    service_id, _case_id = await certified_service(w, name="Searchable Sovereign Cloud")
    response = await client.get("/api/search", params={"q": "Sovereign"})
    assert response.status_code == 200, response.text
    assert service_id in [item["id"] for item in response.json()["results"]]


async def test_revocation_hides_the_listing_at_once_and_its_page_answers_410(sessions, client):
    w = await world(sessions)
    service_id, case_id = await certified_service(w)
    number = (await _certificate(sessions, case_id)).number
    refused = await client.post(
        f"/api/committee/certificates/{number}/revoke", headers=w.bearer(w.members[0]), json={"reason": "x"}
    )
    assert refused.status_code == 403
    response = await client.post(
        f"/api/committee/certificates/{number}/revoke",
        headers=w.bearer(w.chair),
        json={"reason": "Falsified CSAP evidence"},
    )
    assert response.status_code == 200, response.text
    assert await _status(sessions, service_id) == ("revoked", False)
    assert (await client.get(f"/services/{service_id}")).status_code == 410
    verification = await client.get(f"/certificates/{number}")
    assert "not valid" in verification.text and "Falsified CSAP evidence" in verification.text
    again = await client.post(
        f"/api/committee/certificates/{number}/revoke", headers=w.bearer(w.chair), json={"reason": "again"}
    )
    assert again.status_code == 409


async def test_a_suspension_ends_by_itself_and_a_second_one_is_refused(sessions, client):
    w = await world(sessions)
    service_id, case_id = await certified_service(w)
    number = (await _certificate(sessions, case_id)).number
    until = clock.today() + timedelta(days=10)
    response = await client.post(
        f"/api/committee/certificates/{number}/suspend",
        headers=w.bearer(w.chair),
        json={"reason": "Outage under investigation", "until": until.isoformat()},
    )
    assert response.status_code == 200, response.text
    assert await _status(sessions, service_id) == ("suspended", False)
    second = await client.post(
        f"/api/committee/certificates/{number}/suspend",
        headers=w.bearer(w.chair),
        json={"reason": "More", "until": until.isoformat()},
    )
    assert second.status_code == 409
    await _sweep(sessions, until)
    assert await _status(sessions, service_id) == ("suspended", False)
    report = await _sweep(sessions, until + timedelta(days=1))
    assert report.resumed == 1
    assert await _status(sessions, service_id) == ("listed", True)


async def test_reminders_go_out_90_30_and_7_days_before_expiry_once_each(sessions):
    w = await world(sessions)
    _service_id, case_id = await certified_service(w)
    end = (await _certificate(sessions, case_id)).valid_to
    for days_before in (120, 90, 90, 60, 30, 29, 7, 7, 1):
        await _sweep(sessions, end - timedelta(days=days_before))
    async with sessions() as session:
        sent = sorted((await session.scalars(sa.select(Reminder.days_before))).all())
        subjects = (
            await session.scalars(
                sa.select(OutboxMessage.payload).where(OutboxMessage.idempotency_key.like("committee-certificate-%"))
            )
        ).all()
    assert sent == [7, 30, 90]
    assert len(subjects) == 3 * 2  # the provider's contact address and its user, once per lead time


async def test_a_late_sweep_sends_only_the_nearest_reminder(sessions):
    w = await world(sessions)
    _service_id, case_id = await certified_service(w)
    end = (await _certificate(sessions, case_id)).valid_to
    await _sweep(sessions, end - timedelta(days=20))
    async with sessions() as session:
        assert (await session.scalars(sa.select(Reminder.days_before))).all() == [30]


async def test_a_certificate_past_its_end_expires_and_the_listing_leaves_search(sessions):
    w = await world(sessions)
    service_id, case_id = await certified_service(w)
    end = (await _certificate(sessions, case_id)).valid_to
    await _sweep(sessions, end)
    assert (await _certificate(sessions, case_id)).status == "valid"
    report = await _sweep(sessions, end + timedelta(days=1))
    assert report.expired == 1
    assert (await _certificate(sessions, case_id)).status == "expired"
    assert await _status(sessions, service_id) == ("expired", False)


async def test_a_renewal_keeps_the_certificate_valid_until_it_is_decided(sessions, client):
    w = await world(sessions)
    service_id, case_id = await certified_service(w)
    old = await _certificate(sessions, case_id)
    response = await client.post(f"/api/provider/certificates/{old.number}/renew", headers=w.bearer(w.provider_user))
    assert response.status_code == 201, response.text
    renewal_id = response.json()["case_id"]
    await _sweep(sessions, old.valid_to + timedelta(days=5))
    assert (await _certificate(sessions, case_id)).status == "valid"
    assert await _status(sessions, service_id) == ("listed", True)
    async with sessions() as session, session.begin():
        await cases.mark_complete(session, w.as_(w.operator), renewal_id)
        await cases.assign(session, w.as_(w.chair), renewal_id, [m.id for m in w.members[:3]])
    for member in w.members[:3]:
        await review(w, member, renewal_id)
    renewed = await _certificate(sessions, renewal_id)
    assert renewed.status == "valid" and renewed.number != old.number
    assert (await _certificate(sessions, case_id)).status == "renewed"
    assert await _status(sessions, service_id) == ("listed", True)


async def test_another_provider_cannot_renew_a_certificate(sessions, client):
    w = await world(sessions)
    _service_id, case_id = await certified_service(w)
    from tests.committee.factories import make_user, token_for
    from tests.helpers import make_organisation

    other = await make_organisation(sessions, "provider", name="Rival Cloud")
    token = await token_for(sessions, await make_user(sessions, other))
    number = (await _certificate(sessions, case_id)).number
    response = await client.post(
        f"/api/provider/certificates/{number}/renew", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 404
    assert await count(sessions, Case, Case.kind == "renewal") == 0


async def test_a_barred_provider_is_suspended_cannot_submit_and_returns_when_the_bar_ends(sessions, client):
    w = await world(sessions)
    service_id, _case_id = await certified_service(w)
    ends = clock.today() + timedelta(days=30)
    response = await client.post(
        "/api/committee/bars",
        headers=w.bearer(w.chair),
        json={
            "provider_id": w.provider.id,
            "starts_on": clock.today().isoformat(),
            "ends_on": ends.isoformat(),
            "reason": "Debarred by the PPS",
        },
    )
    assert response.status_code == 201, response.text
    assert await _status(sessions, service_id) == ("suspended", False)
    try:
        await submitted_service(sessions, w.provider)
        raise AssertionError("a barred provider submitted")
    except Conflict as exc:
        assert "barred" in exc.detail
    await _sweep(sessions, ends + timedelta(days=1))
    assert await _status(sessions, service_id) == ("listed", True)


async def test_a_listing_whose_csap_validity_has_passed_is_suspended_until_a_valid_one_is_recorded(sessions):
    w = await world(sessions)
    lapse = clock.today() + timedelta(days=100)
    csap = [
        {
            "scheme": "CSAP",
            "csap_type": "SaaS-standard",
            "grade": "low",
            "valid_from": "2024-01-01",
            "valid_to": lapse.isoformat(),
        }
    ]
    service_id, _case_id = await certified_service(w, certifications=csap)
    await _sweep(sessions, lapse)
    assert await _status(sessions, service_id) == ("listed", True)
    await _sweep(sessions, lapse + timedelta(days=1))
    status, in_search = await _status(sessions, service_id)
    assert (status, in_search) == ("suspended", False)
    async with sessions() as session:
        assert "CSAP" in (await session.get(Service, service_id)).status_reason


async def test_certificates_by_expiry_are_for_the_chair_and_the_secretariat(sessions, client):
    w = await world(sessions)
    await certified_service(w, name="First")
    assert (await client.get("/api/committee/certificates", headers=w.bearer(w.operator))).json()[0][
        "service_name"
    ] == "First"
    assert (await client.get("/api/committee/certificates", headers=w.bearer(w.provider_user))).status_code == 403


async def test_the_provider_sees_expiring_certificates_on_its_pages(sessions, web):
    w = await world(sessions)
    _service_id, case_id = await certified_service(w)
    async with sessions() as session, session.begin():
        certificate = await session.scalar(sa.select(Certificate).where(Certificate.case_id == case_id))
        certificate.valid_to = clock.today() + timedelta(days=20)
    await web.login(w.provider_user.email)
    page = await web.client.get("/provider/certificates")
    assert page.status_code == 200 and "expires on" in page.text and certificate.number in page.text
    assert CERTIFICATE.label(CertificateStatus.valid) in page.text  # the status, by its name


async def test_the_service_page_shows_its_certificate_with_validity(sessions, client):
    w = await world(sessions)
    service_id, case_id = await certified_service(w, name="Shown Certified Cloud")
    certificate = await _certificate(sessions, case_id)
    page = await client.get(f"/services/{service_id}")
    assert page.status_code == 200
    assert f'href="/certificates/{certificate.number}"' in page.text
    assert certificate.valid_to.isoformat() in page.text and certificate.valid_from.isoformat() in page.text


async def test_search_results_mark_a_valid_certificate_on_the_page_and_in_the_api(sessions, client):
    w = await world(sessions)
    marked_id, marked_case = await certified_service(w)
    lapsed_id, lapsed_case = await certified_service(w)
    certificate = await _certificate(sessions, marked_case)
    async with sessions() as session, session.begin():  # past its end, before the daily sweep has delisted it
        await session.execute(
            sa.update(Certificate)
            .where(Certificate.case_id == lapsed_case)
            .values(valid_to=clock.today() - timedelta(days=1))
        )
    assert (await _status(sessions, lapsed_id))[1]

    answer = (await client.get("/api/search", params={"q": "Cloud Service"})).json()
    marks = {hit["id"]: hit["marks"] for hit in answer["results"]}
    assert marks[marked_id] == [
        {
            "kind": "certificate",
            "url": f"/certificates/{certificate.number}",
            "number": certificate.number,
            "valid_to": certificate.valid_to.isoformat(),
        }
    ]
    assert marks[lapsed_id] == []
    page = (await client.get("/services", params={"q": "Cloud Service"})).text
    assert page.count('class="mark mark-certificate"') == 1
    assert (
        f'<a href="/certificates/{certificate.number}">Certified: {certificate.number}, valid to {certificate.valid_to.isoformat()}</a>'
        in page
    )
