"""Certificates and what follows from them: issuing, reading and the public register, the listing's standing
(certificate, bar, CSAP), suspension and revocation, provider bars, and the daily sweep (expiry, reminders, the
end of suspensions). Every change writes an audit event in its transaction.

Functions that depend on the date take `now` (UTC); callers pass the real clock, tests pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import catalog
from catalog import ServiceStatus
from committee import locks, rules
from committee.members import criteria_set, require_chair, require_staff
from committee.models import Bar, Case, CaseKind, Certificate, CertificateStatus, Reminder
from committee.providers import provider_emails, provider_name
from committee.workflow import CERTIFICATE, LIVE, OPEN
from market import audit, clock, hooks, outbox
from market.audit import Actor
from market.auth import Principal, SystemActor
from market.database import lock, row_id, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.i18n import _
from market.models import Organisation

SYSTEM = SystemActor(email="committee")


# --- issuing and reading certificates -------------------------------------------------------------


def certificate_json(certificate: Certificate) -> dict[str, Any]:
    return {
        "number": certificate.number,
        "service_id": certificate.service_id,
        "version_id": certificate.version_id,
        "version_number": certificate.version_number,
        "criteria_set_version": certificate.criteria_set_version,
        "service_name": certificate.service_name,
        "provider_name": certificate.provider_name,
        "valid_from": certificate.valid_from.isoformat(),
        "valid_to": certificate.valid_to.isoformat(),
        "status": certificate.status,
        "status_reason": certificate.status_reason,
        "suspended_until": certificate.suspended_until.isoformat() if certificate.suspended_until else None,
        "criteria_set_id": certificate.criteria_set_id,
        "case_id": certificate.case_id,
        "issued_at": certificate.issued_at,
    }


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


async def issue_certificate(session: AsyncSession, case: Case, actor: Actor | None, now: datetime) -> Certificate:
    rules_set = await criteria_set(session, case.criteria_set_id)
    await lock(session, locks.CERTIFICATE_NUMBER)
    year = clock.today(at=now).year
    last = (
        await session.scalar(sa.select(sa.func.max(col(Certificate.sequence))).where(col(Certificate.year) == year))
        or 0
    )
    version = await catalog.submitted_version(session, case.version_id)
    start = clock.today(at=now)
    certificate = Certificate(
        number=rules.certificate_number(year, last + 1),
        year=year,
        sequence=last + 1,
        service_id=case.service_id,
        version_id=case.version_id,
        version_number=version.number,
        provider_id=case.provider_id,
        case_id=row_id(case),
        criteria_set_id=case.criteria_set_id,
        criteria_set_version=rules_set.version,
        service_name=version.name,
        provider_name=await provider_name(session, case.provider_id),
        valid_from=start,
        valid_to=_add_years(start, rules_set.certificate_years) - timedelta(days=1),
        issued_at=now,
        status_changed_at=now,
    )
    session.add(certificate)
    if case.kind == CaseKind.renewal and case.renews_certificate_id:
        old = await session.get(Certificate, case.renews_certificate_id)
        if old is not None and CERTIFICATE.allows(old.status, CertificateStatus.renewed):
            change_certificate(old, CertificateStatus.renewed, certificate.number, now, old.suspended_until)
    await session.flush()
    await audit.record(
        session,
        actor,
        "committee.certificate_issued",
        "certificate",
        certificate.id,
        {"number": certificate.number, "case_id": case.id},
    )
    if not version.is_listed:
        await catalog.list_version(session, actor, case.service_id)
    await apply_standing(session, certificate, now)
    return certificate


async def certificate_by_number(session: AsyncSession, number: str) -> Certificate:
    found = await session.scalar(sa.select(Certificate).where(col(Certificate.number) == number.strip().upper()))
    if found is None:
        raise NotFound(_("No certificate has the number %(number)s.", number=number))
    return found


async def certificate_of_service(session: AsyncSession, service_id: int) -> Certificate | None:
    """The service's current certificate (the latest issued), for the catalogue's service page."""
    return await session.scalar(
        sa.select(Certificate)
        .where(col(Certificate.service_id) == service_id)
        .order_by(col(Certificate.issued_at).desc(), col(Certificate.id).desc())
        .limit(1)
    )


async def valid_certificates_of(
    session: AsyncSession, service_ids: list[int], now: datetime | None = None
) -> list[Certificate]:
    """The certificates of these services that are valid today (at most one a service: a renewal supersedes)."""
    return list(
        (
            await session.scalars(
                sa.select(Certificate)
                .where(
                    col(Certificate.service_id).in_(service_ids),
                    col(Certificate.status) == CertificateStatus.valid,
                    col(Certificate.valid_from) <= clock.today(at=now),
                    col(Certificate.valid_to) >= clock.today(at=now),
                )
                .order_by(col(Certificate.service_id), col(Certificate.issued_at))
            )
        ).all()
    )


async def register(
    session: AsyncSession, *, offset: int = 0, limit: int = 20, status: str | None = None
) -> tuple[list[Certificate], int]:
    query = sa.select(Certificate)
    if status:
        query = query.where(col(Certificate.status) == status)
    total = await session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    rows = (
        await session.scalars(
            query.order_by(col(Certificate.year).desc(), col(Certificate.sequence).desc()).offset(offset).limit(limit)
        )
    ).all()
    return list(rows), int(total)


async def certificates_by_expiry(
    session: AsyncSession, principal: Principal, now: datetime | None = None
) -> list[Certificate]:
    await require_staff(session, principal, now)
    return list(
        (
            await session.scalars(
                sa.select(Certificate)
                .where(col(Certificate.status).in_(LIVE))
                .order_by(col(Certificate.valid_to), col(Certificate.id))
            )
        ).all()
    )


async def provider_certificates(session: AsyncSession, principal: Principal) -> list[Certificate]:
    if not principal.is_kind("provider"):
        raise Forbidden(_("This page is for providers."))
    return list(
        (
            await session.scalars(
                sa.select(Certificate)
                .where(col(Certificate.provider_id) == principal.organisation_id)
                .order_by(col(Certificate.valid_to).desc(), col(Certificate.id).desc())
            )
        ).all()
    )


# --- the listing's standing -----------------------------------------------------------------------


def csap_valid_to(details: dict[str, Any]) -> date | None:
    """The latest end of validity among the version's CSAP certifications, or None if it records none."""
    ends = []
    for certification in details.get("certifications") or []:
        if str(certification.get("scheme", "")).upper() == "CSAP" and certification.get("valid_to"):
            try:
                ends.append(date.fromisoformat(str(certification["valid_to"])))
            except ValueError:
                continue
    return max(ends) if ends else None


