"""Test data for the committee: the secretariat, a committee with a chair, providers and submitted services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import committee  # noqa: F401  (registers the submission subscribers)
from catalog.models import Plan, Service, ServiceStatus, ServiceVersion, VersionState
from committee.models import Assignment, Case
from market import clock, hooks
from market.auth import Principal, SystemActor
from market.database import utcnow
from market.models import ApiToken, Appointment, Organisation, User
from market.security import new_token, token_hash
from tests.helpers import PASSWORD, make_organisation

_password_hash: list[str] = []


async def make_user(
    sessions: async_sessionmaker[AsyncSession], organisation: Organisation, role: str = "admin", name: str = "Test User"
) -> User:
    """A user row with one password hash computed once per run (hashing is deliberately slow)."""
    if not _password_hash:
        from market.security import hash_password

        _password_hash.append(hash_password(PASSWORD))
    async with sessions() as session, session.begin():
        user = User(
            email=f"user{next(_names)}@{organisation.kind}.example.kr",
            name=name,
            password_hash=_password_hash[0],
            organisation_id=organisation.id,
            role=role,
            email_verified_at=utcnow(),
        )  # type: ignore[arg-type]
        session.add(user)
    return user


_names = itertools.count(1)

PASSING = {
    "management": {"passed": True, "score": 80, "comment": ""},
    "sanctions": {"passed": True, "score": None, "comment": ""},
    "security": {"passed": True, "score": 85, "comment": ""},
    "stability": {"passed": True, "score": 75, "comment": ""},
    "support": {"passed": True, "score": 70, "comment": ""},
}


def failing(code: str, comment: str, **scores: int) -> dict[str, Any]:
    answers = {key: dict(value) for key, value in PASSING.items()}
    answers[code] = {**answers[code], "passed": False, "comment": comment}
    for key, score in scores.items():
        answers[key]["score"] = score
    return answers


def principal(user: User, organisation: Organisation) -> Principal:
    return Principal(
        user.id,
        user.email,
        user.name,
        organisation.id,
        organisation.kind,
        organisation.name,
        user.role,
        None,
        "127.0.0.1",
    )  # type: ignore[arg-type]


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    operator_org: Organisation
    operator: User
    committee_org: Organisation
    chair: User
    members: list[User]
    provider: Organisation
    provider_user: User
    tokens: dict[int, str] = field(default_factory=dict)

    def as_(self, user: User) -> Principal:
        organisation = {
            self.operator_org.id: self.operator_org,
            self.committee_org.id: self.committee_org,
            self.provider.id: self.provider,
        }.get(user.organisation_id)
        assert organisation is not None
        return principal(user, organisation)

    def bearer(self, user: User) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user.id]}"}


async def appoint(
    sessions: async_sessionmaker[AsyncSession],
    user: User,
    *,
    chair: bool = False,
    starts_on: date | None = None,
    ends_on: date | None = None,
) -> None:
    today = clock.today()
    async with sessions() as session, session.begin():
        session.add(
            Appointment(
                user_id=user.id,
                starts_on=starts_on or today - timedelta(days=30),
                ends_on=ends_on or today + timedelta(days=700),
                is_chair=chair,
            )
        )  # type: ignore[arg-type]


async def token_for(sessions: async_sessionmaker[AsyncSession], user: User) -> str:
    raw = new_token("mkt_")
    async with sessions() as session, session.begin():
        session.add(ApiToken(user_id=user.id, name="test", token_hash=token_hash(raw), prefix=raw[:8]))  # type: ignore[arg-type]
    return raw


async def world(sessions: async_sessionmaker[AsyncSession], members: int = 4) -> World:
    operator_org = await make_organisation(sessions, "operator", name="Secretariat")
    operator = await make_user(sessions, operator_org, name="Operator Oh")
    committee_org = await make_organisation(sessions, "committee", name="Review Committee")
    chair = await make_user(sessions, committee_org, name="Chair Cho")
    await appoint(sessions, chair, chair=True)
    people = []
    for n in range(members):
        member = await make_user(sessions, committee_org, role="member", name=f"Member {n + 1}")
        await appoint(sessions, member)
        people.append(member)
    provider = await make_organisation(
        sessions, "provider", name="Hanbit Cloud", contact_email="sales@hanbit.example.kr"
    )
    provider_user = await make_user(sessions, provider, name="Provider Pyo")
    result = World(sessions, operator_org, operator, committee_org, chair, people, provider, provider_user)
    for user in [operator, chair, *people, provider_user]:
        result.tokens[user.id] = await token_for(sessions, user)
    return result


async def submitted_service(
    sessions: async_sessionmaker[AsyncSession],
    provider: Organisation,
    *,
    name: str | None = None,
    certifications: list[dict[str, Any]] | None = None,
    opened_at: datetime | None = None,
    emit: bool = True,
) -> tuple[int, int, int | None]:
    """A provider's first submission, announced as the catalogue announces it; returns (service, version, case) ids."""
    name = name or f"Cloud Service {next(_names)}"
    async with sessions() as session, session.begin():
        service = Service(provider_id=provider.id, status=ServiceStatus.submitted)  # type: ignore[arg-type]
        session.add(service)
        await session.flush()
        version = ServiceVersion(
            service_id=service.id,
            number=1,
            state=VersionState.submitted,
            name=name,
            summary=f"{name} summary",  # type: ignore[arg-type]
            description="A managed cloud service for public agencies.",
            category="saas",
            deployment_model="public",
            features=["Backups"],
            benefits=["Fast"],
            data_country="KR",
            data_region="Seoul",
            certifications=certifications
            if certifications is not None
            else [
                {
                    "scheme": "CSAP",
                    "csap_type": "SaaS-standard",
                    "grade": "medium",
                    "valid_from": "2025-01-01",
                    "valid_to": "2099-12-31",
                }
            ],
            sla_availability_bp=9990,
            support_hours="09-18",
            support_channels=["email"],
            response_time_minutes=60,
            service_credits="10%",
            onboarding_terms="On request",
            data_export_format="CSV",
            data_return_terms="30 days",
            data_deletion_terms="Deleted after 30 days",
            submitted_at=utcnow(),
        )
        session.add(version)
        await session.flush()
        session.add(Plan(version_id=version.id, name="Standard", unit="user_month", unit_price=12000))  # type: ignore[arg-type]
        service.open_version_id = version.id
        await session.flush()
        case_id = None
        if emit:
            actor = SystemActor(email="provider@test")
            await hooks.emit("service.submitted", session, service_id=service.id, version_id=version.id, actor=actor)
            case_id = await session.scalar(sa.select(Case.id).where(Case.service_id == service.id))
            if opened_at is not None:
                await session.execute(sa.update(Case).where(Case.id == case_id).values(opened_at=opened_at))
        return service.id, version.id, case_id  # type: ignore[return-value]


