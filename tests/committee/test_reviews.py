"""Independent reviews against a versioned criteria set; final once submitted; withdrawal recorded."""

from __future__ import annotations

from committee.models import Case, Review
from tests.committee.factories import PASSING, case_in_review, failing, review, world
from tests.helpers import count


async def test_a_fail_without_a_comment_and_a_score_out_of_range_are_refused_with_field_messages(sessions, client):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    answers = {
        **PASSING,
        "security": {"passed": False, "score": 40, "comment": ""},
        "support": {"passed": True, "score": 120, "comment": ""},
    }
    response = await client.post(
        f"/api/committee/cases/{case_id}/review", headers=w.bearer(w.members[0]), json={"answers": answers}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors["security.comment"] == "Explain why this criterion fails."
    assert errors["support.score"] == "Enter a whole number from 0 to 100."
    assert await count(sessions, Review) == 0


async def test_every_criterion_must_be_answered(sessions, client):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    response = await client.post(
        f"/api/committee/cases/{case_id}/review",
        headers=w.bearer(w.members[0]),
        json={"answers": {"management": PASSING["management"]}},
    )
    assert response.status_code == 422
    assert {"security.passed", "security.score", "sanctions.passed"} <= set(response.json()["errors"])


async def test_no_route_shows_another_members_review_before_ones_own_is_submitted(sessions, client, web):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    secret = "Credit rating BB- is below what we accept"
    await review(w, w.members[0], case_id, failing("management", secret, management=30))
    api = await client.get(f"/api/committee/cases/{case_id}", headers=w.bearer(w.members[1]))
    assert api.status_code == 200
    assert api.json()["reviews"] == [] and api.json()["reviews_visible"] is False
    assert secret not in api.text
    mine = await client.get("/api/committee/reviews", headers=w.bearer(w.members[1]))
    assert secret not in mine.text
    chair_view = await client.get(f"/api/committee/cases/{case_id}", headers=w.bearer(w.chair))
    assert secret not in chair_view.text  # the chair is not assigned: contents only after the decision
    await web.login(w.members[1].email)
    page = await web.client.get(f"/committee/cases/{case_id}")
    assert page.status_code == 200 and secret not in page.text
    await review(w, w.members[1], case_id)
    after = await client.get(f"/api/committee/cases/{case_id}", headers=w.bearer(w.members[1]))
    assert secret in after.text and len(after.json()["reviews"]) == 2
    page = await web.client.get(f"/committee/cases/{case_id}")
    assert secret in page.text


async def test_a_submitted_review_is_final(sessions, client):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    first = await client.post(
        f"/api/committee/cases/{case_id}/review", headers=w.bearer(w.members[0]), json={"answers": PASSING}
    )
    assert first.status_code == 201, first.text
    again = await client.post(
        f"/api/committee/cases/{case_id}/review",
        headers=w.bearer(w.members[0]),
        json={"answers": failing("security", "No CSAP")},
    )
    assert again.status_code == 409
    assert await count(sessions, Review) == 1


async def test_a_review_can_be_withdrawn_before_the_decision_and_the_withdrawal_is_recorded(sessions, client):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    await review(w, w.members[0], case_id)
    no_reason = await client.post(
        f"/api/committee/cases/{case_id}/withdraw", headers=w.bearer(w.members[0]), json={"reason": ""}
    )
    assert no_reason.status_code == 422
    response = await client.post(
        f"/api/committee/cases/{case_id}/withdraw", headers=w.bearer(w.members[0]), json={"reason": "I misread the SLA"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "withdrawn" and response.json()["withdrawal_reason"] == "I misread the SLA"
    again = await client.post(
        f"/api/committee/cases/{case_id}/review", headers=w.bearer(w.members[0]), json={"answers": PASSING}
    )
    assert again.status_code == 201
    assert await count(sessions, Review) == 2 and await count(sessions, Review, Review.status == "withdrawn") == 1


async def test_a_review_cannot_be_withdrawn_after_the_decision(sessions, client):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    for member in w.members[:3]:
        await review(w, member, case_id)
    response = await client.post(
        f"/api/committee/cases/{case_id}/withdraw", headers=w.bearer(w.members[0]), json={"reason": "Second thoughts"}
    )
    assert response.status_code == 409
    assert await count(sessions, Review, Review.status == "withdrawn") == 0


async def test_the_review_form_on_the_page_submits_and_rerenders_errors(sessions, web):
    w = await world(sessions)
    _s, case_id = await case_in_review(w)
    await web.login(w.members[0].email)
    path = f"/committee/cases/{case_id}"
    form = {
        "management.passed": "pass",
        "management.score": "80",
        "sanctions.passed": "pass",
        "security.passed": "fail",
        "security.score": "50",
        "security.comment": "",
        "stability.passed": "pass",
        "stability.score": "70",
        "support.passed": "pass",
        "support.score": "70",
    }
    bad = await web.submit(f"{path}/review", form, form_page=path)
    assert bad.status_code == 422 and "Explain why this criterion fails." in bad.text
    good = await web.submit(f"{path}/review", {**form, "security.comment": "CSAP certificate expired"}, form_page=path)
    assert good.status_code == 303, good.text
    page = await web.client.get("/committee/reviews")
    assert f"/committee/cases/{case_id}" in page.text


async def test_a_new_criteria_set_applies_only_to_cases_opened_afterwards(sessions, client):
    w = await world(sessions)
    _s, before = await case_in_review(w)
    response = await client.post(
        "/api/committee/criteria",
        headers=w.bearer(w.chair),
        json={
            "criteria": [{"code": "security", "name": "Security", "mandatory": True, "weight": 100}],
            "threshold": 80,
            "reviewers_per_case": 1,
            "review_period_days": 30,
            "certificate_years": 2,
        },
    )
    assert response.status_code == 201 and response.json()["version"] == 2
    old = await client.post(
        f"/api/committee/cases/{before}/review",
        headers=w.bearer(w.members[0]),
        json={"answers": {"security": {"passed": True, "score": 90}}},
    )
    assert old.status_code == 422  # the old case still needs the five default criteria
    _s2, after = await case_in_review(w, members=[w.members[0]])
    new = await client.post(
        f"/api/committee/cases/{after}/review",
        headers=w.bearer(w.members[0]),
        json={"answers": {"security": {"passed": True, "score": 90}}},
    )
    assert new.status_code == 201, new.text
    assert new.json()["case_state"] == "certified"  # one member reviews under version 2
    async with sessions() as session:
        assert (await session.get(Case, before)).criteria_set_id != (await session.get(Case, after)).criteria_set_id


async def test_a_member_cannot_publish_criteria(sessions, client):
    w = await world(sessions)
    response = await client.post(
        "/api/committee/criteria",
        headers=w.bearer(w.members[0]),
        json={
            "criteria": [{"code": "x", "name": "X", "weight": 10}],
            "threshold": 70,
            "reviewers_per_case": 3,
            "review_period_days": 30,
            "certificate_years": 3,
        },
    )
    assert response.status_code == 403
