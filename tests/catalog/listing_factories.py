"""Listings as providers write them: complete form and JSON data, documents, tokens, and services taken
through the real service functions (created, documented, submitted, and listed as the committee would)."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from catalog import documents, listings, schemas
from catalog.storage import LocalStorage
from market.auth import Principal, SystemActor
from market.models import ApiToken, Organisation, User
from market.parts import Parts
from market.security import new_token, token_hash
from market.settings import Settings


@pytest.fixture
def catalog_alone(monkeypatch: pytest.MonkeyPatch, parts: Parts) -> dict[str, list[dict[str, Any]]]:
    """The catalogue without the packages that subscribe to its announcements (the committee opens cases on
    submission; these tests list services directly). Returns what was announced, event by event."""
    announced: dict[str, list[dict[str, Any]]] = {}
    monkeypatch.setattr(parts, "subscribers", {})
    for event in ("service.submitted", "revision.submitted", "service.delisted"):

        async def record(session: AsyncSession, *, _event: str = event, **data: Any) -> None:
            announced.setdefault(_event, []).append(data)

        parts.subscribe(event, record)
    return announced


PDF = b"%PDF-1.7\n1 0 obj <</Type /Catalog>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n"
EXECUTABLE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 64
    + b"This program cannot be run in DOS mode."
)
ODT = "application/vnd.oasis.opendocument.text"


def opendocument(mimetype: str = ODT, *, mimetype_first: bool = True, compress: bool = False) -> bytes:
    """An OpenDocument package: a zip whose first entry is the uncompressed `mimetype`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        entries = [("mimetype", mimetype), ("content.xml", "<office:document-content/>")]
        if not mimetype_first:
            entries.reverse()
        for name, text in entries:
            kind = zipfile.ZIP_DEFLATED if (compress or name != "mimetype") else zipfile.ZIP_STORED
            archive.writestr(zipfile.ZipInfo(name), text, compress_type=kind)
    return buffer.getvalue()


def complete_form(**overrides: str) -> dict[str, str]:
    """Every field of the listing form, filled as a provider would (two plans, two certifications)."""
    data = {
        "name": "Hanbit Cloud Drive",
        "summary": "Secure file sharing for public agencies",
        "description": "File sharing with version history, kept in Korea.",
        "category": "saas",
        "deployment_model": "public",
        "features": "Sharing with expiry\nVersion history",
        "benefits": "Less e-mail\nA full audit trail",
        "data_country": "kr",
        "data_region": "Seoul",
        "certifications.0.scheme": "CSAP",
        "certifications.0.csap_type": "saas_standard",
        "certifications.0.grade": "medium",
        "certifications.0.valid_from": "2025-01-01",
        "certifications.0.valid_to": "2030-12-31",
        "certifications.1.scheme": "ISO27001",
        "certifications.1.valid_from": "2024-06-01",
        "certifications.1.valid_to": "2029-05-31",
        "sla_availability": "99.95",
        "support_hours": "24x7",
        "support_channels.email": "yes",
        "support_channels.phone": "yes",
        "response_time_minutes": "30",
        "service_credits": "10 % of the monthly fee per hour of downtime",
        "onboarding_terms": "Accounts imported from a CSV file within a week.",
        "data_export_format": "CSV and ZIP",
        "data_return_terms": "All files returned within 30 days of the end.",
        "data_deletion_terms": "Deleted within 60 days, with a certificate.",
        "plans.0.name": "Basic",
        "plans.0.unit": "user_month",
        "plans.0.unit_price": "12,000",
        "plans.0.vat_included": "yes",
        "plans.0.minimum_term_months": "12",
        "plans.0.free_trial_days": "30",
        "plans.1.name": "Enterprise",
        "plans.1.unit": "user_month",
        "plans.1.unit_price": "9000",
        "plans.1.minimum_term_months": "24",
        "plans.1.free_trial_days": "0",
    }
    data.update(overrides)
    return data


