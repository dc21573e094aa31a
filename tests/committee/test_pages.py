"""Every committee page renders for the roles it is for and refuses the others."""

from __future__ import annotations

from datetime import timedelta

from market import clock
from tests.committee.factories import case_in_review, certified_service, world

STAFF_PAGES = [
    "/committee/queue",
    "/committee/queue?state=review&overdue=true",
    "/committee/sessions",
    "/committee/certificates",
    "/committee/bars",
    "/committee/criteria",
]


async def test_the_chairs_pages_render_with_their_forms(sessions, web):
    w = await world(sessions)
    await certified_service(w, name="Listed Cloud")
    await case_in_review(w, name="Pending Cloud")
    await web.login(w.chair.email)
    for path in STAFF_PAGES:
        page = await web.client.get(path)
        assert page.status_code == 200, (path, page.text[:500])
        assert page.text.count("<h1>") == 1
    assert "Listed Cloud" in (await web.client.get("/committee/certificates")).text
    assert "Pending Cloud" in (await web.client.get("/committee/queue")).text
    bar = await web.submit(
        "/committee/bars",
        {
            "provider_id": str(w.provider.id),
            "starts_on": clock.today().isoformat(),
            "ends_on": (clock.today() - timedelta(days=1)).isoformat(),
            "reason": "Debarment",
        },
        form_page="/committee/bars",
    )
    assert bar.status_code == 422 and "The end date is before the start date." in bar.text
    criteria = await web.submit(
        "/committee/criteria",
        {
            "criteria": "security | Security | yes | 150",
            "threshold": "70",
            "reviewers_per_case": "3",
            "review_period_days": "30",
            "certificate_years": "3",
        },
        form_page="/committee/criteria",
    )
    assert criteria.status_code == 422 and "The weight must be between 0 and 100." in criteria.text
    meeting = await web.submit(
        "/committee/sessions",
        {"held_on": clock.today().isoformat(), "title": "", "quorum": "3"},
        form_page="/committee/sessions",
    )
    assert meeting.status_code == 422


async def test_the_secretariat_reads_the_staff_pages(sessions, web):
    w = await world(sessions)
    await certified_service(w)
    await web.login(w.operator.email)
    for path in STAFF_PAGES:
        assert (await web.client.get(path)).status_code == 200, path


async def test_providers_and_members_are_refused_the_staff_pages(sessions, web):
    w = await world(sessions)
    await web.login(w.provider_user.email)
    for path in STAFF_PAGES:
        assert (await web.client.get(path)).status_code == 403, path
    assert (await web.client.get("/committee/cases")).status_code == 403


async def test_signed_out_visitors_are_sent_to_sign_in_but_may_read_the_register(sessions, client):
    response = await client.get("/committee/queue", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert (await client.get("/api/committee/queue")).status_code == 401
    assert (await client.get("/certificates")).status_code == 200
    assert (await client.get("/api/certificates")).json()["total"] == 0
