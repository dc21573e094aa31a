"""Every failure answers an HTML page for people and RFC 9457 problem JSON for programs, never a traceback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar, get, post
from litestar.exceptions import InternalServerException
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect
from litestar.testing import AsyncTestClient
from pydantic import BaseModel
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market import accounts, guards, i18n, schema_version
from market.app import create_app
from market.auth import Principal
from market.errors import Conflict, Forbidden, Gone, Invalid, NotFound, TooManyRequests
from market.models import Organisation
from market.settings import Settings
from market.web import DbSession
from tests.helpers import CSRF_FIELD, Browserless, count, make_organisation, make_user

SECRET_MARKER = "internal-detail-8c1f"  # appears in an unexpected error, and must never reach the client


def _raise(name: str) -> None:
    if name == "not-found":
        raise NotFound("No such service.")
    if name == "forbidden":
        raise Forbidden("Only the provider may change this service.")
    if name == "invalid":
        raise Invalid(
            "Check the highlighted fields.",
            errors={"name": "Give the service a name.", "price": "Must be a whole number of won."},
        )
    if name == "conflict":
        raise Conflict("The contract is already signed.")
    if name == "gone":
        raise Gone("The service was withdrawn on 2026-01-31.")
    if name == "too-many":
        raise TooManyRequests("Slow down.", retry_after=90)
    if name == "database-down":
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError(f"could not connect {SECRET_MARKER}"))
    if name == "duplicate":
        raise IntegrityError("INSERT INTO service", {}, Exception(f"UNIQUE constraint failed {SECRET_MARKER}"))
    if name == "framework-500":
        raise InternalServerException(detail=f"stream consumed {SECRET_MARKER}")
    raise RuntimeError(f"exploded at /srv/market/secret.py {SECRET_MARKER}")


@get("/test-errors/{name:str}", include_in_schema=False)
async def page_that_fails(name: FromPath[str]) -> str:
    _raise(name)
    return "unreachable"


@get("/api/test-errors/{name:str}")
async def api_that_fails(name: FromPath[str]) -> dict[str, str]:
    _raise(name)
    return {}


@get("/test-errors-operator-page", include_in_schema=False, guards=[guards.operator])
async def operator_page() -> str:
    return "operators only"


@get("/api/test-errors-operator", guards=[guards.operator])
async def operator_api() -> dict[str, str]:
    return {"ok": "operators only"}


class ServiceInput(BaseModel):
    name: str
    price: int


@post("/api/test-errors-body")
async def api_with_body(data: JSONBody[ServiceInput]) -> dict[str, str]:
    return {"name": data.name}


def _commit_fails(session: Any) -> None:
    """The next COMMIT of `session` fails, as when the connection drops at that moment."""

    def refuse(_session: Any) -> None:
        raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost during commit"))

    event.listen(session.sync_session, "before_commit", refuse, once=True)


@post("/api/test-commit-fails")
async def api_commit_fails(db_session: DbSession) -> dict[str, str]:
    db_session.add(Organisation(kind="agency", name="Never saved", registration_number="9999999"))
    _commit_fails(db_session)
    return {"status": "saved"}


@post("/test-commit-fails", include_in_schema=False)
async def page_commit_fails(db_session: DbSession) -> Redirect:
    db_session.add(Organisation(kind="agency", name="Never saved", registration_number="9999998"))
    _commit_fails(db_session)
    return Redirect("/", status_code=303)


TEST_ROUTES = [
    page_that_fails,
    api_that_fails,
    operator_page,
    operator_api,
    api_with_body,
    api_commit_fails,
    page_commit_fails,
]
JSON = {"accept": "application/json"}
HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture(scope="module")
def app(base_settings: Settings) -> Litestar:
    """Built once for the module, with the failing routes above; each client runs its lifespan anew."""
    return create_app(base_settings, extra_routes=TEST_ROUTES)


@pytest.fixture
async def client(app: Litestar, settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


def _assert_problem(response, status: int, title: str, detail: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["title"] == title
    assert body["type"]
    assert isinstance(body["detail"], str) and body["detail"]
    if detail is not None:
        assert body["detail"] == detail
    return body


def _assert_page(response, status: int, heading: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f"<h1>{heading}</h1>" in response.text
    assert response.text.count("<h1") == 1


# --- unknown paths and methods ------------------------------------------------------------------------


async def test_unknown_page_answers_a_404_page(client) -> None:
    response = await client.get("/no-such-page", headers=HTML)
    _assert_page(response, 404, "Not found")
    assert 'href="/"' in response.text


async def test_unknown_api_path_answers_problem_json_404(client) -> None:
    body = _assert_problem(await client.get("/api/no-such-thing"), 404, "Not found")
    assert body["instance"] == "/api/no-such-thing"


async def test_an_id_beyond_the_databases_integers_answers_404_not_500(client) -> None:
    for path in (
        "/api/services/10000000000000000001",
        "/api/services/2147483648/versions",
        "/api/services/-2147483649",
    ):
        body = _assert_problem(await client.get(path), 404, "Not found")
        assert body["instance"] == path
    _assert_page(await client.get("/services/99999999999999999999", headers=HTML), 404, "Not found")


async def test_wrong_method_on_a_page_answers_405(client) -> None:
    response = await client.put("/login", headers=HTML)
    _assert_page(response, 405, "Method not allowed")
    assert "GET" in response.headers.get("allow", "")


async def test_wrong_method_on_the_api_answers_problem_json_405(client) -> None:
    _assert_problem(await client.delete("/api/test-errors/x"), 405, "Method not allowed")


# --- the Accept header outside /api -------------------------------------------------------------------


async def test_a_program_asking_for_json_outside_the_api_gets_problem_json(client) -> None:
    _assert_problem(await client.get("/no-such-page", headers=JSON), 404, "Not found")


async def test_json_preferred_by_quality_gets_problem_json(client) -> None:
    response = await client.get("/no-such-page", headers={"accept": "text/html;q=0.1, application/json"})
    _assert_problem(response, 404, "Not found")


async def test_a_client_accepting_anything_gets_the_html_page(client) -> None:
    _assert_page(await client.get("/no-such-page", headers={"accept": "*/*"}), 404, "Not found")


async def test_the_api_answers_json_even_to_a_browser(client) -> None:
    _assert_problem(await client.get("/api/no-such-thing", headers=HTML), 404, "Not found")


# --- CSRF and guards ----------------------------------------------------------------------------------


async def test_form_post_without_csrf_token_answers_a_403_page(client) -> None:
    await client.get("/login")
    response = await client.post("/login", data={"email": "a@b.kr", "password": "x"}, headers=HTML)
    _assert_page(response, 403, "Forbidden")
    assert "Reload the page" in response.text


async def test_a_program_posting_a_form_without_csrf_token_gets_problem_json(client) -> None:
    response = await client.post("/login", data={"email": "a@b.kr", "password": "x"}, headers=JSON)
    body = _assert_problem(response, 403, "Forbidden")
    assert "Reload the page" in body["detail"]


async def test_guard_refusal_on_a_page_answers_a_403_page(client, sessions) -> None:
    web = Browserless(client, sessions)
    await web.login_as("agency")
    response = await client.get("/test-errors-operator-page", headers=HTML)
    _assert_page(response, 403, "Forbidden")
    assert "This page is for other roles." in response.text


async def test_guarded_page_sends_a_visitor_to_sign_in(client) -> None:
    response = await client.get("/test-errors-operator-page", headers=HTML, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/test-errors-operator-page"


async def _token(sessions: async_sessionmaker[AsyncSession], kind: str) -> str:
    organisation = await make_organisation(sessions, kind)
    user = await make_user(sessions, organisation)
    principal = Principal(
        user.id,
        user.email,
        user.name,
        organisation.id,
        organisation.kind,
        organisation.name,
        user.role,
        None,
        "127.0.0.1",  # type: ignore[arg-type]
    )
    async with sessions() as session, session.begin():
        _token_row, raw = await accounts.create_token(session, principal, "errors test")
    return raw


async def test_guard_refusal_on_the_api_answers_problem_json_403(client, sessions) -> None:
    raw = await _token(sessions, "agency")
    response = await client.get("/api/test-errors-operator", headers={"authorization": f"Bearer {raw}"})
    _assert_problem(response, 403, "Forbidden", "This page is for other roles.")


async def test_the_api_without_a_token_answers_problem_json_401(client) -> None:
    response = await client.get("/api/test-errors-operator", follow_redirects=False)
    _assert_problem(response, 401, "Not signed in")


async def test_the_api_lets_the_right_role_through(client, sessions) -> None:
    raw = await _token(sessions, "operator")
    response = await client.get("/api/test-errors-operator", headers={"authorization": f"Bearer {raw}"})
    assert response.status_code == 200 and response.json() == {"ok": "operators only"}


# --- domain errors ------------------------------------------------------------------------------------

DOMAIN_CASES = [
    ("not-found", 404, "Not found", "No such service."),
    ("forbidden", 403, "Forbidden", "Only the provider may change this service."),
    ("invalid", 422, "Invalid input", "Check the highlighted fields."),
    ("conflict", 409, "Conflict", "The contract is already signed."),
    ("gone", 410, "Gone", "The service was withdrawn on 2026-01-31."),
    ("too-many", 429, "Too many requests", "Slow down."),
]


@pytest.mark.parametrize(("name", "status", "title", "detail"), DOMAIN_CASES)
async def test_domain_error_on_a_page_answers_its_status_with_a_page(
    client, name: str, status: int, title: str, detail: str
) -> None:
    response = await client.get(f"/test-errors/{name}", headers=HTML)
    _assert_page(response, status, title)
    assert detail in response.text


@pytest.mark.parametrize(("name", "status", "title", "detail"), DOMAIN_CASES)
async def test_domain_error_on_the_api_answers_problem_json(
    client, name: str, status: int, title: str, detail: str
) -> None:
    body = _assert_problem(await client.get(f"/api/test-errors/{name}"), status, title, detail)
    assert body["instance"] == f"/api/test-errors/{name}"


async def test_invalid_lists_each_fields_message_in_problem_json(client) -> None:
    body = _assert_problem(await client.get("/api/test-errors/invalid"), 422, "Invalid input")
    assert body["errors"] == {"name": "Give the service a name.", "price": "Must be a whole number of won."}


async def test_invalid_lists_each_fields_message_on_the_page(client) -> None:
    response = await client.get("/test-errors/invalid", headers=HTML)
    assert "Give the service a name." in response.text and "Must be a whole number of won." in response.text


async def test_too_many_requests_says_when_to_retry(client) -> None:
    assert (await client.get("/api/test-errors/too-many")).headers["retry-after"] == "90"
    assert (await client.get("/test-errors/too-many", headers=HTML)).headers["retry-after"] == "90"


async def test_api_body_that_does_not_validate_answers_problem_json_with_field_errors(client) -> None:
    response = await client.post("/api/test-errors-body", json={"name": "Cloud backup", "price": "lots"})
    body = _assert_problem(response, 400, "Bad request")
    assert "price" in " ".join(body["errors"])


async def test_api_body_that_is_not_json_answers_problem_json_400(client) -> None:
    response = await client.post(
        "/api/test-errors-body", content=b"{not json", headers={"content-type": "application/json"}
    )
    _assert_problem(response, 400, "Bad request")


# --- unexpected failures ------------------------------------------------------------------------------


async def test_unexpected_error_on_a_page_answers_a_generic_500_page(client, caplog) -> None:
    response = await client.get("/test-errors/crash", headers=HTML)
    _assert_page(response, 500, "Server error")
    assert "Something went wrong on our side" in response.text
    assert SECRET_MARKER not in response.text and "Traceback" not in response.text and "secret.py" not in response.text
    assert SECRET_MARKER in caplog.text  # the operator finds it in the log


async def test_unexpected_error_on_the_api_answers_generic_problem_json(client) -> None:
    response = await client.get("/api/test-errors/crash")
    body = _assert_problem(response, 500, "Server error")
    assert "Something went wrong on our side" in body["detail"]
    assert SECRET_MARKER not in response.text and "Traceback" not in response.text


async def test_lost_database_connection_answers_503_with_retry_after(client) -> None:
    response = await client.get("/api/test-errors/database-down")
    _assert_problem(response, 503, "Service unavailable")
    assert response.headers["retry-after"]
    assert SECRET_MARKER not in response.text


async def test_framework_server_error_hides_its_detail(client) -> None:
    response = await client.get("/api/test-errors/framework-500")
    _assert_problem(response, 500, "Server error")
    assert SECRET_MARKER not in response.text


async def test_a_constraint_violation_answers_409_without_the_database_message(client) -> None:
    response = await client.get("/api/test-errors/duplicate")
    body = _assert_problem(response, 409, "Conflict")
    assert "Reload and try again" in body["detail"]
    assert SECRET_MARKER not in response.text


# --- language of error pages --------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["ko", "en"])
async def test_unknown_page_is_shown_in_the_browsers_language(client, language: str) -> None:
    response = await client.get("/no-such-page", headers={**HTML, "accept-language": language})
    assert response.status_code == 404
    assert f'<html lang="{language}">' in response.text


async def test_unknown_page_follows_the_language_switch(client) -> None:
    client.cookies.set(i18n.LANGUAGE_COOKIE, "ko")
    response = await client.get("/no-such-page", headers={**HTML, "accept-language": "en"})
    assert '<html lang="ko">' in response.text


@pytest.mark.parametrize("arrive", ["unknown path", "wrong method", "refused form"])
async def test_the_forms_on_an_error_page_work(client, arrive: str) -> None:
    """The language switch on an error page carries a CSRF token the server accepts."""
    if arrive == "unknown path":
        page = await client.get("/no-such-page", headers=HTML)
    elif arrive == "wrong method":
        page = await client.put("/login", headers=HTML)
    else:
        page = await client.post("/login", data={"email": "a@b.kr"}, headers=HTML)
    assert page.status_code in (403, 404, 405)
    token = CSRF_FIELD.search(page.text)
    assert token and token.group(1), "the error page's forms have no CSRF token"
    switched = await client.post(
        "/language", data={"_csrf_token": token.group(1), "language": "ko", "next": "/"}, follow_redirects=False
    )
    assert switched.status_code == 303


async def test_framework_phrases_are_explained_in_words(client) -> None:
    body = _assert_problem(await client.get("/api/no-such-thing"), 404, "Not found")
    assert body["detail"] != "Not Found"


# --- body size ----------------------------------------------------------------------------------------


async def test_a_body_over_the_size_limit_answers_413_on_the_api(client, app_body_limit: int) -> None:
    response = await client.post(
        "/api/test-errors-body", content=b"x" * (app_body_limit + 1), headers={"content-type": "application/json"}
    )
    _assert_problem(response, 413, "Request too large")


async def test_a_form_over_the_size_limit_answers_a_413_page(client, app_body_limit: int) -> None:
    await client.get("/login")
    response = await client.post(
        "/login",
        content=b"email=" + b"x" * (app_body_limit + 1),
        headers={**HTML, "content-type": "application/x-www-form-urlencoded"},
    )
    _assert_page(response, 413, "Request too large")


@pytest.fixture
def app_body_limit(client) -> int:
    limit = client.app.request_max_body_size
    assert limit and limit <= 50 * 1024 * 1024
    return limit


# --- health -------------------------------------------------------------------------------------------


async def test_healthz_reports_database_and_schema(client) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "schema": "current"}


@pytest.mark.sqlite_only
async def test_healthz_answers_503_when_the_schema_is_behind(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}",
        data_dir=tmp_path,
        secret_key="s" * 40,
        worker="off",
        default_language="en",
    ).checked()
    async with AsyncTestClient(app=create_app(settings, check_schema=False)) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok"
    assert body["schema"].startswith("behind") and schema_version.head() in body["schema"]


async def test_a_commit_that_fails_answers_503_and_nothing_is_saved(client, sessions) -> None:
    api = await client.post("/api/test-commit-fails", json={})
    body = _assert_problem(api, 503, "Service unavailable")  # as the OpenAPI document declares for every /api operation
    assert api.headers["retry-after"] == "5" and body["instance"] == "/api/test-commit-fails"
    assert "saved" not in api.text.replace("could not be saved", "")
    csrf = await client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', csrf.text).group(1)
    page = await client.post("/test-commit-fails", data={"_csrf_token": token}, follow_redirects=False)
    assert page.status_code == 503 and "location" not in page.headers
    assert await count(sessions, Organisation, Organisation.name == "Never saved") == 0
