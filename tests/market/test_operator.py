"""The secretariat's pages and API: organisations, accounts, agency domains, committee appointments."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from market import auth, clock
from market.auth import TOKEN_PREFIX
from market.models import (
    AgencyDomain,
    ApiToken,
    Appointment,
    AuditEvent,
    Invitation,
    LoginSession,
    Organisation,
    OutboxMessage,
    User,
)
from market.security import new_token, token_hash
from tests.helpers import audit_actions, count, make_organisation, make_user


def today(settings: Any) -> date:
    return clock.today(settings.zone)


async def bearer(sessions: Any, user: User) -> dict[str, str]:
    """An API token for `user`, written straight into the table (token issuing is the account pages' job)."""
    raw = new_token(TOKEN_PREFIX)
    async with sessions() as session, session.begin():
        session.add(ApiToken(user_id=user.id, name="test", token_hash=token_hash(raw), prefix=raw[:12]))
    return {"Authorization": f"Bearer {raw}"}


async def signed_in_elsewhere(sessions: Any, user: User) -> None:
    """A login session of `user` in another browser."""
    async with sessions() as session, session.begin():
        await auth.start_session(session, await session.get(User, user.id), "198.51.100.7", "other browser")


async def audit_count(sessions: Any) -> int:
    return await count(sessions, AuditEvent)


@pytest.fixture
async def operator(web: Any) -> User:
    return await web.login_as("operator")


@pytest.fixture
async def operator_api(web: Any, operator: User) -> dict[str, str]:
    return await bearer(web.sessions, operator)


# --- access ---------------------------------------------------------------------------------------


def operator_routes(app: Any) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if not route.path.startswith(("/operator", "/api/operator")):
            continue
        for method in sorted(getattr(route, "methods", set()) - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


def fill(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{(\w+):\w+\}", lambda match: str(ids[match.group(1)]), path)


async def arranged_ids(sessions: Any) -> dict[str, int]:
    agency = await make_organisation(sessions, "agency")
    committee = await make_organisation(sessions, "committee")
    member = await make_user(sessions, committee)
    async with sessions() as session, session.begin():
        domain = AgencyDomain(organisation_id=agency.id, domain="seoul.go.kr")
        term = Appointment(user_id=member.id, starts_on=date(2020, 1, 1), ends_on=date(2099, 1, 1))
        session.add_all([domain, term])
        await session.flush()
        return {"organisation_id": agency.id, "user_id": member.id, "domain_id": domain.id, "appointment_id": term.id}


def test_the_operator_area_has_the_routes_the_brief_lists(app: Any) -> None:
    routes = set(operator_routes(app))
    for expected in [
        ("GET", "/operator/organisations"),
        ("POST", "/operator/organisations"),
        ("GET", "/operator/domains"),
        ("GET", "/operator/appointments"),
        ("GET", "/operator/audit"),
        ("GET", "/operator/audit.csv"),
        ("GET", "/api/operator/organisations"),
        ("POST", "/api/operator/organisations"),
        ("POST", "/api/operator/organisations/{organisation_id:int}/deactivate"),
        ("POST", "/api/operator/users/{user_id:int}/disable"),
        ("DELETE", "/api/operator/domains/{domain_id:int}"),
        ("GET", "/api/operator/appointments"),
        ("POST", "/api/operator/appointments"),
        ("GET", "/api/operator/audit-events"),
    ]:
        assert expected in routes


@pytest.mark.parametrize("kind", ["agency", "provider", "committee"])
async def test_every_operator_page_and_api_route_answers_403_to_other_kinds(web: Any, app: Any, kind: str) -> None:
    ids = await arranged_ids(web.sessions)
    user = await web.login_as(kind)
    token = await bearer(web.sessions, user)
    csrf = await web.csrf("/")
    before = await audit_count(web.sessions)
    routes = operator_routes(app)
    assert len(routes) >= 30
    for method, path in routes:
        url = fill(path, ids)
        if path.startswith("/api"):
            response = await web.client.request(method, url, headers=token, json={} if method == "POST" else None)
        elif method == "POST":
            response = await web.client.post(url, data={"_csrf_token": csrf}, follow_redirects=False)
        else:
            response = await web.client.request(method, url, follow_redirects=False)
        assert response.status_code == 403, (method, url, response.status_code)
    assert await audit_count(web.sessions) == before
    assert await count(web.sessions, Organisation, Organisation.active.is_(False)) == 0
    assert await count(web.sessions, AgencyDomain) == 1


async def test_operator_routes_send_visitors_to_sign_in_and_api_callers_get_401(web: Any, app: Any) -> None:
    ids = await arranged_ids(web.sessions)
    for method, path in operator_routes(app):
        if method != "GET":
            continue
        response = await web.client.get(fill(path, ids), follow_redirects=False)
        if path.startswith("/api"):
            assert response.status_code == 401, path
        else:
            assert response.status_code == 303 and response.headers["location"].startswith("/login"), path


# --- organisations --------------------------------------------------------------------------------


async def test_organisation_list_filters_by_kind_status_and_name(web: Any, operator: User) -> None:
    await make_organisation(web.sessions, "agency", name="Busan Metropolitan City")
    closed = await make_organisation(web.sessions, "agency", name="Closed Agency")
    await make_organisation(web.sessions, "provider", name="Busan Cloud Ltd")
    async with web.sessions() as session, session.begin():
        (await session.get(Organisation, closed.id)).active = False

    agencies = await web.client.get("/operator/organisations?kind=agency")
    assert "Busan Metropolitan City" in agencies.text and "Closed Agency" in agencies.text
    assert "Busan Cloud Ltd" not in agencies.text

    inactive = await web.client.get("/operator/organisations?active=false")
    assert "Closed Agency" in inactive.text and "Busan Metropolitan City" not in inactive.text

    named = await web.client.get("/operator/organisations?q=busan")
    assert "Busan Metropolitan City" in named.text and "Busan Cloud Ltd" in named.text
    assert "Closed Agency" not in named.text


async def test_organisation_list_sorts_by_name_or_newest(
    web: Any, operator: User, operator_api: dict[str, str]
) -> None:
    await make_organisation(web.sessions, "committee", name="Alpha Committee")
    await make_organisation(web.sessions, "committee", name="Zulu Committee")
    by_name = (await web.client.get("/api/operator/organisations?kind=committee", headers=operator_api)).json()
    assert [item["name"] for item in by_name["items"]] == ["Alpha Committee", "Zulu Committee"]
    newest = (
        await web.client.get("/api/operator/organisations?kind=committee&sort=newest", headers=operator_api)
    ).json()
    assert [item["name"] for item in newest["items"]] == ["Zulu Committee", "Alpha Committee"]


async def test_organisation_list_has_20_a_page_and_404_past_the_end(web: Any, operator: User) -> None:
    for n in range(25):
        await make_organisation(web.sessions, "committee", name=f"Committee {n:02d}")
    first = await web.client.get("/operator/organisations?kind=committee")
    assert len(re.findall(r'<th scope="row"><a href="/operator/organisations/\d+">', first.text)) == 20
    assert "Committee 00" in first.text and "Committee 20" not in first.text
    assert 'href="/operator/organisations?kind=committee&amp;page=2"' in first.text
    second = await web.client.get("/operator/organisations?kind=committee&page=2")
    assert "Committee 20" in second.text and "Committee 24" in second.text and "Committee 19" not in second.text
    assert (await web.client.get("/operator/organisations?kind=committee&page=3")).status_code == 404


async def test_organisation_list_shows_an_empty_state(web: Any, operator: User) -> None:
    response = await web.client.get("/operator/organisations?q=nothing-like-this")
    assert response.status_code == 200
    assert "No organisations match these filters." in response.text


async def test_organisation_list_rejects_an_unknown_filter_value_naming_it(web: Any, operator: User) -> None:
    response = await web.client.get("/operator/organisations?kind=bakery&sort=price")
    assert response.status_code == 422
    assert 'href="#field-kind"' in response.text and 'href="#field-sort"' in response.text


async def test_operator_creates_an_agency_with_its_institution_code(web: Any, operator: User) -> None:
    response = await web.submit(
        "/operator/organisations",
        {"kind": "agency", "name": "Daegu Metropolitan City", "registration_number": "3470000"},
        form_page="/operator/organisations/new",
    )
    assert response.status_code == 303
    async with web.sessions() as session:
        agency = await session.scalar(sa.select(Organisation).where(Organisation.name == "Daegu Metropolitan City"))
    assert agency.kind == "agency" and agency.registration_number == "3470000" and agency.active
    assert response.headers["location"] == f"/operator/organisations/{agency.id}"
    assert (await audit_actions(web.sessions))[-1] == "organisation.create"
    page = await web.client.get(response.headers["location"])
    assert "Daegu Metropolitan City was created." in page.text and "3470000" in page.text


async def test_operator_creates_a_committee_without_a_registration_number(web: Any, operator: User) -> None:
    response = await web.submit(
        "/operator/organisations",
        {"kind": "committee", "name": "Certification Committee", "registration_number": "999"},
        form_page="/operator/organisations/new",
    )
    assert response.status_code == 303
    async with web.sessions() as session:
        committee = await session.scalar(sa.select(Organisation).where(Organisation.name == "Certification Committee"))
    assert committee.kind == "committee" and committee.registration_number is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"kind": "agency", "name": "No Code Agency", "registration_number": ""}, "registration_number"),
        ({"kind": "agency", "name": "Bad Code Agency", "registration_number": "12a4567"}, "registration_number"),
        ({"kind": "provider", "name": "Self-registering Provider"}, "kind"),
        ({"kind": "committee", "name": "   "}, "name"),
        ({"kind": "committee", "name": "Contact", "contact_email": "not-an-address"}, "contact_email"),
    ],
)
async def test_bad_organisation_input_is_422_naming_the_field_and_writes_nothing(
    web: Any, operator: User, form: dict[str, str], field: str
) -> None:
    organisations, events = await count(web.sessions, Organisation), await audit_count(web.sessions)
    response = await web.submit("/operator/organisations", form, form_page="/operator/organisations/new")
    assert response.status_code == 422
    assert f'href="#field-{field}"' in response.text
    assert 'id="field-name"' in response.text  # the form comes back
    assert await count(web.sessions, Organisation) == organisations
    assert await audit_count(web.sessions) == events


