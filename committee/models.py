"""The committee's tables: criteria sets, review cases and their history, ties, assignments, reviews,
decisions, sessions, certificates, reminders and provider bars."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from market.database import utc_field, utcnow


class CaseKind(StrEnum):
    listing = "listing"  # a first submission of a service
    revision = "revision"  # a change to a listed service: a light review by one member
    renewal = "renewal"  # a certified service applying to renew before expiry


class CaseState(StrEnum):
    intake = "intake"  # waiting for the secretariat's completeness check
    incomplete = "incomplete"  # returned to the provider for supplements
    assignment = "assignment"  # complete; waiting for the chair to assign members
    review = "review"  # members assigned; reviews in progress
    certified = "certified"
    rejected = "rejected"
    returned = "returned"  # returned to the provider for revision by the chair
    approved = "approved"  # a revision approved
    refused = "refused"  # a revision refused


class TieKind(StrEnum):
    employment = "employment"
    shareholding = "shareholding"
    advisory = "advisory"
    family = "family"
    other = "other"


class CertificateStatus(StrEnum):
    valid = "valid"
    suspended = "suspended"
    expired = "expired"
    revoked = "revoked"
    renewed = "renewed"  # replaced by the certificate of a renewal


class CriteriaSet(SQLModel, table=True):
    """One version of the rules a case is reviewed by; a case keeps the version current when it opened."""

    __tablename__ = "committee_criteria_set"

    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(unique=True)
    # [{"code": str, "name": str, "description": str, "mandatory": bool, "weight": int (0 = not scored)}]
    criteria: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    threshold: int = Field(default=70)  # weighted mean score needed to certify
    reviewers_per_case: int = Field(default=3)
    review_period_days: int = Field(default=30)
    certificate_years: int = Field(default=3)
    note: str = Field(default="", max_length=2000)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = utc_field(default_factory=utcnow)


class Case(SQLModel, table=True):
    __tablename__ = "committee_case"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default=CaseKind.listing, max_length=16)
    state: str = Field(default=CaseState.intake, max_length=16, index=True)
    service_id: int = Field(foreign_key="catalog_service.id", index=True)
    version_id: int = Field(foreign_key="catalog_service_version.id")
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    criteria_set_id: int = Field(foreign_key="committee_criteria_set.id")
    renews_certificate_id: int | None = Field(default=None, nullable=True)
    message: str = Field(default="", max_length=4000)  # the latest request to the provider, or the reason returned
    resubmissions: int = Field(default=0)
    opened_at: datetime = utc_field(default_factory=utcnow, index=True)
    state_changed_at: datetime = utc_field(default_factory=utcnow)
    closed_at: datetime | None = utc_field(default=None, nullable=True)


class CaseEvent(SQLModel, table=True):
    """The case's history, kept for good: intake checks, resubmissions, assignments, decisions."""

    __tablename__ = "committee_case_event"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="committee_case.id", index=True)
    at: datetime = utc_field(default_factory=utcnow)
    actor_id: int | None = Field(default=None, foreign_key="user_account.id")
    action: str = Field(max_length=40)
    from_state: str = Field(default="", max_length=16)
    to_state: str = Field(default="", max_length=16)
    message: str = Field(default="", max_length=4000)
    visible_to_provider: bool = Field(default=True)


class Tie(SQLModel, table=True):
    """A member's declared tie to a provider organisation."""

    __tablename__ = "committee_tie"

    id: int | None = Field(default=None, primary_key=True)
    member_id: int = Field(foreign_key="user_account.id", index=True)
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    kind: str = Field(max_length=16)
    starts_on: date
    ends_on: date | None = Field(default=None, nullable=True)
    note: str = Field(default="", max_length=1000)
    declared_at: datetime = utc_field(default_factory=utcnow)


