"""The catalogue's tables: services and their versions, plans, documents, the search projection, projects."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from market.database import utc_field, utcnow


class ServiceStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    listed = "listed"
    suspended = "suspended"
    withdrawn = "withdrawn"
    expired = "expired"
    revoked = "revoked"


class VersionState(StrEnum):
    draft = "draft"  # being edited (the first listing, or a revision of a listed service)
    submitted = "submitted"  # waiting for the committee
    listed = "listed"  # the version buyers see
    superseded = "superseded"  # was listed, replaced by a later version (kept for the record)
    refused = "refused"  # a revision the committee refused


class Category(StrEnum):
    iaas = "iaas"
    paas = "paas"
    saas = "saas"
    consulting = "consulting"
    migration = "migration"
    managed_operations = "managed_operations"
    cloud_ai = "cloud_ai"
    cloud_big_data = "cloud_big_data"
    cloud_iot = "cloud_iot"
    cloud_blockchain = "cloud_blockchain"


class DeploymentModel(StrEnum):
    public = "public"
    private = "private"
    hybrid = "hybrid"
    community = "community"


class Service(SQLModel, table=True):
    """A provider's offering; what it says lives in its versions."""

    __tablename__ = "catalog_service"

    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="organisation.id", index=True)
    status: str = Field(default=ServiceStatus.draft, max_length=16, index=True)
    # Plain ids, not foreign keys: versions point at their service, and a cycle of keys cannot be created.
    listed_version_id: int | None = Field(default=None, nullable=True)
    # the draft, submission or revision in progress: at most one at a time
    open_version_id: int | None = Field(default=None, nullable=True)
    status_reason: str = Field(default="", max_length=2000)
    status_changed_at: datetime = utc_field(default_factory=utcnow)
    status_until: datetime | None = utc_field(default=None, nullable=True)  # end of a suspension
    created_at: datetime = utc_field(default_factory=utcnow)