async def test_an_institution_code_registered_already_is_refused(web: Any, operator: User) -> None:
    await make_organisation(web.sessions, "agency", registration_number="6110000")
    response = await web.submit(
        "/operator/organisations",
        {"kind": "agency", "name": "Copy", "registration_number": "6110000"},
        form_page="/operator/organisations/new",
    )
    assert response.status_code == 409
    assert "Already registered." in response.text
    assert await count(web.sessions, Organisation, Organisation.name == "Copy") == 0


async def test_organisation_page_lists_its_users_and_domains(web: Any, operator: User) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Gwangju City")
    await make_user(web.sessions, agency, name="Buyer Kim", email="kim@gwangju.go.kr")
    async with web.sessions() as session, session.begin():
        session.add(AgencyDomain(organisation_id=agency.id, domain="gwangju.go.kr"))
    page = await web.client.get(f"/operator/organisations/{agency.id}")
    assert page.status_code == 200
    assert "Buyer Kim" in page.text and "kim@gwangju.go.kr" in page.text and "gwangju.go.kr</li>" in page.text
    assert (await web.client.get("/operator/organisations/999999")).status_code == 404


async def test_deactivating_asks_for_confirmation_first(web: Any, operator: User) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Ulsan City")
    confirm = await web.client.get(f"/operator/organisations/{agency.id}/deactivate")
    assert confirm.status_code == 200
    assert "Deactivate Ulsan City?" in confirm.text and "signed out" in confirm.text
    assert f'action="/operator/organisations/{agency.id}/deactivate"' in confirm.text
    async with web.sessions() as session:
        assert (await session.get(Organisation, agency.id)).active  # the GET changed nothing