async def standing(session: AsyncSession, certificate: Certificate, now: datetime) -> tuple[str, str]:
    """What the certificate's listing should be now, and why: the first thing that stands in the way wins."""
    on = clock.today(at=now)
    if certificate.status == CertificateStatus.revoked:
        return ServiceStatus.revoked, certificate.status_reason
    if certificate.status == CertificateStatus.expired:
        return ServiceStatus.expired, _(
            "The certificate %(number)s expired on %(date)s.",
            number=certificate.number,
            date=certificate.valid_to.isoformat(),
        )
    if certificate.status == CertificateStatus.suspended:
        return ServiceStatus.suspended, certificate.status_reason
    bar = await active_bar(session, certificate.provider_id, on)
    if bar is not None:
        return ServiceStatus.suspended, _(
            "The provider is barred until %(date)s: %(reason)s", date=bar.ends_on.isoformat(), reason=bar.reason
        )
    owner = await catalog.submitted_service(session, certificate.service_id)
    if owner.listed_version_id:
        csap_end = csap_valid_to(await catalog.submission_details(session, owner.listed_version_id))
        if csap_end is not None and csap_end < on:
            return ServiceStatus.suspended, _(
                "The recorded CSAP certification expired on %(date)s; upload a valid one.", date=csap_end.isoformat()
            )
    return ServiceStatus.listed, ""


async def apply_standing(
    session: AsyncSession, certificate: Certificate, now: datetime, actor: Actor | None = None
) -> None:
    """Bring the certified listing in line with what should stand now (only listings on offer change)."""
    if certificate.status == CertificateStatus.renewed:
        return
    owner = await catalog.submitted_service(session, certificate.service_id)
    if not owner.on_offer:
        return
    status, reason = await standing(session, certificate, now)
    if owner.status == status:
        return
    until = None
    if certificate.status == CertificateStatus.suspended and certificate.suspended_until:
        until = datetime.combine(certificate.suspended_until, datetime.min.time(), tzinfo=now.tzinfo)
    await catalog.change_status(session, actor or SYSTEM, certificate.service_id, status, reason, until)
    if status != ServiceStatus.listed:
        await hooks.emit("service.delisted", session, service_id=certificate.service_id, status=status, reason=reason)


async def restore_standing_of_service(session: AsyncSession, service_id: int, now: datetime) -> None:
    certificate = await certificate_of_service(session, service_id)
    if certificate is not None:
        await apply_standing(session, certificate, now)


# --- changes of status: suspension and revocation -------------------------------------------------