async def case_in_review(w: World, *, members: list[User] | None = None, **kwargs: Any) -> tuple[int, int]:
    """A submitted service whose case is complete and has members assigned; returns (service id, case id)."""
    from committee import cases

    service_id, _version_id, case_id = await submitted_service(w.sessions, w.provider, **kwargs)
    assert case_id is not None
    async with w.sessions() as session, session.begin():
        await cases.mark_complete(session, w.as_(w.operator), case_id)
        await cases.assign(session, w.as_(w.chair), case_id, [m.id for m in (members or w.members[:3])])  # type: ignore[misc]
    return service_id, case_id


async def review(
    w: World, member: User, case_id: int, answers: dict[str, Any] | None = None, now: datetime | None = None
) -> None:
    from committee import reviews

    async with w.sessions() as session, session.begin():
        await reviews.submit_review(session, w.as_(member), case_id, answers=answers or PASSING, now=now)


async def certified_service(w: World, **kwargs: Any) -> tuple[int, int]:
    service_id, case_id = await case_in_review(w, **kwargs)
    for member in w.members[:3]:
        await review(w, member, case_id)
    return service_id, case_id


async def assigned_ids(sessions: async_sessionmaker[AsyncSession], case_id: int) -> list[int]:
    async with sessions() as session:
        return list(
            (
                await session.scalars(
                    sa.select(Assignment.member_id)
                    .where(Assignment.case_id == case_id, Assignment.released_at.is_(None))
                    .order_by(Assignment.member_id)
                )
            ).all()
        )
