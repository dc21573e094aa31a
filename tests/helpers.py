"""Test helpers: factories that go through the real services, and a form-filling client."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market import accounts
from market.auth import SystemActor
from market.models import AuditEvent, Organisation, OutboxMessage, User, default_role

PASSWORD = "correct-horse-battery"
_numbers = itertools.count(1)
CSRF_FIELD = re.compile(r'name="_csrf_token" value="([^"]+)"')


# The day the tests live on (tests/conftest.py moves the clock there for every test, and `tests.processes.cli_env`
# for every process a test starts).
TEST_DAY = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)  # 10:00 in Seoul, a Monday
# The tests' year: a date a test writes is `date(YEAR, 12, 31)`, never a calendar year, so it keeps its place
# (before or after the tests' day) whatever day the suite runs on and wherever TEST_DAY is moved.
YEAR = TEST_DAY.year


def business_number(seed: int) -> str:
    """A valid Korean business registration number derived from `seed`."""
    base = f"{(seed * 7919) % 10**9:09d}"
    for check in range(10):
        if accounts.valid_business_number(base + str(check)):
            return base + str(check)
    raise AssertionError("no check digit")  # unreachable: every base has one


async def make_organisation(
    sessions: async_sessionmaker[AsyncSession], kind: str, name: str | None = None, **fields: Any
) -> Organisation:
    n = next(_numbers)
    number = fields.pop("registration_number", None)
    if number is None and kind == "provider":
        number = business_number(n)
    if number is None and kind == "agency":
        number = f"{1000000 + n}"
    async with sessions() as session, session.begin():
        return await accounts.create_organisation(
            session,
            SystemActor(email="test"),
            kind=kind,
            name=name or f"{kind.title()} {n}",
            registration_number=number,
            **fields,
        )


async def make_user(
    sessions: async_sessionmaker[AsyncSession],
    organisation: Organisation,
    role: str = "admin",
    email: str | None = None,
    name: str = "Test User",
    signing_limit: int = 0,
) -> User:
    """A user of `organisation`; `role` "member" means the kind's first role (an agency's buyer, a provider's signer)."""
    email = email or f"user{next(_numbers)}@{organisation.kind}.example.kr"
    role = default_role(organisation.kind) if role == "member" else role
    async with sessions() as session, session.begin():
        return await accounts.create_user(
            session,
            SystemActor(email="test"),
            organisation=organisation,
            email=email,
            name=name,
            password=PASSWORD,
            role=role,
            signing_limit=signing_limit,
        )


async def mails_to(sessions: async_sessionmaker[AsyncSession], email: str) -> list[dict[str, Any]]:
    """The e-mails queued in the outbox for `email`, oldest first (each with `subject` and `body`)."""
    async with sessions() as session:
        payloads = (
            await session.scalars(
                sa.select(OutboxMessage.payload).where(OutboxMessage.kind == "email").order_by(OutboxMessage.id)
            )
        ).all()
    return [mail for mail in map(json.loads, payloads) if mail["to"] == email]


CONFIRMATION_LINK = re.compile(r"https?://\S+?(/register/confirm/\S+)")


async def confirmation_links(sessions: async_sessionmaker[AsyncSession], email: str) -> list[str]:
    """The paths of the address-confirmation links mailed to `email`, oldest first."""
    return [
        match.group(1) for mail in await mails_to(sessions, email) if (match := CONFIRMATION_LINK.search(mail["body"]))
    ]


async def audit_actions(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return list((await session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq))).all())


async def count(sessions: async_sessionmaker[AsyncSession], model: type[Any], *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0)


@dataclass
class Browserless:
    """Drives pages as a browser would: GET a form for its CSRF token, then POST it."""

    client: AsyncTestClient[Litestar]
    sessions: async_sessionmaker[AsyncSession]

    async def csrf(self, path: str = "/login") -> str:
        response = await self.client.get(path)
        match = CSRF_FIELD.search(response.text)
        assert match, f"no CSRF field on {path} ({response.status_code})"
        return match.group(1)

    async def submit(
        self, path: str, data: dict[str, Any] | None = None, *, form_page: str | None = None
    ) -> httpx.Response:
        token = await self.csrf(form_page or path)
        return await self.client.post(path, data={"_csrf_token": token, **(data or {})}, follow_redirects=False)

    async def login(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return await self.submit("/login", {"email": email, "password": password}, form_page="/login")

    async def login_as(self, kind: str, role: str = "admin", organisation: Organisation | None = None) -> User:
        organisation = organisation or await make_organisation(self.sessions, kind)
        user = await make_user(self.sessions, organisation, role=role)
        response = await self.login(user.email)
        assert response.status_code == 303, response.text
        return user

    async def confirm(self, email: str) -> httpx.Response:
        """Open the last confirmation link mailed to `email`, as its owner would."""
        links = await confirmation_links(self.sessions, email)
        assert links, f"no confirmation link was mailed to {email}"
        return await self.client.get(links[-1], follow_redirects=False)

    async def logout(self) -> httpx.Response:
        return await self.submit("/logout", form_page="/")
