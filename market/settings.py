"""Settings read once from `MARKET_*` environment variables into a frozen dataclass."""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LANGUAGES = ("ko", "en")
ENVIRONMENTS = ("development", "production")


class SettingsError(RuntimeError):
    """The configuration cannot work; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    data_dir: Path = Path("var")
    database_url: str = ""
    secret_key: str = ""
    base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Asia/Seoul"
    default_language: str = "ko"
    smtp_url: str = ""
    mail_from: str = "marketplace@localhost"
    worker: str = "embedded"  # "embedded" runs the outbox loop inside the server; "off" leaves it to `market worker`
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_window_minutes: int = 15
    api_requests_per_minute: int = 300  # per API token (or per address without one)
    stripe_api_key: str = ""
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: str = ""
    redis_url: str = ""
    ocid_prefix: str = "ocds-kr0000"  # the publisher's registered OCDS prefix; each contract's ocid starts with it
    invoice_due_days: int = 30
    # How long this process may answer a search from its memory; a change made through another process is seen
    # within it, one made through this process at once. 0 turns the cache off.
    search_cache_seconds: float = 5.0
    # The reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (addresses or CIDR networks);
    # none by default: the socket's peer is the client.
    trusted_proxies: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def cookie(self, name: str) -> str:
        """A cookie's name: with the `__Host-` prefix over https, so the browser keeps it to this host, Secure, path /."""
        return f"__Host-{name}" if self.secure_cookies else name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)

        def get(name: str, default: str) -> str:
            return env.get(f"MARKET_{name}", default)

        def number(name: str, default: int) -> int:
            raw = get(name, str(default)).strip()
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"MARKET_{name} must be a whole number, not {raw!r}") from None
            if value < 1:
                raise SettingsError(f"MARKET_{name} must be at least 1, not {value}")
            return value

        def seconds(name: str, default: float) -> float:
            raw = get(name, str(default)).strip()
            try:
                value = float(raw)
            except ValueError:
                raise SettingsError(f"MARKET_{name} must be a number of seconds, not {raw!r}") from None
            if not math.isfinite(value) or value < 0:
                raise SettingsError(f"MARKET_{name} must be a number of seconds, 0 or more, not {raw!r}")
            return value

        if get("ENV", "development") == "production" and get("CLOCK_OFFSET_SECONDS", ""):
            raise SettingsError(
                "MARKET_CLOCK_OFFSET_SECONDS moves the clock for tests and training; it is refused in production"
            )
        data_dir = Path(get("DATA_DIR", "var"))
        settings = cls(
            env=get("ENV", "development"),
            data_dir=data_dir,
            database_url=async_driver(get("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'market.db'}")),
            secret_key=get("SECRET_KEY", ""),
            base_url=get("BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            timezone=get("TIMEZONE", "Asia/Seoul"),
            default_language=get("DEFAULT_LANGUAGE", "ko"),
            smtp_url=get("SMTP_URL", ""),
            mail_from=get("MAIL_FROM", "marketplace@localhost"),
            worker=get("WORKER", "embedded"),
            session_idle_minutes=number("SESSION_IDLE_MINUTES", cls.session_idle_minutes),
            session_absolute_hours=number("SESSION_ABSOLUTE_HOURS", cls.session_absolute_hours),
            login_failures_per_account=number("LOGIN_FAILURES_PER_ACCOUNT", cls.login_failures_per_account),
            login_failures_per_address=number("LOGIN_FAILURES_PER_ADDRESS", cls.login_failures_per_address),
            login_window_minutes=number("LOGIN_WINDOW_MINUTES", cls.login_window_minutes),
            api_requests_per_minute=number("API_REQUESTS_PER_MINUTE", cls.api_requests_per_minute),
            stripe_api_key=get("STRIPE_API_KEY", ""),
            stripe_api_base=get("STRIPE_API_BASE", "https://api.stripe.com"),
            stripe_webhook_secret=get("STRIPE_WEBHOOK_SECRET", ""),
            redis_url=get("REDIS_URL", ""),
            ocid_prefix=get("OCID_PREFIX", cls.ocid_prefix),
            invoice_due_days=number("INVOICE_DUE_DAYS", cls.invoice_due_days),
            search_cache_seconds=seconds("SEARCH_CACHE_SECONDS", cls.search_cache_seconds),
            trusted_proxies=tuple(entry.strip() for entry in get("TRUSTED_PROXIES", "").split(",") if entry.strip()),
        )
        return settings.checked()

    def checked(self) -> Settings:
        """Refuse a configuration that cannot work, saying what to change; fill the development secret."""
        if self.env not in ENVIRONMENTS:
            raise SettingsError(f"MARKET_ENV must be one of {', '.join(ENVIRONMENTS)}, not {self.env!r}")
        if self.default_language not in LANGUAGES:
            raise SettingsError(
                f"MARKET_DEFAULT_LANGUAGE must be one of {', '.join(LANGUAGES)}, not {self.default_language!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"MARKET_TIMEZONE {self.timezone!r} is not a known time zone") from exc
        if self.worker not in {"embedded", "off"}:
            raise SettingsError("MARKET_WORKER must be 'embedded' or 'off'")
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtps://", "smtp+starttls://")):
            raise SettingsError("MARKET_SMTP_URL must start with smtp://, smtps:// or smtp+starttls://")
        if not self.base_url.startswith(("http://", "https://")):
            raise SettingsError(f"MARKET_BASE_URL must start with http:// or https://, not {self.base_url!r}")
        if self.database_url and not self.database_url.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:")):
            raise SettingsError(
                "MARKET_DATABASE_URL must use sqlite+aiosqlite:/// (a file) or postgresql+asyncpg:// (a server), "
                f"not {self.database_url.split(':', 1)[0]}:"
            )
        if not self.ocid_prefix.startswith("ocds-") or len(self.ocid_prefix) != 11:
            raise SettingsError(
                f"MARKET_OCID_PREFIX must be an OCDS prefix: 'ocds-' and six characters, not {self.ocid_prefix!r}"
            )
        if self.redis_url and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("MARKET_REDIS_URL must start with redis://, rediss:// or unix://")
        if not math.isfinite(self.search_cache_seconds) or self.search_cache_seconds < 0:
            raise SettingsError(
                f"MARKET_SEARCH_CACHE_SECONDS must be a number of seconds, 0 or more, not {self.search_cache_seconds!r}"
            )
        for entry in self.trusted_proxies:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SettingsError(
                    f"MARKET_TRUSTED_PROXIES must list IP addresses or networks separated by commas (10.0.0.5, 10.1.0.0/16), not {entry!r}"
                ) from None
        if self.secret_key:
            if len(self.secret_key) < 32:
                raise SettingsError("MARKET_SECRET_KEY must be at least 32 characters long")
            return self
        if self.is_production:
            raise SettingsError(
                "MARKET_SECRET_KEY is not set: in production (MARKET_ENV=production) the secret key must be "
                "given, for example `export MARKET_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(48))')`"
            )
        return replace(self, secret_key=_development_secret(self.data_dir))


def async_driver(url: str) -> str:
    """Accept the usual short forms (postgres://, postgresql://, sqlite://) and name the async driver."""
    for short, full in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(short):
            return full + url[len(short) :]
    return url


def _development_secret(data_dir: Path) -> str:
    """A secret generated once into the data folder, so restarts keep sessions valid.

    The file is created exclusively and readable by its owner only; when several server processes
    start together, the first one writes it and the others wait for that same key.
    """
    path = data_dir / "secret_key"
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def _read_secret(path: Path) -> str:
    for _ in range(100):  # a process starting at the same moment may still be writing it
        key = path.read_text().strip()
        if key:
            break
        time.sleep(0.02)
    if len(key) < 32:
        raise SettingsError(f"{path} does not hold a usable secret key; delete it to have a new one generated")
    return key


# The process's settings, for code that runs without a request (event subscribers, home panels):
# set by `create_app` and by the CLI; read from the environment when neither ran.
_configured: Settings | None = None


def configure(settings: Settings) -> Settings:
    global _configured
    _configured = settings
    return settings


def configured() -> Settings:
    return _configured or configure(Settings.from_env())
