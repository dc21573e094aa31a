"""Settings come from MARKET_* variables; a configuration that cannot work is refused with what to set."""

from __future__ import annotations

import stat
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from market.app import create_app
from market.auth import SESSION_COOKIE
from market.settings import Settings, SettingsError
from tests.helpers import Browserless, make_organisation, make_user


def test_defaults_are_a_development_marketplace_in_korean_on_seoul_time(tmp_path: Path) -> None:
    settings = Settings.from_env({"MARKET_DATA_DIR": str(tmp_path)})
    assert settings.env == "development" and not settings.is_production
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'market.db'}"
    assert settings.is_sqlite
    assert settings.default_language == "ko"
    assert settings.timezone == "Asia/Seoul" and settings.zone.key == "Asia/Seoul"
    assert settings.worker == "embedded"
    assert settings.base_url == "http://127.0.0.1:8000" and not settings.secure_cookies
    assert settings.smtp_url == ""
    assert (settings.session_idle_minutes, settings.session_absolute_hours) == (30, 12)


def test_environment_variables_override_the_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "MARKET_DATA_DIR": str(tmp_path),
            "MARKET_DEFAULT_LANGUAGE": "en",
            "MARKET_TIMEZONE": "Europe/London",
            "MARKET_BASE_URL": "https://market.example.kr/",
            "MARKET_WORKER": "off",
            "MARKET_SESSION_IDLE_MINUTES": "10",
            "MARKET_LOGIN_FAILURES_PER_ACCOUNT": "3",
        }
    )
    assert settings.default_language == "en"
    assert settings.timezone == "Europe/London"
    assert settings.base_url == "https://market.example.kr"  # the trailing slash is dropped
    assert settings.worker == "off"
    assert settings.session_idle_minutes == 10
    assert settings.login_failures_per_account == 3


def test_production_without_a_secret_key_is_refused_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MARKET_SECRET_KEY"):
        Settings.from_env({"MARKET_ENV": "production", "MARKET_DATA_DIR": str(tmp_path)})
    assert not (tmp_path / "secret_key").exists()  # production never falls back to a generated key


def test_production_with_a_secret_key_starts(tmp_path: Path) -> None:
    key = "k" * 48
    settings = Settings.from_env(
        {"MARKET_ENV": "production", "MARKET_DATA_DIR": str(tmp_path), "MARKET_SECRET_KEY": key}
    )
    assert settings.is_production and settings.secret_key == key


def test_a_short_secret_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MARKET_SECRET_KEY must be at least 32"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_SECRET_KEY": "short"})


def test_development_secret_is_generated_once_into_the_data_dir_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = Settings.from_env({"MARKET_DATA_DIR": str(data_dir)})
    stored = data_dir / "secret_key"
    assert stored.read_text().strip() == first.secret_key
    assert len(first.secret_key) >= 32
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    second = Settings.from_env({"MARKET_DATA_DIR": str(data_dir)})
    assert second.secret_key == first.secret_key


def test_an_empty_secret_file_is_refused_rather_than_used(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(SettingsError, match="secret_key"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize("language", ["fr", "", "KO"])
def test_unknown_language_is_refused(tmp_path: Path, language: str) -> None:
    with pytest.raises(SettingsError, match="MARKET_DEFAULT_LANGUAGE"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_DEFAULT_LANGUAGE": language})


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Asia/Seou", "../etc/passwd"])
def test_unknown_time_zone_is_refused(tmp_path: Path, zone: str) -> None:
    with pytest.raises(SettingsError, match="MARKET_TIMEZONE"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_TIMEZONE": zone})


def test_unknown_environment_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MARKET_ENV"):
        Settings.from_env({"MARKET_ENV": "prod", "MARKET_DATA_DIR": str(tmp_path)})


def test_unknown_worker_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MARKET_WORKER"):
        Settings.from_env({"MARKET_WORKER": "threads", "MARKET_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize("value", ["thirty", "0", "-5"])
def test_a_number_setting_that_is_not_a_positive_whole_number_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match="MARKET_SESSION_IDLE_MINUTES"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_SESSION_IDLE_MINUTES": value})


def test_smtp_url_with_an_unknown_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MARKET_SMTP_URL"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_SMTP_URL": "mail.example.kr:25"})


def test_base_url_without_a_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MARKET_BASE_URL"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_BASE_URL": "market.example.kr"})


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u@db:5432/market", "postgresql+asyncpg://u@db:5432/market"),
        ("postgres://u@db/market", "postgresql+asyncpg://u@db/market"),
        ("sqlite:////srv/market.db", "sqlite+aiosqlite:////srv/market.db"),
        ("postgresql+asyncpg://u@db/market", "postgresql+asyncpg://u@db/market"),
    ],
)
def test_database_url_short_forms_get_the_async_driver(tmp_path: Path, given: str, used: str) -> None:
    settings = Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_DATABASE_URL": given})
    assert settings.database_url == used


def test_database_url_with_an_unsupported_driver_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="MARKET_DATABASE_URL"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_DATABASE_URL": "mysql://u@db/market"})


def _set_cookie(response_headers: list[str], name: str) -> str:
    for header in response_headers:
        if SimpleCookie(header).get(name) is not None:
            return header
    raise AssertionError(f"no Set-Cookie for {name} in {response_headers}")


async def test_session_cookie_is_secure_httponly_and_lax_when_the_base_url_is_https(
    settings: Settings, sessions
) -> None:
    app = create_app(settings.with_(base_url="https://market.example.kr"))
    async with AsyncTestClient(app=app, base_url="https://testserver.local") as client:
        web = Browserless(client, sessions)
        user = await make_user(sessions, await make_organisation(sessions, "agency"))
        form = await client.get("/login")
        csrf = _set_cookie(form.headers.get_list("set-cookie"), "__Host-csrftoken")
        assert "secure" in {part.strip().lower() for part in csrf.split(";")}
        client.cookies.clear()
        response = await web.login(user.email)
        assert response.status_code == 303
        header = _set_cookie(response.headers.get_list("set-cookie"), "__Host-" + SESSION_COOKIE)
        attributes = {part.strip().lower() for part in header.split(";")}
        assert "secure" in attributes
        assert "httponly" in attributes
        assert "samesite=lax" in attributes
        assert "path=/" in attributes and not any(part.startswith("domain=") for part in attributes)


async def test_session_cookie_is_not_marked_secure_on_plain_http(web) -> None:
    user = await make_user(web.sessions, await make_organisation(web.sessions, "agency"))
    response = await web.login(user.email)
    header = _set_cookie(response.headers.get_list("set-cookie"), SESSION_COOKIE)
    attributes = {part.strip().lower() for part in header.split(";")}
    assert "secure" not in attributes
    assert "httponly" in attributes and "samesite=lax" in attributes


def test_the_ocid_prefix_and_invoice_due_days_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"MARKET_DATA_DIR": str(tmp_path), "MARKET_OCID_PREFIX": "ocds-abc123", "MARKET_INVOICE_DUE_DAYS": "14"}
    )
    assert (settings.ocid_prefix, settings.invoice_due_days) == ("ocds-abc123", 14)
    with pytest.raises(SettingsError, match="MARKET_OCID_PREFIX"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_OCID_PREFIX": "market"})