async def test_deactivating_an_organisation_signs_its_users_out_and_blocks_sign_in(web: Any, operator: User) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Sejong City")
    buyer = await make_user(web.sessions, agency)
    await signed_in_elsewhere(web.sessions, buyer)
    token = await bearer(web.sessions, buyer)
    response = await web.submit(
        f"/operator/organisations/{agency.id}/deactivate", form_page=f"/operator/organisations/{agency.id}/deactivate"
    )
    assert response.status_code == 303
    assert await count(web.sessions, LoginSession, LoginSession.user_id == buyer.id) == 0
    async with web.sessions() as session:
        assert not (await session.get(Organisation, agency.id)).active
        event = await session.scalar(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert (
        event.action == "organisation.deactivate"
        and event.object_id == str(agency.id)
        and event.actor_id == operator.id
    )
    assert '"sessions_ended": 1' in event.summary
    assert (await web.client.get("/api/operator/organisations", headers=token)).status_code == 401  # token dead too
    await web.logout()
    assert (await web.login(buyer.email)).status_code == 401


async def test_deactivating_twice_is_a_conflict(web: Any, operator: User, operator_api: dict[str, str]) -> None:
    agency = await make_organisation(web.sessions, "agency")
    assert (
        await web.client.post(f"/api/operator/organisations/{agency.id}/deactivate", headers=operator_api)
    ).status_code == 200
    events = await audit_count(web.sessions)
    again = await web.client.post(f"/api/operator/organisations/{agency.id}/deactivate", headers=operator_api)
    assert again.status_code == 409
    assert await audit_count(web.sessions) == events


async def test_operator_cannot_deactivate_their_own_organisation(
    web: Any, operator: User, operator_api: dict[str, str]
) -> None:
    response = await web.client.post(
        f"/api/operator/organisations/{operator.organisation_id}/deactivate", headers=operator_api
    )
    assert response.status_code == 409
    async with web.sessions() as session:
        assert (await session.get(Organisation, operator.organisation_id)).active


async def test_activating_lets_the_users_sign_in_again(web: Any, operator: User) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Jeju Province")
    buyer = await make_user(web.sessions, agency)
    async with web.sessions() as session, session.begin():
        (await session.get(Organisation, agency.id)).active = False
    confirm = await web.client.get(f"/operator/organisations/{agency.id}/activate")
    assert "Activate Jeju Province?" in confirm.text
    response = await web.submit(
        f"/operator/organisations/{agency.id}/activate", form_page=f"/operator/organisations/{agency.id}/activate"
    )
    assert response.status_code == 303
    assert (await audit_actions(web.sessions))[-1] == "organisation.activate"
    await web.logout()
    assert (await web.login(buyer.email)).status_code == 303


async def test_disabling_a_user_signs_them_out_and_enabling_restores_access(web: Any, operator: User) -> None:
    colleague = await make_user(web.sessions, await make_organisation(web.sessions, "committee"), name="Reviewer Park")
    await signed_in_elsewhere(web.sessions, colleague)
    detail = f"/operator/organisations/{colleague.organisation_id}"
    response = await web.submit(f"/operator/users/{colleague.id}/disable", form_page=detail)
    assert response.status_code == 303 and response.headers["location"] == detail
    assert await count(web.sessions, LoginSession, LoginSession.user_id == colleague.id) == 0
    async with web.sessions() as session:
        assert not (await session.get(User, colleague.id)).active
    page = await web.client.get(detail)
    assert "was disabled and signed out" in page.text and "Disabled" in page.text
    assert (await web.submit(f"/operator/users/{colleague.id}/enable", form_page=detail)).status_code == 303
    async with web.sessions() as session:
        assert (await session.get(User, colleague.id)).active
    assert (await audit_actions(web.sessions))[-2:] == ["user.disable", "user.enable"]


async def test_a_disabled_users_api_token_stops_working_until_enabled(
    web: Any, operator: User, operator_api: dict[str, str]
) -> None:
    colleague = await make_user(web.sessions, await make_organisation(web.sessions, "operator"))
    token = await bearer(web.sessions, colleague)
    assert (await web.client.get("/api/operator/domains", headers=token)).status_code == 200
    disabled = await web.client.post(f"/api/operator/users/{colleague.id}/disable", headers=operator_api)
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert (await web.client.get("/api/operator/domains", headers=token)).status_code == 401
    assert (await web.client.post(f"/api/operator/users/{colleague.id}/enable", headers=operator_api)).json()[
        "active"
    ] is True
    assert (await web.client.get("/api/operator/domains", headers=token)).status_code == 200


async def test_operator_cannot_disable_themselves(web: Any, operator: User, operator_api: dict[str, str]) -> None:
    response = await web.client.post(f"/api/operator/users/{operator.id}/disable", headers=operator_api)
    assert response.status_code == 409
    assert (await web.client.post("/api/operator/users/999999/disable", headers=operator_api)).status_code == 404


# --- agency domains -------------------------------------------------------------------------------


async def test_operator_approves_a_domain_for_an_agency(web: Any, operator: User) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Incheon City")
    response = await web.submit(
        "/operator/domains",
        {"domain": "  @Incheon.GO.kr ", "organisation_id": str(agency.id)},
        form_page="/operator/domains",
    )
    assert response.status_code == 303
    async with web.sessions() as session:
        domain = await session.scalar(sa.select(AgencyDomain))
        event = await session.scalar(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert domain.domain == "incheon.go.kr" and domain.organisation_id == agency.id
    assert (
        event.action == "agency_domain.approve"
        and event.object_id == str(domain.id)
        and "incheon.go.kr" in event.summary
    )
    page = await web.client.get("/operator/domains")
    assert "incheon.go.kr was approved for Incheon City." in page.text
    assert '<th scope="row">incheon.go.kr</th>' in page.text


@pytest.mark.parametrize(
    ("domain", "field"),
    [
        ("not a domain", "domain"),
        ("localhost", "domain"),
        ("-bad.go.kr", "domain"),
        ("busan.go.k2", "domain"),
        ("", "domain"),
    ],
)
async def test_an_invalid_domain_is_422_and_writes_nothing(web: Any, operator: User, domain: str, field: str) -> None:
    agency = await make_organisation(web.sessions, "agency")
    events = await audit_count(web.sessions)
    response = await web.submit(
        "/operator/domains", {"domain": domain, "organisation_id": str(agency.id)}, form_page="/operator/domains"
    )
    assert response.status_code == 422
    assert f'href="#field-{field}"' in response.text
    assert await count(web.sessions, AgencyDomain) == 0
    assert await audit_count(web.sessions) == events


async def test_a_domain_must_belong_to_an_agency(web: Any, operator: User) -> None:
    provider = await make_organisation(web.sessions, "provider")
    response = await web.submit(
        "/operator/domains",
        {"domain": "cloud.example.kr", "organisation_id": str(provider.id)},
        form_page="/operator/domains",
    )
    assert response.status_code == 422 and 'href="#field-organisation_id"' in response.text
    missing = await web.submit("/operator/domains", {"domain": "cloud.example.kr"}, form_page="/operator/domains")
    assert missing.status_code == 422 and 'href="#field-organisation_id"' in missing.text
    assert await count(web.sessions, AgencyDomain) == 0


async def test_a_domain_is_approved_only_once(web: Any, operator: User, operator_api: dict[str, str]) -> None:
    first = await make_organisation(web.sessions, "agency", name="First Agency")
    second = await make_organisation(web.sessions, "agency")
    assert (
        await web.client.post(
            "/api/operator/domains", headers=operator_api, json={"domain": "shared.go.kr", "organisation_id": first.id}
        )
    ).status_code == 201
    again = await web.client.post(
        "/api/operator/domains", headers=operator_api, json={"domain": "SHARED.go.kr", "organisation_id": second.id}
    )
    assert again.status_code == 409
    assert again.json()["errors"] == {"domain": "Already approved for First Agency."}
    assert await count(web.sessions, AgencyDomain) == 1


async def test_removing_a_domain_asks_for_confirmation_then_removes_it(web: Any, operator: User) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Suwon City")
    async with web.sessions() as session, session.begin():
        domain = AgencyDomain(organisation_id=agency.id, domain="suwon.go.kr")
        session.add(domain)
    confirm = await web.client.get(f"/operator/domains/{domain.id}/remove")
    assert "Remove the domain suwon.go.kr?" in confirm.text
    assert await count(web.sessions, AgencyDomain) == 1
    response = await web.submit(
        f"/operator/domains/{domain.id}/remove", form_page=f"/operator/domains/{domain.id}/remove"
    )
    assert response.status_code == 303
    assert await count(web.sessions, AgencyDomain) == 0
    assert (await audit_actions(web.sessions))[-1] == "agency_domain.remove"
    page = await web.client.get("/operator/domains")
    assert "suwon.go.kr was removed." in page.text and "No domain is approved yet." in page.text


async def test_domain_api_lists_approves_and_deletes(web: Any, operator: User, operator_api: dict[str, str]) -> None:
    agency = await make_organisation(web.sessions, "agency", name="Changwon City")
    created = await web.client.post(
        "/api/operator/domains", headers=operator_api, json={"domain": "changwon.go.kr", "organisation_id": agency.id}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["domain"] == "changwon.go.kr" and body["organisation_name"] == "Changwon City"
    listing = (await web.client.get("/api/operator/domains", headers=operator_api)).json()
    assert listing["total"] == 1 and listing["items"][0]["id"] == body["id"]
    assert (await web.client.delete(f"/api/operator/domains/{body['id']}", headers=operator_api)).status_code == 204
    assert (await web.client.delete(f"/api/operator/domains/{body['id']}", headers=operator_api)).status_code == 404
    assert await count(web.sessions, AgencyDomain) == 0


async def test_domain_api_rejects_bad_input_with_422_naming_the_field(
    web: Any, operator: User, operator_api: dict[str, str]
) -> None:
    response = await web.client.post(
        "/api/operator/domains", headers=operator_api, json={"domain": "ok.go.kr", "organisation_id": "x"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "organisation_id" in response.json()["errors"]
    unknown = await web.client.post(
        "/api/operator/domains",
        headers=operator_api,
        json={"domain": "ok.go.kr", "organisation_id": 1, "colour": "red"},
    )
    assert unknown.status_code == 422 and "colour" in unknown.json()["errors"]
    assert await count(web.sessions, AgencyDomain) == 0


# --- committee appointments -----------------------------------------------------------------------


@pytest.fixture
async def committee(web: Any) -> Organisation:
    return await make_organisation(web.sessions, "committee", name="Certification Committee")


def term_form(committee: Organisation, email: str, starts_on: date, ends_on: date, **extra: str) -> dict[str, str]:
    return {
        "email": email,
        "organisation_id": str(committee.id),
        "starts_on": starts_on.isoformat(),
        "ends_on": ends_on.isoformat(),
        **extra,
    }


async def test_appointing_a_committee_user_records_the_term(
    web: Any, operator: User, committee: Organisation, settings: Any
) -> None:
    member = await make_user(web.sessions, committee, name="Professor Lee", email="lee@committee.example.kr")
    start, end = today(settings), today(settings) + timedelta(days=730)
    response = await web.submit(
        "/operator/appointments",
        term_form(committee, "LEE@committee.example.kr", start, end, is_chair="true"),
        form_page="/operator/appointments",
    )
    assert response.status_code == 303
    async with web.sessions() as session:
        term = await session.scalar(sa.select(Appointment))
        event = await session.scalar(sa.select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert (term.user_id, term.starts_on, term.ends_on, term.is_chair) == (member.id, start, end, True)
    assert event.action == "appointment.create" and event.object_id == str(term.id)
    page = await web.client.get("/operator/appointments")
    assert "is appointed from" in page.text
    assert (
        "Professor Lee" in page.text
        and end.isoformat() in page.text
        and "Current" in page.text
        and "Chair" in page.text
    )


async def test_appointing_someone_without_an_account_invites_them_and_records_no_term(
    web: Any, operator: User, committee: Organisation, settings: Any
) -> None:
    start, end = today(settings), today(settings) + timedelta(days=365)
    response = await web.submit(
        "/operator/appointments",
        term_form(committee, "new.member@univ.ac.kr", start, end),
        form_page="/operator/appointments",
    )
    assert response.status_code == 303
    assert await count(web.sessions, Appointment) == 0
    async with web.sessions() as session:
        invitation = await session.scalar(sa.select(Invitation))
        mail = await session.scalar(sa.select(OutboxMessage))
    assert (
        invitation.email == "new.member@univ.ac.kr"
        and invitation.organisation_id == committee.id
        and invitation.role == "member"
    )
    assert "new.member@univ.ac.kr" in mail.payload and "/invitations/" in mail.payload
    assert (await audit_actions(web.sessions))[-1] == "invitation.create"
    page = await web.client.get("/operator/appointments")
    assert "has no account yet, so no term was recorded" in page.text
    assert "Invitations waiting for acceptance" in page.text and "new.member@univ.ac.kr" in page.text
    again = await web.submit(
        "/operator/appointments",
        term_form(committee, "new.member@univ.ac.kr", start, end),
        form_page="/operator/appointments",
    )
    assert again.status_code == 409 and "Invitation waiting for acceptance until" in again.text
    assert await count(web.sessions, Invitation) == 1


async def test_the_appointments_page_explains_the_two_steps_for_newcomers(
    web: Any, operator: User, committee: Organisation
) -> None:
    page = await web.client.get("/operator/appointments")
    assert "they are sent an invitation instead and no term is recorded" in page.text


async def test_a_committee_user_without_a_term_is_offered_for_appointment(
    web: Any, operator: User, committee: Organisation
) -> None:
    await make_user(web.sessions, committee, name="Doctor Choi", email="choi@committee.example.kr")
    page = await web.client.get("/operator/appointments")
    assert "Committee users without a term" in page.text and "Doctor Choi" in page.text
    prefilled = await web.client.get(
        f"/operator/appointments?email=choi@committee.example.kr&organisation_id={committee.id}"
    )
    assert 'value="choi@committee.example.kr"' in prefilled.text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_on": "same-as-start"}, "ends_on"),
        ({"starts_on": ""}, "starts_on"),
        ({"ends_on": "2025-02-30"}, "ends_on"),
        ({"email": "nobody"}, "email"),
        ({"organisation_id": ""}, "organisation_id"),
    ],
)
async def test_bad_appointment_input_is_422_naming_the_field_and_writes_nothing(
    web: Any, operator: User, committee: Organisation, settings: Any, change: dict[str, str], field: str
) -> None:
    await make_user(web.sessions, committee, email="member@committee.example.kr")
    form = term_form(committee, "member@committee.example.kr", today(settings), today(settings) + timedelta(days=30))
    form.update(change)
    if form["ends_on"] == "same-as-start":
        form["ends_on"] = form["starts_on"]
    events = await audit_count(web.sessions)
    response = await web.submit("/operator/appointments", form, form_page="/operator/appointments")
    assert response.status_code == 422
    assert f'href="#field-{field}"' in response.text
    assert await count(web.sessions, Appointment) == 0 and await count(web.sessions, Invitation) == 0
    assert await audit_count(web.sessions) == events


async def test_a_term_that_ended_already_cannot_be_recorded(
    web: Any, operator: User, committee: Organisation, settings: Any
) -> None:
    await make_user(web.sessions, committee, email="late@committee.example.kr")
    form = term_form(
        committee,
        "late@committee.example.kr",
        today(settings) - timedelta(days=60),
        today(settings) - timedelta(days=1),
    )
    response = await web.submit("/operator/appointments", form, form_page="/operator/appointments")
    assert response.status_code == 422 and 'href="#field-ends_on"' in response.text


async def test_only_users_of_the_chosen_committee_can_be_appointed(
    web: Any, operator: User, committee: Organisation, settings: Any
) -> None:
    outsider = await make_user(web.sessions, await make_organisation(web.sessions, "provider"))
    form = term_form(committee, outsider.email, today(settings), today(settings) + timedelta(days=30))
    response = await web.submit("/operator/appointments", form, form_page="/operator/appointments")
    assert response.status_code == 422 and 'href="#field-email"' in response.text
    assert "is not a user of Certification Committee" in response.text
    agency = await make_organisation(web.sessions, "agency")
    not_a_committee = await web.submit(
        "/operator/appointments", {**form, "organisation_id": str(agency.id)}, form_page="/operator/appointments"
    )
    assert not_a_committee.status_code == 422 and 'href="#field-organisation_id"' in not_a_committee.text
    assert await count(web.sessions, Appointment) == 0


async def test_overlapping_terms_and_two_chairs_at_once_are_refused(
    web: Any, operator: User, committee: Organisation, settings: Any, operator_api: dict[str, str]
) -> None:
    chair = await make_user(web.sessions, committee)
    member = await make_user(web.sessions, committee)
    start = today(settings)
    body = {
        "email": chair.email,
        "organisation_id": committee.id,
        "starts_on": start.isoformat(),
        "ends_on": (start + timedelta(days=365)).isoformat(),
        "is_chair": True,
    }
    assert (await web.client.post("/api/operator/appointments", headers=operator_api, json=body)).status_code == 201
    overlapping = await web.client.post(
        "/api/operator/appointments",
        headers=operator_api,
        json={
            **body,
            "starts_on": (start + timedelta(days=100)).isoformat(),
            "ends_on": (start + timedelta(days=500)).isoformat(),
            "is_chair": False,
        },
    )
    assert overlapping.status_code == 409 and "starts_on" in overlapping.json()["errors"]
    second_chair = await web.client.post(
        "/api/operator/appointments", headers=operator_api, json={**body, "email": member.email}
    )
    assert second_chair.status_code == 409 and "is_chair" in second_chair.json()["errors"]
    after = await web.client.post(
        "/api/operator/appointments",
        headers=operator_api,
        json={
            **body,
            "starts_on": (start + timedelta(days=366)).isoformat(),
            "ends_on": (start + timedelta(days=700)).isoformat(),
        },
    )
    assert after.status_code == 201  # the next term, right after the first
    assert await count(web.sessions, Appointment) == 2


async def test_ending_a_current_term_early_makes_yesterday_its_last_day(
    web: Any, operator: User, committee: Organisation, settings: Any
) -> None:
    member = await make_user(web.sessions, committee, name="Member Jung")
    async with web.sessions() as session, session.begin():
        term = Appointment(
            user_id=member.id,
            starts_on=today(settings) - timedelta(days=100),
            ends_on=today(settings) + timedelta(days=100),
        )
        session.add(term)
    confirm = await web.client.get(f"/operator/appointments/{term.id}/end")
    assert "End the term of Member Jung early?" in confirm.text and "cannot be undone" in confirm.text
    response = await web.submit(
        f"/operator/appointments/{term.id}/end", form_page=f"/operator/appointments/{term.id}/end"
    )
    assert response.status_code == 303
    async with web.sessions() as session:
        ended = await session.get(Appointment, term.id)
    assert ended.ends_on == today(settings) - timedelta(days=1)
    assert (await audit_actions(web.sessions))[-1] == "appointment.end"
    page = await web.client.get("/operator/appointments")
    assert "Ended" in page.text and f"/operator/appointments/{term.id}/end" not in page.text
    again = await web.submit(f"/operator/appointments/{term.id}/end", form_page="/operator/appointments")
    assert again.status_code == 409


async def test_ending_an_upcoming_term_cancels_it(
    web: Any, operator: User, committee: Organisation, settings: Any, operator_api: dict[str, str]
) -> None:
    member = await make_user(web.sessions, committee)
    async with web.sessions() as session, session.begin():
        term = Appointment(
            user_id=member.id,
            starts_on=today(settings) + timedelta(days=10),
            ends_on=today(settings) + timedelta(days=100),
        )
        session.add(term)
    response = await web.client.post(f"/api/operator/appointments/{term.id}/end", headers=operator_api)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    async with web.sessions() as session:
        assert (await session.get(Appointment, term.id)).ends_on < term.starts_on


async def test_appointment_api_answers_201_for_a_term_and_202_for_an_invitation(
    web: Any, operator: User, committee: Organisation, settings: Any, operator_api: dict[str, str]
) -> None:
    member = await make_user(web.sessions, committee)
    start, end = today(settings).isoformat(), (today(settings) + timedelta(days=90)).isoformat()
    appointed = await web.client.post(
        "/api/operator/appointments",
        headers=operator_api,
        json={"email": member.email, "organisation_id": committee.id, "starts_on": start, "ends_on": end},
    )
    assert appointed.status_code == 201
    assert appointed.json()["status"] == "appointed" and appointed.json()["appointment"]["user_id"] == member.id
    invited = await web.client.post(
        "/api/operator/appointments",
        headers=operator_api,
        json={"email": "fresh@univ.ac.kr", "organisation_id": committee.id, "starts_on": start, "ends_on": end},
    )
    assert invited.status_code == 202
    assert invited.json()["status"] == "invited" and invited.json()["appointment"] is None
    listing = (await web.client.get("/api/operator/appointments", headers=operator_api)).json()
    assert [item["email"] for item in listing["items"]] == [member.email]
    assert [item["email"] for item in listing["pending_invitations"]] == ["fresh@univ.ac.kr"]
    bad = await web.client.post(
        "/api/operator/appointments",
        headers=operator_api,
        json={"email": member.email, "organisation_id": committee.id, "starts_on": end, "ends_on": start},
    )
    assert bad.status_code == 422 and list(bad.json()["errors"]) == ["ends_on"]


# --- API twins of the organisation pages ----------------------------------------------------------


async def test_organisation_api_creates_and_lists(web: Any, operator: User, operator_api: dict[str, str]) -> None:
    created = await web.client.post(
        "/api/operator/organisations",
        headers=operator_api,
        json={"kind": "agency", "name": "Mokpo City", "registration_number": "4850000"},
    )
    assert created.status_code == 201
    assert created.json()["registration_number"] == "4850000" and created.json()["active"] is True
    listing = (await web.client.get("/api/operator/organisations?kind=agency&q=mokpo", headers=operator_api)).json()
    assert listing["total"] == 1 and listing["items"][0]["name"] == "Mokpo City" and listing["pages"] == 1
    details = (await web.client.get(f"/api/operator/organisations/{created.json()['id']}", headers=operator_api)).json()
    assert details["organisation"]["name"] == "Mokpo City" and details["users"] == []


async def test_organisation_api_rejects_bad_input_with_422_naming_the_field(
    web: Any, operator: User, operator_api: dict[str, str]
) -> None:
    organisations = await count(web.sessions, Organisation)
    response = await web.client.post(
        "/api/operator/organisations", headers=operator_api, json={"kind": "agency", "name": "No Code"}
    )
    assert response.status_code == 422 and list(response.json()["errors"]) == ["registration_number"]
    missing = await web.client.post("/api/operator/organisations", headers=operator_api, json={"kind": "committee"})
    assert missing.status_code == 422 and list(missing.json()["errors"]) == ["name"]
    bad_filter = await web.client.get("/api/operator/organisations?active=perhaps", headers=operator_api)
    assert bad_filter.status_code == 422 and "active" in bad_filter.json()["errors"]
    assert await count(web.sessions, Organisation) == organisations


async def test_operator_api_is_described_in_the_openapi_schema(web: Any) -> None:
    schema = (await web.client.get("/schema/openapi.json")).json()
    body = schema["paths"]["/api/operator/organisations"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert set(body["required"]) == {"kind", "name"}
    assert "/api/operator/audit-events" in schema["paths"]
    assert not any(path.startswith("/operator") for path in schema["paths"])  # pages stay out
