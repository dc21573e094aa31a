"""Demo review cases in every state, a few certified services and a closed session. Idempotent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import catalog
from committee import cases, meetings, members, reviews
from committee.models import Case, Meeting
from market import clock
from market.auth import Principal
from market.database import row_id, utcnow
from market.models import Organisation, User
from market.settings import Settings

PASS: dict[str, dict[str, Any]] = {
    "management": {"passed": True, "score": 82, "comment": ""},
    "sanctions": {"passed": True, "score": None, "comment": ""},
    "security": {"passed": True, "score": 88, "comment": ""},
    "stability": {"passed": True, "score": 79, "comment": ""},
    "support": {"passed": True, "score": 74, "comment": ""},
}


def _fail(code: str, comment: str) -> dict[str, Any]:
    answers = {key: dict(value) for key, value in PASS.items()}
    answers[code] = {**answers[code], "passed": False, "comment": comment}
    return answers


# provider, name, summary, category, what happens to its case
SERVICES = [
    (
        "Hanbit Cloud Co., Ltd.",
        "Hanbit 공공 클라우드 서버",
        "행정기관 전용 IaaS 가상 서버와 블록 스토리지",
        "iaas",
        "certified",
    ),
    (
        "Nuri Soft Inc.",
        "Nuri 전자결재 SaaS",
        "Electronic approval and document workflow for public agencies",
        "saas",
        "certified",
    ),
    (
        "Baram Data Co., Ltd.",
        "Baram 빅데이터 분석 플랫폼",
        "공공 데이터 수집·분석·시각화 플랫폼",
        "cloud_big_data",
        "certified",
    ),
    (
        "Hanbit Cloud Co., Ltd.",
        "Hanbit Managed Kubernetes",
        "A managed Kubernetes platform hosted in Korea",
        "paas",
        "review",
    ),
    (
        "Nuri Soft Inc.",
        "Nuri 민원 챗봇",
        "AI chatbot answering citizens' questions around the clock",
        "cloud_ai",
        "intake",
    ),
    (
        "Baram Data Co., Ltd.",
        "Baram IoT 센서 허브",
        "Sensor data hub for smart city projects",
        "cloud_iot",
        "incomplete",
    ),
    ("Hanbit Cloud Co., Ltd.", "Hanbit 백업 서비스", "재해복구용 원격 백업과 복원", "managed_operations", "assignment"),
    ("Nuri Soft Inc.", "Nuri 회의실 예약", "Meeting room booking for agencies", "saas", "rejected"),
    (
        "Baram Data Co., Ltd.",
        "Baram 클라우드 전환 컨설팅",
        "Assessment and planning for moving systems to the cloud",
        "consulting",
        "returned",
    ),
]


def _principal(user: User, organisation: Organisation) -> Principal:
    return Principal(
        row_id(user),
        user.email,
        user.name,
        row_id(organisation),
        organisation.kind,
        organisation.name,
        user.role,
        user.language,
        "",
    )


async def _people(session: AsyncSession, emails: list[str]) -> list[Principal] | None:
    people = []
    for email in emails:
        row = (
            await session.execute(
                sa.select(User, Organisation)
                .join(Organisation, col(Organisation.id) == col(User.organisation_id))
                .where(col(User.email) == email)
            )
        ).first()
        if row is None:
            return None
        people.append(_principal(row[0], row[1]))
    return people


async def _submit(
    session: AsyncSession, provider: Organisation, name: str, summary: str, category: str, actor: Principal
) -> Case:
    valid_to = (clock.today() + timedelta(days=700)).isoformat()
    fields = {
        "name": name,
        "summary": summary,
        "description": f"{summary}. 24/7 monitoring, encryption at rest and in transit, data kept in Korea.",
        "category": category,
        "deployment_model": "public",
        "features": ["Encryption", "Monitoring", "Backups"],
        "benefits": ["Contract without a tender", "Data stays in Korea"],
        "data_country": "KR",
        "data_region": "Seoul",
        "certifications": [
            {
                "scheme": "CSAP",
                "name": "",
                "csap_type": "SaaS-standard" if category == "saas" else "IaaS",
                "grade": "medium",
                "valid_from": "2025-01-01",
                "valid_to": valid_to,
            }
        ],
        "sla_availability_bp": 9995,
        "support_hours": "24/7",
        "support_channels": ["phone", "email"],
        "response_time_minutes": 30,
        "service_credits": "10% of the monthly fee per hour of downtime",
        "onboarding_terms": "Onboarding within 5 working days",
        "data_export_format": "CSV, JSON",
        "data_return_terms": "Returned within 30 days",
        "data_deletion_terms": "Deleted within 30 days, with a certificate",
        "submitted_at": utcnow(),
    }
    plans = [
        {
            "name": "Standard",
            "unit": "user_month",
            "unit_price": 15000,
            "vat_included": False,
            "minimum_term_months": 12,
            "free_trial_days": 30,
        }
    ]
    service_id = await catalog.add_demo_submission(session, actor, row_id(provider), fields, plans)
    case = await session.scalar(sa.select(Case).where(col(Case.service_id) == service_id))
    assert case is not None
    return case


async def load(session: AsyncSession, settings: Settings, echo: Callable[[str], None] = print) -> int:
    if await session.scalar(sa.select(sa.func.count()).select_from(Meeting)):
        echo("committee: demo already present")
        return 0
    people = await _people(
        session,
        [
            "operator@demo.example.go.kr",
            "chair@demo.example.go.kr",
            "committee@demo.example.go.kr",
            "member2@demo.example.go.kr",
            "member3@demo.example.go.kr",
        ],
    )
    if people is None:
        echo("committee: demo users missing; skipped")
        return 0
    operator, chair, park, choi, jung = people
    providers = {
        o.name: o
        for o in (await session.scalars(sa.select(Organisation).where(col(Organisation.kind) == "provider"))).all()
    }
    created = 0
    baram = providers.get("Baram Data Co., Ltd.")
    if baram is not None:  # Member Choi advised Baram Data: never assigned to its cases
        await members.declare_tie(
            session,
            choi,
            provider_id=row_id(baram),
            kind="advisory",
            starts_on=clock.today() - timedelta(days=400),
            note="Paid adviser in 2025",
        )
        created += 1
    decided: list[int] = []
    for provider_name, name, summary, category, fate in SERVICES:
        provider = providers.get(provider_name)
        if provider is None:
            continue
        submitter = await session.scalar(
            sa.select(User).where(col(User.organisation_id) == provider.id).order_by(col(User.id)).limit(1)
        )
        if submitter is None:
            continue
        case = await _submit(session, provider, name, summary, category, _principal(submitter, provider))
        created += 3
        if fate == "intake":
            continue
        if fate == "incomplete":
            await cases.mark_incomplete(
                session, operator, row_id(case), "Attach the CSAP certificate and the exit plan."
            )
            continue
        await cases.mark_complete(session, operator, row_id(case))
        if fate == "assignment":
            continue
        eligible = [row["id"] for row in await cases.eligible_members(session, case)]
        reviewers = [p for p in (park, jung, chair, choi) if p.user_id in eligible][:3]
        await cases.assign(session, chair, row_id(case), [p.user_id for p in reviewers])
        if fate == "returned":
            await reviews.return_for_revision(
                session, chair, row_id(case), "Give the support staff numbers and a tested exit plan."
            )
            continue
        if fate == "review":
            await reviews.submit_review(session, reviewers[0], row_id(case), answers=PASS)
            continue
        for index, reviewer in enumerate(reviewers):
            answers = (
                _fail("security", "The CSAP certificate covers the IaaS only, not this SaaS.")
                if fate == "rejected" and index < 2
                else PASS
            )
            await reviews.submit_review(session, reviewer, row_id(case), answers=answers)
            created += 1
        decided.append(row_id(case))
    if decided:
        meeting = await meetings.create_meeting(
            session, chair, held_on=clock.today(), title="Regular session", quorum=3
        )
        await meetings.record_attendance(
            session, chair, row_id(meeting), [chair.user_id, park.user_id, choi.user_id, jung.user_id]
        )
        for case_id in decided:
            await meetings.add_to_meeting(session, chair, row_id(meeting), case_id)
            await meetings.confirm_decision(session, chair, row_id(meeting), case_id)
        await meetings.close_meeting(session, chair, row_id(meeting))
        created += 1
    echo(f"committee: {len(SERVICES)} review cases, {len(decided)} decided, a closed session")
    return created
