"""Who is asking: login sessions (cookie), API tokens (Bearer), throttling of failed logins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from litestar.connection import ASGIConnection
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from market.database import changed_rows, row_id, utcnow
from market.errors import TooManyRequests
from market.forwarded import client_address
from market.i18n import _
from market.models import ApiToken, LoginFailure, LoginSession, Organisation, User
from market.security import new_token, token_hash
from market.settings import Settings

SESSION_COOKIE = "market_session"
TOKEN_PREFIX = "mkt_"
LAST_SEEN_RESOLUTION = timedelta(minutes=1)  # write last_seen at most this often


@dataclass(frozen=True)
class Principal:
    """The signed-in user as handlers and services see them."""

    user_id: int
    email: str
    name: str
    organisation_id: int
    organisation_kind: str
    organisation_name: str
    role: str
    language: str | None
    ip: str
    via_token: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def is_kind(self, *kinds: str) -> bool:
        return self.organisation_kind in kinds


@dataclass(frozen=True)
class SystemActor:
    """The actor for CLI and worker changes in the audit trail."""

    email: str = "system"
    user_id: int | None = None
    organisation_id: int | None = None
    ip: str = ""


def client_ip(connection: ASGIConnection) -> str:
    """The client's address as `market.forwarded` decides it (a trusted proxy's word, else the socket's peer)."""
    return client_address(connection.scope)


def _principal(user: User, organisation: Organisation, ip: str, via_token: bool) -> Principal:
    return Principal(
        user_id=row_id(user),
        email=user.email,
        name=user.name,
        organisation_id=row_id(organisation),
        organisation_kind=organisation.kind,
        organisation_name=organisation.name,
        role=user.role,
        language=user.language,
        ip=ip,
        via_token=via_token,
    )


async def _active_user(session: AsyncSession, user_id: int) -> tuple[User, Organisation] | None:
    row = (
        await session.execute(
            sa.select(User, Organisation)
            .join(Organisation, col(Organisation.id) == col(User.organisation_id))
            .where(
                col(User.id) == user_id,
                col(User.active).is_(True),
                col(User.email_verified_at).is_not(None),
                col(Organisation.active).is_(True),
            )
        )
    ).first()
    return (row[0], row[1]) if row else None


async def principal_from_session(session: AsyncSession, settings: Settings, raw: str, ip: str) -> Principal | None:
    login = await session.scalar(sa.select(LoginSession).where(col(LoginSession.token_hash) == token_hash(raw)))
    if login is None:
        return None
    now = utcnow()
    if now - login.last_seen_at > timedelta(
        minutes=settings.session_idle_minutes
    ) or now - login.created_at > timedelta(hours=settings.session_absolute_hours):
        await session.delete(login)
        await session.flush()
        return None
    found = await _active_user(session, login.user_id)
    if found is None:
        return None
    if now - login.last_seen_at > LAST_SEEN_RESOLUTION:
        login.last_seen_at = now
    return _principal(*found, ip=ip, via_token=False)


async def principal_from_token(session: AsyncSession, raw: str, ip: str) -> Principal | None:
    """An expired token is refused like a revoked one."""
    token = await session.scalar(
        sa.select(ApiToken).where(
            col(ApiToken.token_hash) == token_hash(raw),
            col(ApiToken.revoked_at).is_(None),
            col(ApiToken.expires_at) > utcnow(),
        )
    )
    if token is None:
        return None
    found = await _active_user(session, token.user_id)
    if found is None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_SEEN_RESOLUTION:
        token.last_used_at = now
    return _principal(*found, ip=ip, via_token=True)


async def start_session(session: AsyncSession, user: User, ip: str, user_agent: str) -> str:
    """A fresh session id at every login; the raw id goes only into the cookie."""
    raw = new_token()
    session.add(LoginSession(token_hash=token_hash(raw), user_id=row_id(user), ip=ip, user_agent=user_agent[:300]))
    user.last_login_at = utcnow()
    await session.flush()
    return raw


async def end_session(session: AsyncSession, raw: str | None) -> None:
    if raw:
        await session.execute(sa.delete(LoginSession).where(col(LoginSession.token_hash) == token_hash(raw)))


async def end_all_sessions(session: AsyncSession, user_id: int) -> None:
    await session.execute(sa.delete(LoginSession).where(col(LoginSession.user_id) == user_id))


async def revoke_all_tokens(session: AsyncSession, user_id: int) -> int:
    """Revoke every API token of the user still in force; how many were."""
    return await changed_rows(
        session,
        sa.update(ApiToken)
        .where(col(ApiToken.user_id) == user_id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=utcnow()),
    )


# --- throttling ---------------------------------------------------------------------------------


async def check_login_allowed(session: AsyncSession, settings: Settings, account_key: str, ip: str) -> None:
    """The same answer whether or not the account exists: the count is kept per submitted address."""
    since = utcnow() - timedelta(minutes=settings.login_window_minutes)
    per_account = await session.scalar(
        sa.select(sa.func.count()).where(col(LoginFailure.account_key) == account_key, col(LoginFailure.at) >= since)
    )
    per_address = await session.scalar(
        sa.select(sa.func.count()).where(col(LoginFailure.ip) == ip, col(LoginFailure.at) >= since)
    )
    if (per_account or 0) >= settings.login_failures_per_account or (
        per_address or 0
    ) >= settings.login_failures_per_address:
        minutes = settings.login_window_minutes
        raise TooManyRequests(
            _("Too many failed sign-in attempts. Try again in %(minutes)s minutes.", minutes=minutes),
            retry_after=minutes * 60,
        )


async def record_login_failure(session: AsyncSession, account_key: str, ip: str) -> None:
    session.add(LoginFailure(account_key=account_key, ip=ip))
    await session.flush()


async def clear_login_failures(session: AsyncSession, account_key: str) -> None:
    await session.execute(sa.delete(LoginFailure).where(col(LoginFailure.account_key) == account_key))


# --- middleware ---------------------------------------------------------------------------------


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` to a Principal or None. `/api` trusts only Bearer tokens, pages only the cookie."""

    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        from market.state import db_config_of, settings_of

        app = connection.scope["litestar_app"]
        settings = settings_of(app)
        ip = client_ip(connection)
        is_api = connection.scope["path"].startswith("/api")
        header = connection.headers.get("authorization", "")
        raw_cookie = connection.cookies.get(settings.cookie(SESSION_COOKIE))
        if is_api and not header.lower().startswith("bearer "):
            return AuthenticationResult(user=None, auth=None)
        if not is_api and not raw_cookie:
            return AuthenticationResult(user=None, auth=None)
        session = db_config_of(app).provide_session(app.state, connection.scope)
        if is_api:
            principal = await principal_from_token(session, header[7:].strip(), ip)
        else:
            principal = await principal_from_session(session, settings, raw_cookie, ip)  # type: ignore[arg-type]
        return AuthenticationResult(user=principal, auth=None)