def change_certificate(
    certificate: Certificate, status: str, reason: str, now: datetime, suspended_until: date | None = None
) -> None:
    """Change the certificate's status along the table (409 otherwise), with the reason shown beside it."""
    CERTIFICATE.check(certificate.status, status)
    certificate.status, certificate.status_reason, certificate.status_changed_at = status, reason, now
    certificate.suspended_until = suspended_until


async def _certificate_for_update(session: AsyncSession, number: str) -> Certificate:
    certificate = await certificate_by_number(session, number)
    await lock(session, locks.certificate(row_id(certificate)))
    await session.refresh(certificate)
    return certificate


async def suspend(
    session: AsyncSession, principal: Principal, number: str, *, reason: str, until: date, now: datetime | None = None
) -> Certificate:
    now = now or utcnow()
    await require_chair(session, principal, now)
    reason = reason.strip()
    errors = {}
    if not reason:
        errors["reason"] = _("Give the reason for the suspension.")
    if until <= clock.today(at=now):
        errors["until"] = _("The suspension must end after today.")
    if errors:
        raise Invalid(_("The certificate could not be suspended."), errors=errors)
    certificate = await _certificate_for_update(session, number)
    if certificate.status == CertificateStatus.suspended:
        raise Conflict(
            _(
                "The certificate is already suspended until %(date)s.",
                date=certificate.suspended_until.isoformat() if certificate.suspended_until else "",
            )
        )
    change_certificate(certificate, CertificateStatus.suspended, reason[:2000], now, until)
    await audit.record(
        session,
        principal,
        "committee.certificate_suspended",
        "certificate",
        certificate.id,
        {"number": certificate.number, "until": until.isoformat(), "reason": reason[:200]},
    )
    await apply_standing(session, certificate, now, principal)
    return certificate


async def revoke(
    session: AsyncSession, principal: Principal, number: str, *, reason: str, now: datetime | None = None
) -> Certificate:
    now = now or utcnow()
    await require_chair(session, principal, now)
    reason = reason.strip()
    if not reason:
        raise Invalid(
            _("The certificate could not be revoked."), errors={"reason": _("Give the reason for the revocation.")}
        )
    certificate = await _certificate_for_update(session, number)
    change_certificate(certificate, CertificateStatus.revoked, reason[:2000], now)
    await audit.record(
        session,
        principal,
        "committee.certificate_revoked",
        "certificate",
        certificate.id,
        {"number": certificate.number, "reason": reason[:200]},
    )
    await apply_standing(session, certificate, now, principal)
    return certificate


# --- provider bars --------------------------------------------------------------------------------


async def active_bar(session: AsyncSession, provider_id: int, on: date) -> Bar | None:
    return await session.scalar(
        sa.select(Bar)
        .where(col(Bar.provider_id) == provider_id, col(Bar.starts_on) <= on, col(Bar.ends_on) >= on)
        .order_by(col(Bar.ends_on).desc())
        .limit(1)
    )


async def bar_provider(
    session: AsyncSession,
    principal: Principal,
    *,
    provider_id: int,
    starts_on: date,
    ends_on: date,
    reason: str,
    now: datetime | None = None,
) -> Bar:
    now = now or utcnow()
    await require_chair(session, principal, now)
    errors = {}
    provider = await session.get(Organisation, provider_id)
    if provider is None or provider.kind != "provider":
        errors["provider_id"] = _("Choose a provider organisation.")
    if ends_on < starts_on:
        errors["ends_on"] = _("The end date is before the start date.")
    if not reason.strip():
        errors["reason"] = _("Give the reason for the bar.")
    if errors:
        raise Invalid(_("The provider could not be barred."), errors=errors)
    bar = Bar(
        provider_id=provider_id,
        starts_on=starts_on,
        ends_on=ends_on,
        reason=reason.strip()[:2000],
        created_by_id=principal.user_id,
        created_at=now,
    )
    session.add(bar)
    await session.flush()
    await audit.record(
        session,
        principal,
        "committee.provider_barred",
        "bar",
        bar.id,
        {"provider_id": provider_id, "ends_on": ends_on.isoformat()},
    )
    for certificate in await _live_certificates(session, provider_id):
        await apply_standing(session, certificate, now, principal)
    return bar


async def bars(session: AsyncSession, principal: Principal) -> list[Bar]:
    await require_staff(session, principal)
    return list((await session.scalars(sa.select(Bar).order_by(col(Bar.ends_on).desc(), col(Bar.id).desc()))).all())


# --- the sweep: expiry, reminders, the end of suspensions -----------------------------------------


