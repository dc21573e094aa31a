"""Demo organisations and users, so every role has something to sign in as. Idempotent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from market import accounts, clock
from market.auth import SystemActor
from market.database import row_id
from market.models import AgencyDomain, Appointment, Organisation, User
from market.parts import parts_of
from market.settings import Settings

DEMO_PASSWORD = "demo-password-2026"

ORGANISATIONS = [
    # kind, name, registration number, contact e-mail, SME
    ("operator", "Digital Marketplace Secretariat", None, "help@secretariat.example.go.kr", False),
    ("committee", "Digital Service Review Committee", None, "committee@secretariat.example.go.kr", False),
    ("agency", "Seoul Metropolitan Government", "6110000", "it@seoul.example.go.kr", False),
    ("agency", "Ministry of the Interior and Safety", "1741000", "it@mois.example.go.kr", False),
    ("provider", "Hanbit Cloud Co., Ltd.", "1248100998", "sales@hanbit-cloud.example.kr", False),
    ("provider", "Nuri Soft Inc.", "2208162517", "hello@nurisoft.example.kr", True),
    ("provider", "Baram Data Co., Ltd.", "1018112341", "contact@baramdata.example.kr", True),
]

USERS = [
    # e-mail, name, organisation, role
    ("operator@demo.example.go.kr", "Operator Kim", "Digital Marketplace Secretariat", "admin"),
    ("chair@demo.example.go.kr", "Chair Lee", "Digital Service Review Committee", "admin"),
    ("committee@demo.example.go.kr", "Member Park", "Digital Service Review Committee", "member"),
    ("member2@demo.example.go.kr", "Member Choi", "Digital Service Review Committee", "member"),
    ("member3@demo.example.go.kr", "Member Jung", "Digital Service Review Committee", "member"),
    ("admin@seoul.example.go.kr", "Admin Seo", "Seoul Metropolitan Government", "admin"),
    ("buyer@seoul.example.go.kr", "Buyer Kang", "Seoul Metropolitan Government", "buyer"),
    ("signer@seoul.example.go.kr", "Signer Song", "Seoul Metropolitan Government", "signer"),
    ("admin@mois.example.go.kr", "Admin Moon", "Ministry of the Interior and Safety", "admin"),
    ("buyer@mois.example.go.kr", "Buyer Yoon", "Ministry of the Interior and Safety", "buyer"),
    ("signer@mois.example.go.kr", "Signer Min", "Ministry of the Interior and Safety", "signer"),
    ("provider@hanbit-cloud.example.kr", "Provider Han", "Hanbit Cloud Co., Ltd.", "admin"),
    ("provider@nurisoft.example.kr", "Provider Noh", "Nuri Soft Inc.", "admin"),
    ("provider@baramdata.example.kr", "Provider Bae", "Baram Data Co., Ltd.", "admin"),
]

# The agencies' signers sign contracts up to this total value with VAT (their administrators set it; more than any
# demo contract). The administrators sign nothing until another administrator gives them a limit.
SIGNING_LIMITS = {"signer@seoul.example.go.kr": 1_000_000_000, "signer@mois.example.go.kr": 1_000_000_000}

DOMAINS = [
    ("seoul.example.go.kr", "Seoul Metropolitan Government"),
    ("mois.example.go.kr", "Ministry of the Interior and Safety"),
]


async def load(session: AsyncSession, settings: Settings, echo: Callable[[str], None] = print) -> int:
    actor = SystemActor(email="demo")
    created = 0
    organisations: dict[str, Organisation] = {}
    for kind, name, number, email, sme in ORGANISATIONS:
        existing = await session.scalar(sa.select(Organisation).where(col(Organisation.name) == name))
        if existing is None:
            existing = await accounts.create_organisation(
                session, actor, kind=kind, name=name, registration_number=number, contact_email=email, is_sme=sme
            )
            created += 1
        organisations[name] = existing
    echo(f"organisations: {len(organisations)}")
    for email, name, organisation, role in USERS:
        user = await session.scalar(sa.select(User).where(col(User.email) == email))
        if user is None:
            user = await accounts.create_user(
                session,
                actor,
                organisation=organisations[organisation],
                email=email,
                name=name,
                password=DEMO_PASSWORD,
                role=role,
                signing_limit=SIGNING_LIMITS.get(email, 0),
            )
            created += 1
            if organisations[organisation].kind == "committee":
                today = clock.today()
                session.add(
                    Appointment(
                        user_id=row_id(user),
                        starts_on=today - timedelta(days=30),
                        ends_on=today + timedelta(days=730),
                        is_chair=role == "admin",
                    )
                )
    echo(f"users: {len(USERS)} (password for all: {DEMO_PASSWORD})")
    for domain, organisation in DOMAINS:
        if not await session.scalar(sa.select(col(AgencyDomain.id)).where(col(AgencyDomain.domain) == domain)):
            session.add(AgencyDomain(domain=domain, organisation_id=row_id(organisations[organisation])))
            created += 1
    await session.flush()
    created += await _load_domains(session, settings, echo)
    return created


async def _load_domains(session: AsyncSession, settings: Settings, echo: Callable[[str], None]) -> int:
    """Each package's demo data (`Parts.add_demo`), in the order the packages were included."""
    created = 0
    for loader in parts_of(session).demo_loaders:
        created += await loader(session, settings, echo)
    return created
