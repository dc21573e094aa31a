"""Members, terms and conflicts of interest; assignment by the chair or automatically."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa

from committee import cases, members
from committee.models import Assignment, Review, Tie
from market import clock
from tests.committee.factories import (
    PASSING,
    appoint,
    assigned_ids,
    case_in_review,
    make_user,
    submitted_service,
    token_for,
    world,
)
from tests.helpers import count


async def _complete_case(w, **kwargs):
    _s, _v, case_id = await submitted_service(w.sessions, w.provider, **kwargs)
    async with w.sessions() as session, session.begin():
        await cases.mark_complete(session, w.as_(w.operator), case_id)
    return case_id


async def _declare_tie(w, member, provider_id=None):
    async with w.sessions() as session, session.begin():
        await members.declare_tie(
            session,
            w.as_(member),
            provider_id=provider_id or w.provider.id,
            kind="employment",
            starts_on=clock.today() - timedelta(days=400),
        )


async def test_the_chair_cannot_assign_a_member_with_a_tie_to_the_provider_through_the_api(sessions, client):
    w = await world(sessions)
    case_id = await _complete_case(w)
    await _declare_tie(w, w.members[0])
    response = await client.post(
        f"/api/committee/cases/{case_id}/assign", headers=w.bearer(w.chair), json={"member_ids": [w.members[0].id]}
    )
    assert response.status_code == 409
    assert "tie" in response.json()["detail"]
    assert await count(sessions, Assignment) == 0


async def test_an_id_beyond_the_databases_integers_is_invalid_input_not_a_server_error(sessions, client):
    w = await world(sessions)
    tie = {"provider_id": 2**74, "kind": "employment", "starts_on": "2026-01-01"}
    declared = await client.post("/api/committee/ties", headers=w.bearer(w.members[0]), json=tie)
    assert declared.status_code == 422 and "provider_id" in declared.json()["errors"]
    assigned = await client.post(
        "/api/committee/cases/1/assign", headers=w.bearer(w.chair), json={"member_ids": [-(2**31) - 1]}
    )
    assert assigned.status_code == 422 and "member_ids.0" in assigned.json()["errors"]
    assert await count(sessions, Tie) == 0


async def test_the_chair_cannot_assign_a_member_with_a_tie_through_the_page(sessions, web):
    w = await world(sessions)
    case_id = await _complete_case(w)
    await _declare_tie(w, w.members[0])
    await web.login(w.chair.email)
    page = await web.client.get(f"/committee/cases/{case_id}")
    assert w.members[1].name in page.text and f'value="{w.members[0].id}"' not in page.text  # not offered
    response = await web.submit(
        f"/committee/cases/{case_id}/assign",
        {"member_ids": str(w.members[0].id)},
        form_page=f"/committee/cases/{case_id}",
    )
    assert response.status_code == 409
    assert "declared a tie" in response.text
    assert await count(sessions, Assignment) == 0


async def test_a_member_who_declares_a_tie_after_assignment_can_neither_see_nor_review_the_case(sessions, client):
    w = await world(sessions)
    _service_id, case_id = await case_in_review(w)
    await _declare_tie(w, w.members[0])
    seen = await client.get(f"/api/committee/cases/{case_id}", headers=w.bearer(w.members[0]))
    assert seen.status_code == 403 and "tie" in seen.json()["detail"]
    reviewed = await client.post(
        f"/api/committee/cases/{case_id}/review", headers=w.bearer(w.members[0]), json={"answers": PASSING}
    )
    assert reviewed.status_code == 403
    assert await count(sessions, Review) == 0


async def test_a_conflicted_member_is_refused_the_case_page_and_the_review_form(sessions, web):
    w = await world(sessions)
    _service_id, case_id = await case_in_review(w)
    await _declare_tie(w, w.members[1])
    await web.login(w.members[1].email)
    page = await web.client.get(f"/committee/cases/{case_id}")
    assert page.status_code == 403 and "declared a tie" in page.text
    response = await web.submit(
        f"/committee/cases/{case_id}/review", {"management.passed": "pass"}, form_page="/committee/ties"
    )
    assert response.status_code == 403
    assert await count(sessions, Review) == 0


async def test_a_tie_that_ended_long_ago_no_longer_conflicts(sessions):
    w = await world(sessions)
    case_id = await _complete_case(w)
    async with sessions() as session, session.begin():
        await members.declare_tie(
            session,
            w.as_(w.members[0]),
            provider_id=w.provider.id,
            kind="advisory",
            starts_on=date(2010, 1, 1),
            ends_on=date(2015, 1, 1),
        )
    async with sessions() as session, session.begin():
        await cases.assign(session, w.as_(w.chair), case_id, [w.members[0].id])
    assert await assigned_ids(sessions, case_id) == [w.members[0].id]


async def test_automatic_assignment_takes_eligible_members_with_the_fewest_open_cases(sessions, client):
    w = await world(sessions, members=5)
    busy_case = await _complete_case(w)
    async with sessions() as session, session.begin():
        await cases.assign(session, w.as_(w.chair), busy_case, [w.members[0].id, w.members[1].id])
    await _declare_tie(w, w.members[2])
    case_id = await _complete_case(w)
    response = await client.post(f"/api/committee/cases/{case_id}/auto-assign", headers=w.bearer(w.chair))
    assert response.status_code == 200, response.text
    chosen = set(response.json()["assigned"])
    assert len(chosen) == 3
    assert w.members[2].id not in chosen  # conflicted
    assert {w.members[3].id, w.members[4].id, w.chair.id} == chosen  # none open, before the two busy members


async def test_a_case_takes_three_members_by_default(sessions, client):
    w = await world(sessions)
    case_id = await _complete_case(w)
    response = await client.post(
        f"/api/committee/cases/{case_id}/assign",
        headers=w.bearer(w.chair),
        json={"member_ids": [m.id for m in w.members]},
    )
    assert response.status_code == 409
    assert "3 members" in response.json()["detail"]


async def test_only_the_chair_assigns(sessions, client):
    w = await world(sessions)
    case_id = await _complete_case(w)
    response = await client.post(
        f"/api/committee/cases/{case_id}/assign", headers=w.bearer(w.members[0]), json={"member_ids": [w.members[1].id]}
    )
    assert response.status_code == 403


async def test_an_expired_term_ends_access_to_cases(sessions, client):
    w = await world(sessions)
    _service_id, case_id = await case_in_review(w)
    former = await make_user(sessions, w.committee_org, role="member", name="Former Member")
    await appoint(
        sessions, former, starts_on=clock.today() - timedelta(days=800), ends_on=clock.today() - timedelta(days=1)
    )
    token = await token_for(sessions, former)
    async with sessions() as session, session.begin():  # assigned while the term ran
        session.add(Assignment(case_id=case_id, member_id=former.id))
    response = await client.get(f"/api/committee/cases/{case_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403 and "term" in response.json()["detail"]
    assert (await client.get("/api/committee/cases", headers={"Authorization": f"Bearer {token}"})).status_code == 403


async def test_an_unassigned_member_cannot_open_a_case(sessions, client):
    w = await world(sessions)
    _service_id, case_id = await case_in_review(w, members=w.members[:3])
    response = await client.get(f"/api/committee/cases/{case_id}", headers=w.bearer(w.members[3]))
    assert response.status_code == 403


async def test_another_provider_cannot_see_the_case(sessions, client):
    w = await world(sessions)
    _s, _v, case_id = await submitted_service(sessions, w.provider)
    from tests.helpers import make_organisation

    other = await make_organisation(sessions, "provider", name="Other Provider")
    other_user = await make_user(sessions, other)
    token = await token_for(sessions, other_user)
    response = await client.get(f"/api/provider/cases/{case_id}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404
    own = await client.get(f"/api/provider/cases/{case_id}", headers=w.bearer(w.provider_user))
    assert own.status_code == 200 and own.json()["reviews"] == []


async def test_members_declare_ties_with_kind_and_dates_through_the_page(sessions, web):
    w = await world(sessions)
    await web.login(w.members[0].email)
    response = await web.submit(
        "/committee/ties",
        {"provider_id": str(w.provider.id), "kind": "shareholding", "starts_on": "2024-03-01", "ends_on": ""},
        form_page="/committee/ties",
    )
    assert response.status_code == 303, response.text
    async with sessions() as session:
        tie = await session.scalar(sa.select(Tie))
    assert (tie.member_id, tie.kind, tie.starts_on, tie.ends_on) == (
        w.members[0].id,
        "shareholding",
        date(2024, 3, 1),
        None,
    )
    bad = await web.submit(
        "/committee/ties",
        {"provider_id": str(w.provider.id), "kind": "friendship", "starts_on": "soon"},
        form_page="/committee/ties",
    )
    assert bad.status_code == 422
    assert "Choose one of the offered values." in bad.text and "Enter a date as YYYY-MM-DD." in bad.text
    assert await count(sessions, Tie) == 1


async def test_the_catalogue_shows_a_submission_to_members_in_office_without_a_tie_and_to_the_secretariat(
    sessions, client
):
    w = await world(sessions)
    service_id, _version_id, _case_id = await submitted_service(sessions, w.provider)
    await _declare_tie(w, w.members[0])
    former = await make_user(sessions, w.committee_org, name="Former Member")
    await appoint(
        sessions, former, starts_on=clock.today() - timedelta(days=800), ends_on=clock.today() - timedelta(days=1)
    )
    w.tokens[former.id] = await token_for(sessions, former)

    def seen_by(user):
        return client.get(f"/api/services/{service_id}", headers=w.bearer(user))

    assert (await seen_by(w.members[1])).status_code == 200
    assert (await seen_by(w.operator)).status_code == 200
    tied, ended = await seen_by(w.members[0]), await seen_by(former)
    assert tied.status_code == 404 and ended.status_code == 404, (tied.text, ended.text)
