"""Sessions: attendance and quorum, confirming or overriding computed decisions, the minutes as a page and CSV."""

from __future__ import annotations

import io
from csv import reader

import sqlalchemy as sa

from catalog.models import ListedService, Service, ServiceVersion
from committee.models import Certificate, Decision
from market import clock
from tests.committee.factories import case_in_review, certified_service, failing, review, world


async def _rejected_case(w):
    service_id, case_id = await case_in_review(w)
    for member in w.members[:3]:
        await review(w, member, case_id, failing("security", "No CSAP certificate for SaaS"))
    return service_id, case_id


async def _session_with(client, w, case_ids, attendees):
    created = await client.post(
        "/api/committee/sessions",
        headers=w.bearer(w.chair),
        json={"held_on": clock.today().isoformat(), "title": "November meeting", "quorum": 3},
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    for case_id in case_ids:
        added = await client.post(
            f"/api/committee/sessions/{meeting_id}/cases", headers=w.bearer(w.chair), json={"case_id": case_id}
        )
        assert added.status_code == 200, added.text
    attended = await client.post(
        f"/api/committee/sessions/{meeting_id}/attendance",
        headers=w.bearer(w.chair),
        json={"member_ids": [m.id for m in attendees]},
    )
    assert attended.status_code == 200, attended.text
    return meeting_id


async def test_decisions_cannot_be_confirmed_without_quorum(sessions, client):
    w = await world(sessions)
    _s, case_id = await certified_service(w)
    meeting_id = await _session_with(client, w, [case_id], w.members[:2])
    response = await client.post(
        f"/api/committee/sessions/{meeting_id}/confirm", headers=w.bearer(w.chair), json={"case_id": case_id}
    )
    assert response.status_code == 409 and "quorum" in response.json()["detail"]


async def test_confirming_a_rejection_returns_the_submission_to_the_provider(sessions, client):
    w = await world(sessions)
    service_id, case_id = await _rejected_case(w)
    async with sessions() as session:
        assert (await session.get(Service, service_id)).status == "submitted"  # the session may still override
    meeting_id = await _session_with(client, w, [case_id], w.members[:3])
    response = await client.post(
        f"/api/committee/sessions/{meeting_id}/confirm", headers=w.bearer(w.chair), json={"case_id": case_id}
    )
    assert response.status_code == 200 and response.json()["confirmation"] == "confirmed"
    async with sessions() as session:
        owner = await session.get(Service, service_id)
        version = await session.scalar(sa.select(ServiceVersion).where(ServiceVersion.service_id == service_id))
    assert owner.status == "draft" and version.state == "refused"


async def test_an_override_needs_a_written_reason_and_is_carried_out(sessions, client):
    w = await world(sessions)
    service_id, case_id = await _rejected_case(w)
    meeting_id = await _session_with(client, w, [case_id], w.members[:3])
    no_reason = await client.post(
        f"/api/committee/sessions/{meeting_id}/confirm",
        headers=w.bearer(w.chair),
        json={"case_id": case_id, "override": "certified"},
    )
    assert no_reason.status_code == 422
    response = await client.post(
        f"/api/committee/sessions/{meeting_id}/confirm",
        headers=w.bearer(w.chair),
        json={
            "case_id": case_id,
            "override": "certified",
            "reason": "A valid CSAP certificate was presented at the session.",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"case_id": case_id, "outcome": "certified", "confirmation": "overridden"}
    async with sessions() as session:
        decision = await session.scalar(sa.select(Decision).where(Decision.case_id == case_id))
        certificate = await session.scalar(sa.select(Certificate).where(Certificate.case_id == case_id))
        listed = await session.get(ListedService, service_id)
    assert decision.computed_outcome == "rejected" and decision.override_reason.startswith("A valid CSAP")
    assert certificate is not None and listed is not None


async def test_the_minutes_list_every_case_outcome_and_reason_and_download_as_csv(sessions, client, web):
    w = await world(sessions)
    _s1, certified_id = await certified_service(w, name="Approved Cloud")
    _s2, rejected_id = await _rejected_case(w)
    meeting_id = await _session_with(client, w, [certified_id, rejected_id], w.members[:3])
    for case_id in (certified_id, rejected_id):
        await client.post(
            f"/api/committee/sessions/{meeting_id}/confirm", headers=w.bearer(w.chair), json={"case_id": case_id}
        )
    closed = await client.post(f"/api/committee/sessions/{meeting_id}/close", headers=w.bearer(w.chair))
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    late = await client.post(
        f"/api/committee/sessions/{meeting_id}/attendance", headers=w.bearer(w.chair), json={"member_ids": []}
    )
    assert late.status_code == 409
    await web.login(w.operator.email)
    page = await web.client.get(f"/committee/sessions/{meeting_id}")
    assert page.status_code == 200 and "Approved Cloud" in page.text and "No CSAP certificate for SaaS" in page.text
    csv = await web.client.get(f"/committee/sessions/{meeting_id}/minutes.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    rows = list(reader(io.StringIO(csv.text)))
    assert rows[0][:2] == ["session", "November meeting"]
    by_case = {row[0]: row for row in rows[3:]}
    assert by_case[str(certified_id)][5:8] == ["certified", "certified", "confirmed"]
    assert by_case[str(rejected_id)][6] == "rejected" and "No CSAP certificate for SaaS" in by_case[str(rejected_id)][8]


async def test_a_session_cannot_close_with_decisions_unconfirmed(sessions, client):
    w = await world(sessions)
    _s, case_id = await certified_service(w)
    meeting_id = await _session_with(client, w, [case_id], w.members[:3])
    response = await client.post(f"/api/committee/sessions/{meeting_id}/close", headers=w.bearer(w.chair))
    assert response.status_code == 409
