"""The decision rule, the chair's return for revision, and a case decided exactly once."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from catalog.models import ListedService, Service
from committee.models import Case, Certificate, Decision
from market import clock
from tests.committee.factories import PASSING, case_in_review, failing, review, world
from tests.helpers import count


async def _decision(sessions, case_id):
    async with sessions() as session:
        return await session.scalar(sa.select(Decision).where(Decision.case_id == case_id))


async def test_all_members_passing_certifies_and_lists_the_service_at_once(sessions):
    w = await world(sessions)
    service_id, case_id = await case_in_review(w)
    for member in w.members[:2]:
        await review(w, member, case_id)
    assert await _decision(sessions, case_id) is None  # one review still awaited
    await review(w, w.members[2], case_id)
    decision = await _decision(sessions, case_id)
    assert decision.outcome == "certified"
    assert decision.rule["name"] == "majority-passes-mandatory-and-weighted-mean" and decision.rule["threshold"] == 70
    assert len(decision.inputs["reviews"]) == 3
    assert decision.result["mean_score"] == 78.0 and decision.result["passing_mandatory"] == 3
    async with sessions() as session:
        certificate = await session.scalar(sa.select(Certificate).where(Certificate.case_id == case_id))
        listed = await session.get(ListedService, service_id)
        owner = await session.get(Service, service_id)
    assert certificate.number == f"DS-{clock.today().year}-00001"
    assert certificate.valid_to.year == certificate.valid_from.year + 3
    assert listed is not None and owner.status == "listed"


async def test_a_majority_failing_a_mandatory_criterion_rejects_with_comments_but_no_names(sessions, client):
    w = await world(sessions)
    service_id, case_id = await case_in_review(w)
    await review(w, w.members[0], case_id, failing("sanctions", "Listed as a debarred supplier until 2027"))
    await review(w, w.members[1], case_id, failing("sanctions", "Debarment record found"))
    await review(w, w.members[2], case_id)
    decision = await _decision(sessions, case_id)
    assert decision.outcome == "rejected"
    assert decision.result["failed_criteria"][0]["code"] == "sanctions"
    provider_view = await client.get(f"/api/provider/cases/{case_id}", headers=w.bearer(w.provider_user))
    body = provider_view.json()
    assert body["state"] == "rejected"
    assert (
        "Listed as a debarred supplier until 2027" in body["decision"]["reason"]
        and "Debarment record found" in body["decision"]["reason"]
    )
    for member in w.members[:3]:
        assert member.name not in provider_view.text and f'"member_id": {member.id}' not in provider_view.text
    assert "rule" not in body["decision"] and body["reviews"] == []
    assert await count(sessions, ListedService, ListedService.service_id == service_id) == 0


async def test_a_weighted_mean_below_the_threshold_rejects_even_when_mandatory_criteria_pass(sessions):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    low = {code: {**answer, "score": 50 if answer["score"] is not None else None} for code, answer in PASSING.items()}
    for member in w.members[:3]:
        await review(w, member, case_id, low)
    decision = await _decision(sessions, case_id)
    assert decision.outcome == "rejected" and decision.result["mean_score"] == 50.0
    assert "below the threshold 70" in decision.reason


async def test_the_chair_may_return_a_case_for_revision_with_a_message(sessions, client):
    w = await world(sessions)
    service_id, case_id = await case_in_review(w)
    response = await client.post(
        f"/api/committee/cases/{case_id}/return",
        headers=w.bearer(w.chair),
        json={"message": "Split the plans by region."},
    )
    assert response.status_code == 200, response.text
    late = await client.post(
        f"/api/committee/cases/{case_id}/review", headers=w.bearer(w.members[0]), json={"answers": PASSING}
    )
    assert late.status_code == 409
    async with sessions() as session:
        assert (await session.get(Case, case_id)).state == "returned"
        assert (await session.get(Service, service_id)).status == "draft"
    provider = await client.get("/api/provider/cases", headers=w.bearer(w.provider_user))
    assert provider.json()[0]["message"] == "Split the plans by region."


async def test_two_final_reviews_submitted_at_the_same_moment_produce_exactly_one_decision(sessions, client):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    await review(w, w.members[0], case_id)
    responses = await asyncio.gather(
        *[
            client.post(f"/api/committee/cases/{case_id}/review", headers=w.bearer(member), json={"answers": PASSING})
            for member in w.members[1:3]
        ]
    )
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    assert await count(sessions, Decision, Decision.case_id == case_id) == 1
    assert await count(sessions, Certificate, Certificate.case_id == case_id) == 1
    assert sorted(r.json()["case_state"] for r in responses) == ["certified", "review"]


async def test_the_decided_case_shows_the_rule_inputs_and_result_to_the_committee(sessions, web):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    for member in w.members[:3]:
        await review(w, member, case_id)
    await web.login(w.chair.email)
    page = await web.client.get(f"/committee/cases/{case_id}")
    assert page.status_code == 200
    assert "majority-passes-mandatory-and-weighted-mean" in page.text and "78.0" in page.text
    assert w.members[0].name in page.text  # after the decision the committee sees who reviewed
