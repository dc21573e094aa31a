"""The `market` command as an operator runs it: its entry point as a real process (help, a refused setting,
a broken audit chain's exit status), every other command called in this process through click's runner with the
same arguments and environment, so that each test costs no interpreter start-up."""

from __future__ import annotations

import os
import subprocess
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from market import settings as market_settings
from market.cli import main
from market.models import AuditEvent, Organisation, User
from tests.helpers import count
from tests.processes import MARKET

PASSWORD = "operator-password-2026"


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(_command_paths(command, (*prefix, name)))
    return paths


COMMANDS = _command_paths(main)


def _environment(data_dir: Path, database_url: str, env: dict[str, str]) -> dict[str, str | None]:
    """The variables a command runs with, over this process's; None removes one."""
    environment: dict[str, str | None] = {
        "MARKET_DATA_DIR": str(data_dir),
        "MARKET_DATABASE_URL": database_url,
        "MARKET_LOG_LEVEL": "WARNING",
        "MARKET_DEFAULT_LANGUAGE": "en",
        **env,  # the messages checked below are the English ones
    }
    if "MARKET_NEW_USER_PASSWORD" not in env:
        environment["MARKET_NEW_USER_PASSWORD"] = None
    if environment.get("MARKET_ENV") == "production":
        environment["MARKET_CLOCK_OFFSET_SECONDS"] = (
            None  # a moved clock is refused there; these tests check other refusals
        )
    return environment


def market_process(data_dir: Path, database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed `market` command in a process of its own."""
    environment = {**os.environ, **_environment(data_dir, database_url, env)}
    environment = {name: value for name, value in environment.items() if value is not None}
    return subprocess.run(
        [str(MARKET), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@dataclass
class Done:
    """A command's outcome, as `subprocess.run` reports one."""

    returncode: int
    stdout: str
    stderr: str


def market(data_dir: Path, database_url: str, *args: str, **env: str) -> Done:
    """The `market` command called in this process, with an empty standard input, as the process above.

    It runs on a thread of its own, since the commands start their own event loop (the calling test may be in one).
    An exception the command lets escape is reported as the process would print it: a traceback on standard error.
    """
    outcome: list[Done] = []
    configured = market_settings._configured  # a command configures the process's settings; the tests' stay

    def run() -> None:
        result = CliRunner().invoke(
            main, list(args), env=_environment(data_dir, database_url, env), prog_name="market", input=""
        )
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(result.exception))
        outcome.append(Done(result.exit_code, result.stdout, stderr))

    try:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=180)
    finally:
        market_settings._configured = configured
    assert outcome, f"`market {' '.join(args)}` did not finish"
    return outcome[0]


@pytest.fixture(autouse=True)
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """`market serve` called in this process must refuse before serving: serving here fails the test at once."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("`market serve` started serving")

    monkeypatch.setattr("uvicorn.run", refuse)


def assert_clean_failure(done: Done | subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Non-zero, says why in words, and shows no traceback."""
    assert done.returncode != 0, done.stdout
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    for phrase in phrases:
        assert phrase in output, output


# --- help ---------------------------------------------------------------------------------------------


def test_market_help_lists_the_commands(tmp_path: Path) -> None:
    done = market_process(tmp_path, "sqlite+aiosqlite:///unused.db", "--help")
    assert done.returncode == 0, done.stderr
    for name in ("serve", "db", "demo", "user", "audit", "worker"):
        assert f"  {name} " in done.stdout


def test_every_command_is_reachable() -> None:
    assert {
        ("db", "upgrade"),
        ("db", "current"),
        ("db", "downgrade"),
        ("user", "create"),
        ("audit", "verify"),
        ("demo",),
        ("worker",),
        ("serve",),
    } <= set(COMMANDS)


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(path) for path in COMMANDS])
def test_help_on_every_command(tmp_path: Path, path: tuple[str, ...]) -> None:
    done = market(tmp_path, "sqlite+aiosqlite:///unused.db", *path, "--help")
    assert done.returncode == 0, done.stderr
    assert f"Usage: market {' '.join(path)}" in done.stdout
    assert not (tmp_path / "unused.db").exists()  # asking for help touches nothing


