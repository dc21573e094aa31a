"""Hostile input against every /api operation, judged by the OpenAPI document the app serves.

The real app (`create_app`, the test database filled with the demo data) is called in this process through
schemathesis's ASGI transport, and its own `/schema/openapi.json` is what schemathesis loads. Every operation
under `/api` is called with generated input once for each role: anonymous, agency, provider, committee
member, committee chair and operator (each an API token of a demo user, made with `accounts.create_token`).
Each operation's examples are drawn from valid input by the document (positive), input that breaks it on
purpose (negative: wrong types, missing or extra fields, out-of-range numbers, a forged or missing
`Authorization` header), and, where the path takes an integer id, valid input naming the low ids the demo's
objects hold, so that answers other than 404 are reached too. Every response must pass:

- not_a_server_error: no 5xx, whatever the input;
- status_code_conformance: the status is one the document declares for the operation;
- content_type_conformance: the content type is the one declared for that status;
- response_schema_conformance: the body matches the declared schema (`ProblemDetails` for errors).

Operations that can end the caller's own access run last, and after every other one the role's token must
still sign in, so that no operation is silently exercised signed out.

Bounds: `EXAMPLES` * 2 examples per operation and role (about 1,600 requests per database), no shrinking (a
failure is reported with the request that caused it, as a curl command) and generation from a fixed seed per role
and operation, so CI sends the same requests every run while each role gets examples of its own. The seven roles
each start from a fresh copy of the demo data. A failing operation does not stop the others: the test reports every failing
operation of the role together.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from sqlalchemy.ext.asyncio import async_sessionmaker

from market import accounts
from market.app import create_app
from market.database import create_engine
from market.demo import load
from market.models import Organisation, User
from market.settings import Settings
from tests.market.test_tokens import principal_of

METHODS = {"get", "put", "post", "delete", "patch"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 1  # per operation, role and mode (valid, hostile)
DEMO_IDS = (1, 2, 3)
# Operations that can end the caller's own access (its token revoked, its user or organisation disabled)
# run last, so every other operation is called with a token that still works.
ENDS_ACCESS = (
    "DELETE /api/tokens/{token_id}",
    "POST /api/organisation/members/{member_id}/disable",
    "POST /api/operator/users/{user_id}/disable",
    "POST /api/operator/organisations/{organisation_id}/deactivate",
)
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "agency": "buyer@seoul.example.go.kr",
    "agency admin": "admin@seoul.example.go.kr",  # budgets, the approval threshold, roles and signing limits
    "provider": "provider@hanbit-cloud.example.kr",
    "committee member": "committee@demo.example.go.kr",
    "committee chair": "chair@demo.example.go.kr",
    "operator": "operator@demo.example.go.kr",
}


@pytest.fixture(scope="module")
def api_schema(base_settings: Settings) -> Iterator[Any]:
    """The app's document exactly as it serves it at /schema/openapi.json, narrowed to the /api operations;
    calls go to that app in this process through schemathesis's ASGI transport (its lifespan started once)."""
    app = create_app(base_settings)
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    yield schema.include(path_regex=r"^/api/")
    shutdown_lifespans()  # the app's lifespan: its engine is disposed


async def _demo_with_tokens(database_url: str, settings: Settings) -> dict[str, str]:
    engine = create_engine(database_url, pooled=False)
    try:
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with sessions() as session, session.begin():
            await load(session, settings, echo=lambda _line: None)
        tokens: dict[str, str] = {}
        async with sessions() as session, session.begin():
            for role, email in ROLES.items():
                if email is None:
                    continue
                user = await session.scalar(sa.select(User).where(User.email == email))
                organisation = await session.get(Organisation, user.organisation_id)
                _, tokens[role] = await accounts.create_token(session, principal_of(user, organisation), "schemathesis")
        return tokens
    finally:
        await engine.dispose()


def _int_path_parameters(operation: Any) -> list[str]:
    return [
        parameter.name for parameter in operation.path_parameters
        if parameter.definition.get("schema", {}).get("type") == "integer"
    ]


def _cases(operation: Any) -> st.SearchStrategy[Any]:
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    strategies = [operation.as_strategy(mode) for mode in modes]
    if names := _int_path_parameters(operation):
        strategies.append(
            st.sampled_from(DEMO_IDS).flatmap(
                lambda value: operation.as_strategy(path_parameters=dict.fromkeys(names, value))
            )
        )
    return st.one_of(strategies)


def _exercise(operation: Any, headers: dict[str, str], role: str) -> str | None:
    """None when every example passed every check, else the report of the first that failed."""

    @hypothesis.seed(zlib.crc32(f"{role} {operation.label}".encode()))  # the same requests every run; the roles' differ
    @hypothesis.settings(
        max_examples=EXAMPLES * 2, deadline=None, database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck), report_multiple_bugs=False,
    )
    @hypothesis.given(case=_cases(operation))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # the check's report: what was sent, what came back, what it broke
        notes = "\n".join(getattr(exc, "__notes__", []))
        return f"{exc}\n{notes}"
    return None


def _in_order(schema: Any) -> list[Any]:
    """The document's operations, those in `ENDS_ACCESS` last and in that order."""
    operations = [result.ok() for result in schema.get_all_operations()]
    return sorted(operations, key=lambda operation: ENDS_ACCESS.index(operation.label) + 1 if operation.label in ENDS_ACCESS else 0)


def _signed_in(schema: Any, headers: dict[str, str]) -> bool:
    return schema["/api/me"]["GET"].Case().call(headers=headers).status_code == 200


@pytest.mark.parametrize("role", list(ROLES))
def test_every_api_operation_answers_as_documented_to_hostile_input(
    role: str, api_schema: Any, database_url: str, settings: Settings
) -> None:
    tokens = asyncio.run(_demo_with_tokens(database_url, settings))
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
    operations = _in_order(api_schema)
    served = [(path, method) for path, item in api_schema.raw_schema["paths"].items() for method in item if method in METHODS]
    assert len(operations) == len([path for path, _method in served if path.startswith("/api/")]) > 90
    failures: list[str] = []
    for operation in operations:
        if (failure := _exercise(operation, headers, role)) is not None:
            failures.append(f"--- {operation.label} as {role}\n{failure}")
        if headers and operation.label not in ENDS_ACCESS:
            assert _signed_in(api_schema, headers), f"{operation.label} ended the {role}'s access; the rest would run signed out"
    assert not failures, f"{len(failures)} of {len(operations)} operations failed as {role}:\n" + "\n".join(failures)