class Assignment(SQLModel, table=True):
    __tablename__ = "committee_assignment"
    __table_args__ = (sa.UniqueConstraint("case_id", "member_id", name="uq_assignment_member"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="committee_case.id", index=True)
    member_id: int = Field(foreign_key="user_account.id", index=True)
    automatic: bool = Field(default=False)
    assigned_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    assigned_at: datetime = utc_field(default_factory=utcnow)
    released_at: datetime | None = utc_field(default=None, nullable=True)


class ReviewStatus(StrEnum):
    submitted = "submitted"
    withdrawn = "withdrawn"


class MeetingStatus(StrEnum):
    open = "open"
    closed = "closed"  # its record cannot change


class Confirmation(StrEnum):
    """How a session dealt with a case's decision."""

    pending = "pending"  # decided by the rule, waiting for a session
    confirmed = "confirmed"
    overridden = "overridden"
    not_needed = "not_needed"  # a revision's light review, or returned by the chair


class Review(SQLModel, table=True):
    """One member's independent, final review of a case; withdrawn reviews are kept."""

    __tablename__ = "committee_review"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="committee_case.id", index=True)
    member_id: int = Field(foreign_key="user_account.id", index=True)
    status: str = Field(default=ReviewStatus.submitted, max_length=16)
    # {code: {"passed": bool, "score": int | None, "comment": str}}; revisions: {} and `approve`
    answers: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    approve: bool | None = Field(default=None)
    comment: str = Field(default="", max_length=4000)
    weighted_score: float | None = Field(default=None)
    passes_mandatory: bool = Field(default=False)
    submitted_at: datetime = utc_field(default_factory=utcnow)
    withdrawn_at: datetime | None = utc_field(default=None, nullable=True)
    withdrawal_reason: str = Field(default="", max_length=2000)


class Meeting(SQLModel, table=True):
    """A dated meeting of the committee: attendance, quorum and the decisions it confirmed."""

    __tablename__ = "committee_session"

    id: int | None = Field(default=None, primary_key=True)
    held_on: date
    title: str = Field(max_length=200)
    quorum: int = Field(default=3)
    attendees: list[int] = Field(default_factory=list, sa_type=sa.JSON)
    status: str = Field(default=MeetingStatus.open, max_length=16)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = utc_field(default_factory=utcnow)
    closed_at: datetime | None = utc_field(default=None, nullable=True)


class Decision(SQLModel, table=True):
    """A case's one decision: the rule, its inputs and its result, and how a session confirmed it."""

    __tablename__ = "committee_decision"

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="committee_case.id", unique=True)
    outcome: str = Field(max_length=16)  # certified, rejected, returned, approved, refused
    computed_outcome: str = Field(default="", max_length=16)
    rule: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    inputs: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)
    reason: str = Field(default="", max_length=4000)  # for the provider: failed criteria or the chair's message
    decided_by_id: int | None = Field(default=None, foreign_key="user_account.id")  # none: the rule
    decided_at: datetime = utc_field(default_factory=utcnow)
    session_id: int | None = Field(default=None, foreign_key="committee_session.id", index=True)
    confirmation: str = Field(default=Confirmation.pending, max_length=16)
    override_reason: str = Field(default="", max_length=4000)
    confirmed_at: datetime | None = utc_field(default=None, nullable=True)


class Certificate(SQLModel, table=True):
    __tablename__ = "committee_certificate"
    __table_args__ = (sa.UniqueConstraint("year", "sequence", name="uq_certificate_sequence"),)

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=20, unique=True)
    year: int
    sequence: int
    service_id: int = Field(foreign_key="catalog_service.id", index=True)
    version_id: int = Field(foreign_key="catalog_service_version.id")
    version_number: int
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    case_id: int = Field(foreign_key="committee_case.id")
    criteria_set_id: int = Field(foreign_key="committee_criteria_set.id")
    criteria_set_version: int
    service_name: str = Field(max_length=200)
    provider_name: str = Field(max_length=200)
    valid_from: date
    valid_to: date = Field(index=True)
    status: str = Field(default=CertificateStatus.valid, max_length=16, index=True)
    status_reason: str = Field(default="", max_length=2000)
    status_changed_at: datetime = utc_field(default_factory=utcnow)
    suspended_until: date | None = Field(default=None, nullable=True)
    issued_at: datetime = utc_field(default_factory=utcnow)


class Reminder(SQLModel, table=True):
    """An expiry reminder sent once per certificate and lead time."""

    __tablename__ = "committee_reminder"
    __table_args__ = (sa.UniqueConstraint("certificate_id", "days_before", name="uq_reminder_once"),)

    id: int | None = Field(default=None, primary_key=True)
    certificate_id: int = Field(foreign_key="committee_certificate.id", index=True)
    days_before: int
    sent_at: datetime = utc_field(default_factory=utcnow)


class Bar(SQLModel, table=True):
    """A provider barred for a period (a debarment): its listings suspended, no new submissions."""

    __tablename__ = "committee_bar"

    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    starts_on: date
    ends_on: date
    reason: str = Field(max_length=2000)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = utc_field(default_factory=utcnow)