# --- users --------------------------------------------------------------------------------------------


async def test_user_create_makes_an_operator_who_can_sign_in(tmp_path: Path, database_url: str, web) -> None:
    done = market(
        tmp_path,
        database_url,
        "user",
        "create",
        "--email",
        "Chief@Secretariat.example.go.kr",
        "--role",
        "operator",
        "--org",
        "Digital Marketplace Secretariat",
        "--name",
        "Chief Operator",
        MARKET_NEW_USER_PASSWORD=PASSWORD,
    )
    assert done.returncode == 0, done.stderr
    assert "Created user chief@secretariat.example.go.kr" in done.stdout
    response = await web.login("chief@secretariat.example.go.kr", PASSWORD)
    assert response.status_code == 303
    home = await web.client.get("/")
    assert "Chief Operator" in home.text
    async with web.sessions() as session:
        user = await session.scalar(sa.select(User).where(User.email == "chief@secretariat.example.go.kr"))
        organisation = await session.get(Organisation, user.organisation_id)
    assert user.role == "admin" and organisation.kind == "operator"
    assert await count(web.sessions, AuditEvent, AuditEvent.action == "user.create") == 1


async def test_user_create_adds_a_second_user_to_the_existing_organisation(
    tmp_path: Path, database_url: str, sessions
) -> None:
    for email in ("one@secretariat.example.go.kr", "two@secretariat.example.go.kr"):
        done = market(
            tmp_path,
            database_url,
            "user",
            "create",
            "--email",
            email,
            "--role",
            "operator",
            "--org",
            "Secretariat",
            MARKET_NEW_USER_PASSWORD=PASSWORD,
        )
        assert done.returncode == 0, done.stderr
    assert await count(sessions, Organisation, Organisation.name == "Secretariat") == 1
    assert await count(sessions, User) == 2


async def test_user_create_with_a_bad_email_says_so_and_creates_nothing(
    tmp_path: Path, database_url: str, sessions
) -> None:
    done = market(
        tmp_path,
        database_url,
        "user",
        "create",
        "--email",
        "not-an-address",
        "--role",
        "operator",
        "--org",
        "Secretariat",
        MARKET_NEW_USER_PASSWORD=PASSWORD,
    )
    assert_clean_failure(done, "e-mail")
    assert await count(sessions, User) == 0
    assert await count(sessions, Organisation) == 0  # the organisation went with the failed transaction


async def test_user_create_with_a_weak_password_says_so(tmp_path: Path, database_url: str, sessions) -> None:
    done = market(
        tmp_path,
        database_url,
        "user",
        "create",
        "--email",
        "chief@secretariat.example.go.kr",
        "--role",
        "operator",
        "--org",
        "Secretariat",
        MARKET_NEW_USER_PASSWORD="short",
    )
    assert_clean_failure(done, "assword")
    assert await count(sessions, User) == 0


async def test_user_create_with_a_guessable_password_says_so(tmp_path: Path, database_url: str, sessions) -> None:
    done = market(
        tmp_path,
        database_url,
        "user",
        "create",
        "--email",
        "chief@secretariat.example.go.kr",
        "--role",
        "operator",
        "--org",
        "Secretariat",
        MARKET_NEW_USER_PASSWORD="password1234",
    )
    assert_clean_failure(done, "guess")
    assert await count(sessions, User) == 0


async def test_user_create_twice_with_one_email_is_refused(tmp_path: Path, database_url: str, sessions) -> None:
    arguments = (
        "user",
        "create",
        "--email",
        "chief@secretariat.example.go.kr",
        "--role",
        "operator",
        "--org",
        "Secretariat",
    )
    assert market(tmp_path, database_url, *arguments, MARKET_NEW_USER_PASSWORD=PASSWORD).returncode == 0
    assert_clean_failure(market(tmp_path, database_url, *arguments, MARKET_NEW_USER_PASSWORD=PASSWORD))
    assert await count(sessions, User) == 1


