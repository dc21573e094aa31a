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

The demo data and the roles' tokens are made once for the module, on the tests' day, and kept aside (a copy of the
SQLite file, or of PostgreSQL's tables in a schema of their own, and of the data folder); each role starts from that
copy put back, as from a fresh load.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from market import accounts, clock
from market.app import create_app
from market.assembly import assemble
from market.database import create_engine
from market.demo import load
from market.models import Organisation, User
from market.settings import Settings
from tests.conftest import POSTGRES_URL, empty_data_dir, empty_database
from tests.helpers import TEST_DAY
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
        sessions = assemble().sessions(engine)
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


SNAPSHOT = "demo_snapshot"  # PostgreSQL: the schema the demo's rows are kept in


async def _postgres_snapshot(url: str) -> list[str]:
    """The public tables' rows copied into `SNAPSHOT`; the statements that put them back (sequences too)."""
    engine = create_engine(url, pooled=False)
    restore = ["SET LOCAL session_replication_role = replica"]  # no foreign-key or other triggers while refilling
    try:
        async with engine.begin() as connection:
            await connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {SNAPSHOT} CASCADE"))
            await connection.execute(sa.text(f"CREATE SCHEMA {SNAPSHOT}"))
            tables = (
                (
                    await connection.execute(
                        sa.text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version' ORDER BY tablename"
                        )
                    )
                )
                .scalars()
                .all()
            )
            for table in tables:
                await connection.execute(sa.text(f'CREATE TABLE {SNAPSHOT}."{table}" AS TABLE public."{table}"'))
                columns = (
                    (
                        await connection.execute(
                            sa.text(
                                "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped "
                                "AND attgenerated = '' ORDER BY attnum"
                            ),
                            {"table": f'public."{table}"'},
                        )
                    )
                    .scalars()
                    .all()
                )
                names = ", ".join(f'"{column}"' for column in columns)
                restore += [
                    f'DELETE FROM public."{table}"',
                    f'INSERT INTO public."{table}" ({names}) OVERRIDING SYSTEM VALUE SELECT {names} FROM {SNAPSHOT}."{table}"',
                ]
            for name, last in (
                await connection.execute(
                    sa.text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
                )
            ).all():
                restore.append(
                    f'ALTER SEQUENCE public."{name}" RESTART'
                    if last is None
                    else f"SELECT setval('public.\"{name}\"', {last}, true)"
                )
    finally:
        await engine.dispose()
    return restore


async def _postgres_run(url: str, statements: list[str]) -> None:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(sa.text(statement))
    finally:
        await engine.dispose()


def _sqlite_copy(source: str, target: str) -> None:
    """`source`'s database copied over `target`'s through SQLite's backup API (safe with the app's connections open)."""
    with closing(sqlite3.connect(source)) as frm, closing(sqlite3.connect(target)) as to:
        frm.backup(to)


@pytest.fixture(scope="module")
def demo(migrated_database: str, base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Loads the demo data and the roles' tokens once; yields the tokens and a function that puts that state back."""
    empty_database(migrated_database)
    empty_data_dir(base_settings)
    with clock.travel(TEST_DAY):
        tokens = asyncio.run(_demo_with_tokens(migrated_database, base_settings))
    kept = tmp_path_factory.mktemp("demo")
    shutil.copytree(base_settings.data_dir, kept / "data")
    if POSTGRES_URL:
        restore = asyncio.run(_postgres_snapshot(migrated_database))
    else:
        database = migrated_database.split(":///", 1)[1]
        _sqlite_copy(database, str(kept / "market.db"))

    def put_back() -> None:
        empty_data_dir(base_settings)
        shutil.copytree(kept / "data", base_settings.data_dir, dirs_exist_ok=True)
        if POSTGRES_URL:
            asyncio.run(_postgres_run(migrated_database, restore))
        else:
            _sqlite_copy(str(kept / "market.db"), database)

    yield tokens, put_back
    if POSTGRES_URL:
        asyncio.run(_postgres_run(migrated_database, [f"DROP SCHEMA IF EXISTS {SNAPSHOT} CASCADE"]))


def _int_path_parameters(operation: Any) -> list[str]:
    return [
        parameter.name
        for parameter in operation.path_parameters
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
        max_examples=EXAMPLES * 2,
        deadline=None,
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
        report_multiple_bugs=False,
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
    return sorted(
        operations,
        key=lambda operation: ENDS_ACCESS.index(operation.label) + 1 if operation.label in ENDS_ACCESS else 0,
    )


def _signed_in(schema: Any, headers: dict[str, str]) -> bool:
    return schema["/api/me"]["GET"].Case().call(headers=headers).status_code == 200


@pytest.mark.parametrize("role", list(ROLES))
def test_every_api_operation_answers_as_documented_to_hostile_input(role: str, demo: Any, api_schema: Any) -> None:
    tokens, put_back = demo
    put_back()  # the demo data as loaded, whatever the roles before changed
    headers = {"Authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
    operations = _in_order(api_schema)
    served = [
        (path, method) for path, item in api_schema.raw_schema["paths"].items() for method in item if method in METHODS
    ]
    assert len(operations) == len([path for path, _method in served if path.startswith("/api/")]) > 90
    failures: list[str] = []
    for operation in operations:
        if (failure := _exercise(operation, headers, role)) is not None:
            failures.append(f"--- {operation.label} as {role}\n{failure}")
        if headers and operation.label not in ENDS_ACCESS:
            assert _signed_in(api_schema, headers), (
                f"{operation.label} ended the {role}'s access; the rest would run signed out"
            )
    assert not failures, f"{len(failures)} of {len(operations)} operations failed as {role}:\n" + "\n".join(failures)