class ServiceVersion(SQLModel, table=True):
    """Everything a service says at one moment. Listed versions are never changed, only superseded."""

    __tablename__ = "catalog_service_version"
    __table_args__ = (sa.UniqueConstraint("service_id", "number", name="uq_service_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    service_id: int = Field(foreign_key="catalog_service.id", index=True)
    number: int
    state: str = Field(default=VersionState.draft, max_length=16)
    lock_version: int = Field(default=1)  # optimistic lock: a save must name the version it edited
    name: str = Field(default="", max_length=200)
    summary: str = Field(default="", max_length=300)
    description: str = Field(default="", sa_type=sa.Text)
    category: str = Field(default="", max_length=32)
    deployment_model: str = Field(default="", max_length=16)
    features: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    benefits: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    data_country: str = Field(default="", max_length=2)
    data_region: str = Field(default="", max_length=100)
    # [{"scheme": "CSAP"|"ISO27001"|"ISO27017"|"ISO27018"|"other", "name": str, "csap_type": str, "grade": str,
    #   "valid_from": "YYYY-MM-DD", "valid_to": "YYYY-MM-DD"}]
    certifications: list[dict[str, Any]] = Field(default_factory=list, sa_type=sa.JSON)
    sla_availability_bp: int | None = Field(default=None)  # basis points: 9995 means 99.95 %
    support_hours: str = Field(default="", max_length=100)
    support_channels: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    response_time_minutes: int | None = Field(default=None)
    service_credits: str = Field(default="", max_length=2000)
    onboarding_terms: str = Field(default="", max_length=4000)
    data_export_format: str = Field(default="", max_length=200)
    data_return_terms: str = Field(default="", max_length=4000)
    data_deletion_terms: str = Field(default="", max_length=4000)
    created_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = utc_field(default_factory=utcnow)
    updated_at: datetime = utc_field(default_factory=utcnow)
    submitted_at: datetime | None = utc_field(default=None, nullable=True)
    listed_at: datetime | None = utc_field(default=None, nullable=True)


class Plan(SQLModel, table=True):
    __tablename__ = "catalog_plan"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="catalog_service_version.id", index=True, ondelete="CASCADE")
    position: int = Field(default=0)
    name: str = Field(max_length=120)
    unit: str = Field(max_length=32)  # user_month, vcpu_hour, gb_month, project, ...
    unit_price: int | None = Field(
        default=None, nullable=True, sa_type=sa.BigInteger
    )  # KRW, whole won; blank only while a draft
    vat_included: bool = Field(default=False)
    minimum_term_months: int = Field(default=0)
    free_trial_days: int = Field(default=0)


class VersionEdit(SQLModel, table=True):
    """What a draft or revision said after each save: a stale save is shown what changed since it started."""

    __tablename__ = "catalog_version_edit"
    __table_args__ = (sa.UniqueConstraint("version_id", "lock_version", name="uq_version_edit_lock"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="catalog_service_version.id", index=True)
    lock_version: int
    content: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # the version's fields and plans
    edited_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    edited_at: datetime = utc_field(default_factory=utcnow)


class Document(SQLModel, table=True):
    """A file a provider attached to a version; the bytes live in storage under `storage_key`."""

    __tablename__ = "catalog_document"

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="catalog_service_version.id", index=True)
    kind: str = Field(max_length=32)  # service_definition, terms_of_use, security_evidence
    original_name: str = Field(max_length=255)
    storage_key: str = Field(max_length=100, unique=True)
    content_type: str = Field(max_length=100)
    size: int
    sha256: str = Field(max_length=64)
    uploaded_by_id: int | None = Field(default=None, foreign_key="user_account.id")
    uploaded_at: datetime = utc_field(default_factory=utcnow)


class ListedService(SQLModel, table=True):
    """The search projection: one row per listed service, rewritten whenever what is listed changes."""

    __tablename__ = "catalog_listed_service"

    service_id: int = Field(foreign_key="catalog_service.id", primary_key=True)
    version_id: int = Field(foreign_key="catalog_service_version.id")
    provider_id: int = Field(index=True)
    provider_name: str = Field(max_length=200)
    name: str = Field(max_length=200)
    summary: str = Field(max_length=300)
    body: str = Field(sa_type=sa.Text)  # description, features and benefits, for full-text search
    category: str = Field(max_length=32, index=True)
    deployment_model: str = Field(max_length=16, index=True)
    certification_schemes: str = Field(default="", max_length=200)  # "|CSAP|ISO27001|": matched with LIKE
    csap_grade: str = Field(default="", max_length=8, index=True)
    data_country: str = Field(default="", max_length=2, index=True)
    sla_availability_bp: int = Field(default=0, index=True)
    min_price: int = Field(default=0, index=True, sa_type=sa.BigInteger)  # KRW
    min_price_unit: str = Field(default="", max_length=32)
    free_trial: bool = Field(default=False, index=True)
    is_sme: bool = Field(default=False, index=True)
    listed_at: datetime = utc_field(default_factory=utcnow, index=True)
    tiebreak: int = Field(default=0, index=True)  # a hash of the service id: ties favour no provider


class ProjectStatus(StrEnum):
    active = "active"
    ended = "ended"


class Outcome(StrEnum):
    awarded = "awarded"
    cancelled = "cancelled"
    none_suitable = "none_suitable"


class Project(SQLModel, table=True):
    """An agency's procurement project: the search it ran, frozen as evidence once ended, and its outcome."""

    __tablename__ = "catalog_project"

    id: int | None = Field(default=None, primary_key=True)
    agency_id: int = Field(foreign_key="organisation.id", index=True)
    name: str = Field(max_length=200)
    status: str = Field(default=ProjectStatus.active, max_length=16)
    query: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # keyword and filters
    query_description: str = Field(default="", max_length=2000)  # the same, in words
    created_by_id: int = Field(foreign_key="user_account.id")
    created_at: datetime = utc_field(default_factory=utcnow)
    updated_at: datetime = utc_field(default_factory=utcnow)
    ended_at: datetime | None = utc_field(default=None, nullable=True)
    outcome: str | None = Field(default=None, max_length=16)
    outcome_service_id: int | None = Field(default=None, foreign_key="catalog_service.id")
    outcome_reason: str = Field(default="", max_length=2000)
    outcome_at: datetime | None = utc_field(default=None, nullable=True)


class SnapshotItem(SQLModel, table=True):
    """One service as it stood when the project's search ended."""

    __tablename__ = "catalog_snapshot_item"
    __table_args__ = (sa.UniqueConstraint("project_id", "service_id", name="uq_snapshot_service"),)

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(foreign_key="catalog_project.id", index=True)
    position: int
    service_id: int = Field(foreign_key="catalog_service.id")
    version_id: int = Field(foreign_key="catalog_service_version.id")
    data: dict[str, Any] = Field(default_factory=dict, sa_type=sa.JSON)  # provider, name, summary, price, contact, url