def complete_json(**overrides: Any) -> dict[str, Any]:
    """The same listing as the API takes it."""
    data: dict[str, Any] = {
        "name": "Baram Analytics",
        "summary": "Managed big data analytics",
        "description": "Spark and SQL, run for you.",
        "category": "cloud_big_data",
        "deployment_model": "private",
        "features": ["Managed Spark", "SQL notebooks"],
        "benefits": ["No cluster to run"],
        "data_country": "KR",
        "data_region": "Busan",
        "certifications": [
            {
                "scheme": "CSAP",
                "csap_type": "iaas",
                "grade": "high",
                "valid_from": "2025-03-01",
                "valid_to": "2030-02-28",
            },
            {"scheme": "ISO27017", "valid_from": "2025-01-01", "valid_to": "2028-01-01"},
        ],
        "sla_availability": "99.9",
        "support_hours": "weekdays 09:00-18:00 KST",
        "support_channels": ["email", "web"],
        "response_time_minutes": 60,
        "service_credits": "5 % per hour",
        "onboarding_terms": "A kick-off workshop.",
        "data_export_format": "Parquet",
        "data_return_terms": "Returned on request.",
        "data_deletion_terms": "Deleted in 30 days.",
        "plans": [
            {
                "name": "Per core",
                "unit": "vcpu_hour",
                "unit_price": 150,
                "vat_included": False,
                "minimum_term_months": 1,
                "free_trial_days": 14,
            },
            {"name": "Storage", "unit": "gb_month", "unit_price": 40, "vat_included": False},
        ],
    }
    data.update(overrides)
    return data


def principal(user: User, organisation: Organisation) -> Principal:
    return Principal(
        user_id=user.id,
        email=user.email,
        name=user.name,
        organisation_id=organisation.id,  # type: ignore[arg-type]
        organisation_kind=organisation.kind,
        organisation_name=organisation.name,
        role=user.role,
        language=None,
        ip="127.0.0.1",
    )


async def api_token(sessions: async_sessionmaker[AsyncSession], user: User) -> dict[str, str]:
    """Authorization headers with a fresh API token of `user`."""
    raw = new_token("mkt_")
    async with sessions() as session, session.begin():
        session.add(ApiToken(user_id=user.id, name="tests", token_hash=token_hash(raw), prefix=raw[:8]))  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {raw}"}


def service_id_from(response: httpx.Response) -> int:
    match = re.match(r"^/services/(\d+)/edit$", response.headers.get("location", ""))
    assert match, (response.status_code, response.headers.get("location"), response.text[:500])
    return int(match.group(1))


def lock_version_on(page: httpx.Response) -> str:
    match = re.search(r'name="lock_version" value="(\d+)"', page.text)
    assert match, page.text[:500]
    return match.group(1)


async def draft_service(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    user: User,
    organisation: Organisation,
    *,
    with_document: bool = True,
    **overrides: Any,
) -> int:
    """A complete draft with a service definition attached, made through the service functions."""
    actor = principal(user, organisation)
    async with sessions() as session, session.begin():
        listing = schemas.validate(schemas.ListingInput, complete_json(**overrides))
        service = await listings.create_service(session, actor, listing)
        if with_document:
            storage = LocalStorage(settings.data_dir / "documents")
            await documents.upload(session, actor, storage, service.id, "service_definition", "definition.pdf", PDF)  # type: ignore[arg-type]
        return service.id  # type: ignore[return-value]


async def listed_service(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    user: User,
    organisation: Organisation,
    **overrides: Any,
) -> int:
    """A complete service, submitted by its provider and listed as the committee would list it."""
    service_id = await draft_service(sessions, settings, user, organisation, **overrides)
    await submit_and_list(sessions, user, organisation, service_id)
    return service_id


async def submit_and_list(
    sessions: async_sessionmaker[AsyncSession], user: User, organisation: Organisation, service_id: int
) -> None:
    actor = principal(user, organisation)
    async with sessions() as session, session.begin():
        editing = await listings.editing(session, actor, service_id)
        assert editing.version is not None
        await listings.submit(session, actor, service_id, editing.version.lock_version)
    async with sessions() as session, session.begin():
        await listings.list_version(session, SystemActor(email="committee"), service_id)