def test_user_create_with_an_unknown_role_is_refused_by_the_option(tmp_path: Path) -> None:
    done = market(
        tmp_path,
        "sqlite+aiosqlite:///unused.db",
        "user",
        "create",
        "--email",
        "a@b.kr",
        "--role",
        "king",
        "--org",
        "X",
        MARKET_NEW_USER_PASSWORD=PASSWORD,
    )
    assert_clean_failure(done, "--role")


# --- demo and audit -------------------------------------------------------------------------------------


async def test_demo_twice_creates_nothing_the_second_time(tmp_path: Path, database_url: str, sessions) -> None:
    first = market(tmp_path, database_url, "demo")
    assert first.returncode == 0, first.stderr
    assert "Demo data loaded" in first.stdout
    users, organisations, events = (
        await count(sessions, User),
        await count(sessions, Organisation),
        await count(sessions, AuditEvent),
    )
    assert users > 0 and organisations > 0 and events > 0
    second = market(tmp_path, database_url, "demo")
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert (await count(sessions, User), await count(sessions, Organisation), await count(sessions, AuditEvent)) == (
        users,
        organisations,
        events,
    )


async def test_audit_verify_passes_on_a_fresh_demo_database(tmp_path: Path, database_url: str) -> None:
    assert market(tmp_path, database_url, "demo").returncode == 0
    done = market(tmp_path, database_url, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Audit chain intact" in done.stdout


async def test_audit_verify_fails_naming_the_broken_event(tmp_path: Path, database_url: str, sessions) -> None:
    assert market(tmp_path, database_url, "demo").returncode == 0
    async with sessions() as session, session.begin():
        seq = await session.scalar(sa.select(AuditEvent.seq).order_by(AuditEvent.seq).offset(2).limit(1))
        await session.execute(sa.update(AuditEvent).where(AuditEvent.seq == seq).values(summary='{"forged": true}'))
    done = market_process(tmp_path, database_url, "audit", "verify")
    assert done.returncode != 0
    assert f"BROKEN at event {seq}" in done.stderr


# --- the database's state -------------------------------------------------------------------------------


@pytest.mark.sqlite_only
@pytest.mark.parametrize("command", [("demo",), ("audit", "verify"), ("worker", "--once")], ids=" ".join)
def test_commands_on_a_database_not_yet_migrated_say_to_upgrade(tmp_path: Path, command: tuple[str, ...]) -> None:
    done = market(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", *command)
    assert_clean_failure(done, "market db upgrade")


@pytest.mark.sqlite_only
def test_serve_refuses_a_database_not_yet_migrated(tmp_path: Path) -> None:
    done = market(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", "serve", "--port", "0")
    assert_clean_failure(done, "market db upgrade")


@pytest.mark.sqlite_only
def test_upgrade_creates_the_data_folder_and_the_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "var"
    done = market(data_dir, f"sqlite+aiosqlite:///{data_dir / 'market.db'}", "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert (data_dir / "market.db").exists()
    assert market(data_dir, f"sqlite+aiosqlite:///{data_dir / 'market.db'}", "db", "current").returncode == 0


@pytest.mark.sqlite_only
def test_db_current_on_a_missing_database_says_empty_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "market.db"
    done = market(tmp_path, f"sqlite+aiosqlite:///{missing}", "db", "current")
    assert_clean_failure(done, "market db upgrade")
    assert "database: empty" in done.stdout
    assert not missing.exists()


def test_a_bad_setting_is_reported_without_a_traceback(tmp_path: Path) -> None:
    done = market_process(tmp_path, "sqlite+aiosqlite:///unused.db", "db", "current", MARKET_TIMEZONE="Mars/Olympus")
    assert_clean_failure(done, "MARKET_TIMEZONE")


def test_production_without_a_secret_key_refuses_to_serve(tmp_path: Path) -> None:
    done = market(tmp_path, "sqlite+aiosqlite:///unused.db", "serve", MARKET_ENV="production", MARKET_SECRET_KEY="")
    assert_clean_failure(done, "MARKET_SECRET_KEY")
