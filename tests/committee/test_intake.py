"""Intake: a submission opens a case; the secretariat checks completeness; resubmissions return to the queue."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from catalog.models import Service, ServiceVersion
from committee import cases
from committee.models import Case, CaseEvent
from market.database import utcnow
from tests.committee.factories import submitted_service, world
from tests.helpers import audit_actions, count


async def test_a_submission_opens_a_case_waiting_for_the_completeness_check(sessions):
    w = await world(sessions)
    service_id, version_id, case_id = await submitted_service(sessions, w.provider)
    async with sessions() as session:
        case = await session.get(Case, case_id)
    assert (case.service_id, case.version_id, case.state, case.kind) == (service_id, version_id, "intake", "listing")
    assert "committee.case_opened" in await audit_actions(sessions)


async def test_the_operator_marks_a_submission_complete_through_the_api(sessions, client):
    w = await world(sessions)
    _s, _v, case_id = await submitted_service(sessions, w.provider)
    response = await client.post(f"/api/committee/cases/{case_id}/complete", headers=w.bearer(w.operator))
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "assignment"


async def test_a_committee_member_cannot_do_the_completeness_check(sessions, client):
    w = await world(sessions)
    _s, _v, case_id = await submitted_service(sessions, w.provider)
    response = await client.post(f"/api/committee/cases/{case_id}/complete", headers=w.bearer(w.chair))
    assert response.status_code == 403
    assert await count(sessions, Case, Case.id == case_id, Case.state == "intake") == 1


async def test_incomplete_returns_the_version_to_the_provider_with_the_message(sessions, web):
    w = await world(sessions)
    service_id, version_id, case_id = await submitted_service(sessions, w.provider)
    await web.login(w.operator.email)
    response = await web.submit(
        f"/committee/cases/{case_id}/incomplete",
        {"message": "Attach the security evidence."},
        form_page=f"/committee/cases/{case_id}",
    )
    assert response.status_code == 303, response.text
    async with sessions() as session:
        case = await session.get(Case, case_id)
        version = await session.get(ServiceVersion, version_id)
        owner = await session.get(Service, service_id)
    assert case.state == "incomplete" and case.message == "Attach the security evidence."
    assert version.state == "draft" and owner.status == "draft"
    await web.logout()
    await web.login(w.provider_user.email)
    page = await web.client.get("/provider/cases")
    assert "Attach the security evidence." in page.text


async def test_incomplete_without_a_message_rerenders_the_form_with_an_error(sessions, web):
    w = await world(sessions)
    _s, _v, case_id = await submitted_service(sessions, w.provider)
    await web.login(w.operator.email)
    response = await web.submit(
        f"/committee/cases/{case_id}/incomplete", {"message": "  "}, form_page=f"/committee/cases/{case_id}"
    )
    assert response.status_code == 422
    assert "Say what the provider must supply." in response.text
    assert await count(sessions, Case, Case.id == case_id, Case.state == "intake") == 1


async def test_a_resubmission_returns_the_case_to_the_queue_keeping_its_history(sessions):
    w = await world(sessions)
    service_id, version_id, case_id = await submitted_service(sessions, w.provider)
    async with sessions() as session, session.begin():
        await cases.mark_incomplete(session, w.as_(w.operator), case_id, "Add the exit plan.")
    async with sessions() as session, session.begin():  # the provider fixed the draft and submitted again
        version = await session.get(ServiceVersion, version_id)
        version.state = "submitted"
        (await session.get(Service, service_id)).status = "submitted"
        await cases.on_service_submitted(
            session, service_id=service_id, version_id=version_id, actor=w.as_(w.provider_user)
        )
    async with sessions() as session:
        case = await session.get(Case, case_id)
        actions = (
            await session.scalars(
                sa.select(CaseEvent.action).where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)
            )
        ).all()
    assert case.state == "intake" and case.resubmissions == 1
    assert actions == ["opened", "incomplete", "resubmitted"]
    assert await count(sessions, Case) == 1


async def test_a_second_submission_while_a_case_is_open_is_refused(sessions):
    w = await world(sessions)
    service_id, version_id, _case_id = await submitted_service(sessions, w.provider)
    async with sessions() as session, session.begin():
        try:
            await cases.on_service_submitted(session, service_id=service_id, version_id=version_id, actor=None)
        except Exception as exc:
            refused = exc
    assert type(refused).__name__ == "Conflict"


async def test_the_queue_sorts_by_age_and_marks_cases_past_the_review_period(sessions, client):
    w = await world(sessions)
    await submitted_service(sessions, w.provider, name="Recent", opened_at=utcnow() - timedelta(days=2))
    await submitted_service(sessions, w.provider, name="Old", opened_at=utcnow() - timedelta(days=31))
    response = await client.get("/api/committee/queue", headers=w.bearer(w.operator))
    rows = response.json()
    assert [row["service_name"] for row in rows] == ["Old", "Recent"]
    assert [row["overdue"] for row in rows] == [True, False]
    assert [row["age_days"] for row in rows] == [31, 2]
    overdue = await client.get("/api/committee/queue?overdue=true", headers=w.bearer(w.chair))
    assert [row["service_name"] for row in overdue.json()] == ["Old"]


async def test_the_review_period_is_configurable_for_cases_opened_afterwards(sessions, client):
    w = await world(sessions)
    old_id = (await submitted_service(sessions, w.provider, name="Before", opened_at=utcnow() - timedelta(days=40)))[2]
    response = await client.post(
        "/api/committee/criteria",
        headers=w.bearer(w.chair),
        json={
            "criteria": [{"code": "security", "name": "Security", "mandatory": True, "weight": 100}],
            "threshold": 70,
            "reviewers_per_case": 3,
            "review_period_days": 60,
            "certificate_years": 3,
        },
    )
    assert response.status_code == 201, response.text
    await submitted_service(sessions, w.provider, name="After", opened_at=utcnow() - timedelta(days=40))
    rows = {
        row["service_name"]: row
        for row in (await client.get("/api/committee/queue", headers=w.bearer(w.operator))).json()
    }
    assert rows["Before"]["overdue"] is True and rows["Before"]["criteria_set_version"] == 1
    assert rows["After"]["overdue"] is False and rows["After"]["criteria_set_version"] == 2
    assert old_id is not None


async def test_the_queue_page_lists_open_cases_for_the_secretariat(sessions, web):
    w = await world(sessions)
    await submitted_service(sessions, w.provider, name="Queued Service")
    await web.login(w.operator.email)
    page = await web.client.get("/committee/queue")
    assert page.status_code == 200 and "Queued Service" in page.text