async def _live_certificates(session: AsyncSession, provider_id: int | None = None) -> list[Certificate]:
    query = sa.select(Certificate).where(col(Certificate.status).in_(LIVE)).order_by(col(Certificate.id))
    if provider_id is not None:
        query = query.where(col(Certificate.provider_id) == provider_id)
    return list((await session.scalars(query)).all())


async def _renewal_pending(session: AsyncSession, certificate: Certificate) -> bool:
    return bool(
        await session.scalar(
            sa.select(col(Case.id)).where(col(Case.renews_certificate_id) == certificate.id, col(Case.state).in_(OPEN))
        )
    )


@dataclass
class SweepReport:
    expired: int = 0
    reminded: int = 0
    resumed: int = 0
    listings_changed: int = 0


async def sweep(session: AsyncSession, settings: Any = None, now: datetime | None = None) -> SweepReport:
    """Expire certificates past their end (unless a renewal is pending), remind providers 90, 30 and 7 days
    before, end suspensions that ran out, and bring each listing in line with its certificate, bar and CSAP."""
    now = now or utcnow()
    on = clock.today(at=now)
    report = SweepReport()
    base_url = getattr(settings, "base_url", "")
    for certificate in await _live_certificates(session):
        if (
            certificate.status == CertificateStatus.suspended
            and certificate.suspended_until
            and certificate.suspended_until < on
        ):
            change_certificate(certificate, CertificateStatus.valid, "", now)
            await audit.record(
                session,
                SYSTEM,
                "committee.suspension_ended",
                "certificate",
                certificate.id,
                {"number": certificate.number},
            )
            report.resumed += 1
        if certificate.valid_to < on and not await _renewal_pending(session, certificate):
            change_certificate(
                certificate,
                CertificateStatus.expired,
                _("Expired on %(date)s.", date=certificate.valid_to.isoformat()),
                now,
                certificate.suspended_until,
            )
            await audit.record(
                session,
                SYSTEM,
                "committee.certificate_expired",
                "certificate",
                certificate.id,
                {"number": certificate.number},
            )
            report.expired += 1
        elif certificate.valid_to >= on:
            report.reminded += await _remind(session, certificate, on, base_url)
        before = (await catalog.submitted_service(session, certificate.service_id)).status
        await apply_standing(session, certificate, now)
        if (await catalog.submitted_service(session, certificate.service_id)).status != before:
            report.listings_changed += 1
    return report


async def _remind(session: AsyncSession, certificate: Certificate, on: date, base_url: str) -> int:
    """At most one reminder per lead time, ever: the nearest lead time reached and not yet sent."""
    days_left = (certificate.valid_to - on).days
    due = [days for days in rules.REMINDER_DAYS if days_left <= days]
    if not due:
        return 0
    days = min(due)
    if await session.scalar(
        sa.select(col(Reminder.id)).where(
            col(Reminder.certificate_id) == certificate.id, col(Reminder.days_before) == days
        )
    ):
        return 0
    session.add(Reminder(certificate_id=row_id(certificate), days_before=days))
    await session.flush()
    subject = _(
        "Certificate %(number)s expires on %(date)s", number=certificate.number, date=certificate.valid_to.isoformat()
    )
    body = _(
        "The certificate %(number)s of %(service)s expires on %(date)s (in %(days)s days). Apply to renew it before then: %(url)s",
        number=certificate.number,
        service=certificate.service_name,
        date=certificate.valid_to.isoformat(),
        days=days_left,
        url=f"{base_url}/provider/certificates",
    )
    for email in await provider_emails(session, certificate.provider_id):
        await outbox.send_email(
            session, email, subject, body, f"committee-certificate-{certificate.id}-expiry-{days}-{email}"
        )
    await audit.record(
        session,
        SYSTEM,
        "committee.expiry_reminded",
        "certificate",
        certificate.id,
        {"number": certificate.number, "days_before": days},
    )
    return 1


async def periodic_sweep(sessions: Any, settings: Any) -> None:
    async with sessions() as session, session.begin():
        await sweep(session, settings)


async def reminders_for_provider(
    session: AsyncSession, principal: Principal, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The provider's certificates expiring within 90 days, for its dashboard."""
    on = clock.today(at=now)
    rows = []
    for certificate in await provider_certificates(session, principal):
        if certificate.status == CertificateStatus.valid and 0 <= (certificate.valid_to - on).days <= max(
            rules.REMINDER_DAYS
        ):
            rows.append(
                {
                    "number": certificate.number,
                    "service_name": certificate.service_name,
                    "valid_to": certificate.valid_to.isoformat(),
                    "days_left": (certificate.valid_to - on).days,
                    "renewal_pending": await _renewal_pending(session, certificate),
                }
            )
    return rows
