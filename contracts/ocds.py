"""The register in the Open Contracting Data Standard (1.1): releases written as contracts change, served as
release packages (a feed a harvester polls with a cursor) and records (a contract's releases and their compilation).

Each contract is its own contracting process, the second stage of a framework procedure whose first stage is
the committee's certification of the service (relatedProcesses, relationship "framework").

The procurement method: a direct award by the agency is "direct". A catalogue contract through the central
procurement agency is also "direct": the central agency's catalogue is the framework (its suppliers were selected
by certification), and the agency calls off one certified service at the listed price with no second-stage
competition. The closed method codelist says "direct" is "awarded to a single supplier without competition";
"selective" and "limited" describe inviting suppliers to tender, which a call-off does not do (the OCDS framework
agreements guidance: a call-off without second-stage competition carries no competition of its own, and only a
mini-competition repeats the first stage's method). The two routes differ in procurementMethodDetails and in the
procuringEntity: the agency itself for a direct award, the central procurement agency for a catalogue contract.
"""

from __future__ import annotations

import copy
from datetime import date, datetime, time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import committee
from catalog import ContractedService, category_label, contracted_service, unit_label
from contracts.models import (
    CURRENCY,
    Contract,
    ContractStatus,
    ContractVersion,
    Invoice,
    Payment,
    Release,
    Route,
    VersionKind,
)
from contracts.workflow import CLOSED, PUBLIC
from market import i18n
from market.audit import AUDIT_LOCK
from market.database import lock, row_id, utcnow
from market.errors import NotFound
from market.i18n import _
from market.models import Organisation
from market.settings import configured

PUBLISHER_NAME = "Cloud Service Marketplace"
# Contract dates are calendar days; OCDS wants date-times, so a day starts and ends in MARKET_TIMEZONE.
CENTRAL_PROCUREMENT_AGENCY = {"id": "central-procurement-agency", "name": "Public Procurement Service"}
OCDS_VERSION = "1.1"
OCDS_LANGUAGE = "en"
# Release ids are handed out under a lock held until commit: ids then appear in the order they commit, so a
# harvester that asked for "everything after id N" can never find an id below N appearing later. It is the audit
# chain's lock: every change that writes a release also writes an audit event and so holds it anyway; a lock of
# its own could be taken in the opposite order by another transaction and deadlock.
OCDS_FEED_LOCK = AUDIT_LOCK
FEED_PAGE_SIZE = 100
FEED_PAGE_MAX = 500

TAGS = {
    "contract.signed": ["award", "contract"],
    "contract.amended": ["contractAmendment"],
    "contract.started": ["implementation"],
    "invoice.paid": ["implementation"],
    "contract.completed": ["contractTermination"],
    "contract.terminated": ["contractTermination"],
}

ROUTE_DETAILS: dict[str, str] = {
    Route.direct: "Direct award by the agency",
    Route.central: "Catalogue contract through the central procurement agency (call-off from the certified catalogue)",
}

AMENDMENT_REASONS = {
    "price_reduction": "Price reduction",
    "volume_change": "Volume change",
    "duration_extension": "Duration extension",
    "tax_rate_change": "Tax rate change",
    "other": "Other",
}


def ocid(number: str, prefix: str | None = None) -> str:
    """The contracting process's id: the publisher's prefix (MARKET_OCID_PREFIX), a dash, the contract number."""
    return f"{prefix or configured().ocid_prefix}-{number}"


def _day_start(day: date) -> str:
    return datetime.combine(day, time(), configured().zone).isoformat()


def _day_end(day: date) -> str:
    return datetime.combine(day, time(23, 59, 59), configured().zone).isoformat()


def _instant(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _value(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": CURRENCY}


def _party_id(organisation: Organisation) -> str:
    return f"org-{organisation.id}"


def _reference(party: dict[str, Any]) -> dict[str, Any]:
    return {"id": party["id"], "name": party["name"]}


def _organisation(organisation: Organisation, roles: list[str]) -> dict[str, Any]:
    party: dict[str, Any] = {"id": _party_id(organisation), "name": organisation.name, "roles": roles}
    if organisation.registration_number:
        party["identifier"] = {"id": organisation.registration_number, "legalName": organisation.name}
    return party


# --- building a release ---------------------------------------------------------------------------------


async def _versions(
    session: AsyncSession, contract: Contract
) -> tuple[ContractVersion, ContractVersion, list[ContractVersion]]:
    """The first signed version (the award), the one in force now, and the signed amendments in order."""
    signed = list(
        (
            await session.scalars(
                sa.select(ContractVersion)
                .where(col(ContractVersion.contract_id) == contract.id, col(ContractVersion.signed_at).is_not(None))
                .order_by(col(ContractVersion.number))
            )
        ).all()
    )
    in_force = await session.get(ContractVersion, contract.signed_version_id) if contract.signed_version_id else None
    if in_force is None:
        raise NotFound(_("Contract %(number)s has no signed version.", number=contract.number))
    return (signed or [in_force])[0], in_force, [v for v in signed if v.kind == VersionKind.amendment]


async def _payments(session: AsyncSession, contract_id: int) -> list[tuple[Payment, Invoice]]:
    rows = (
        await session.execute(
            sa.select(Payment, Invoice)
            .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
            .where(col(Invoice.contract_id) == contract_id)
            .order_by(col(Payment.paid_on), col(Payment.id))
        )
    ).all()
    return [(row[0], row[1]) for row in rows]


def _items(version: ContractVersion, service: ContractedService | None) -> list[dict[str, Any]]:
    plan = version.plan or {}
    service_name = service.name if service else ""
    item: dict[str, Any] = {
        "id": "1",
        "description": " - ".join(part for part in (service_name, str(plan.get("name", ""))) if part),
        "quantity": version.quantity,
        "unit": {"name": unit_label(str(plan.get("unit", "")))},
    }
    if plan.get("unit_price") is not None:
        item["unit"]["value"] = _value(int(plan["unit_price"]))
    if service is not None and service.category:
        item["classification"] = {
            "scheme": "x_marketplaceCategory",
            "id": service.category,
            "description": category_label(service.category),
        }
    return [item]


def _contract_status(contract: Contract) -> str:
    # Signed by both sides binds both, even before the start date: "active" in the closed contractStatus codelist;
    # "terminated" covers both a completion and an early end ("has now come to a close").
    return "terminated" if contract.status in CLOSED else "active"


def _contract_description(contract: Contract) -> str | None:
    if contract.status == ContractStatus.completed and contract.ended_on:
        return f"Completed on {contract.ended_on.isoformat()}."
    if contract.status == ContractStatus.terminated:
        text = f"Terminated early, effective {contract.ended_on.isoformat() if contract.ended_on else 'unknown'}"
        if contract.amount_paid_at_end is not None:
            text += f"; {contract.amount_paid_at_end} {CURRENCY} paid by then"
        return text + (f". Reason: {contract.end_reason}" if contract.end_reason else ".")
    return None


async def build_release(
    session: AsyncSession, contract: Contract, release_id: str, tags: list[str], at: datetime, prefix: str | None = None
) -> dict[str, Any]:
    """The whole contracting process as it stands at `at`: every release is complete, so the latest one compiles them.

    Labels come out in the data's one language, whichever user's request caused the release."""
    token = i18n.current_language.set(OCDS_LANGUAGE)
    try:
        return await _build_release(session, contract, release_id, tags, at, prefix)
    finally:
        i18n.current_language.reset(token)


async def _build_release(
    session: AsyncSession, contract: Contract, release_id: str, tags: list[str], at: datetime, prefix: str | None
) -> dict[str, Any]:
    awarded, in_force, amendments = await _versions(session, contract)
    agency = await session.get(Organisation, contract.agency_id)
    provider = await session.get(Organisation, contract.provider_id)
    assert agency is not None and provider is not None
    service = await contracted_service(session, in_force.service_version_id)
    awarded_service = await contracted_service(session, awarded.service_version_id)
    payments = await _payments(session, row_id(contract))
    process = ocid(contract.number, prefix)

    direct = in_force.route != Route.central
    buyer = _organisation(agency, ["buyer"] + (["procuringEntity"] if direct else []) + (["payer"] if payments else []))
    supplier = _organisation(provider, ["supplier"] + (["payee"] if payments else []))
    parties = [buyer, supplier]
    procuring = buyer
    if not direct:
        procuring = {**CENTRAL_PROCUREMENT_AGENCY, "roles": ["procuringEntity"]}
        parties.insert(1, procuring)

    title = service.name if service else contract.number
    award_id = f"{process}-award"
    ocds_contract: dict[str, Any] = {
        "id": contract.number,
        "awardID": award_id,
        "title": title,
        "status": _contract_status(contract),
        "period": {"startDate": _day_start(in_force.starts_on), "endDate": _day_end(in_force.ends_on)},
        "value": _value(in_force.amount_total),
        "items": _items(in_force, service),
        "dateSigned": _instant(awarded.signed_at),
    }
    description = _contract_description(contract)
    if description:
        ocds_contract["description"] = description
    if awarded.approved_at is not None:
        # The agency's internal approval of the draft by a second member (above its approval threshold it is needed
        # before sending): an `approval` milestone of the closed milestoneStatus `met`. The approver's role is
        # published, not their name (as with signatures).
        ocds_contract["milestones"] = [
            {
                "id": f"approval-{awarded.number}",
                "title": "Internal approval of the draft",
                "type": "approval",
                "code": "internalApproval",
                "status": "met",
                "dateMet": _instant(awarded.approved_at),
                "dateModified": _instant(awarded.approved_at),
                "description": f"Version {awarded.number} was approved before it was sent by a second member of {agency.name} "
                f"({awarded.approved_by_role or 'signer'}) who neither drafted nor last changed it.",
            }
        ]
    if amendments:
        ocds_contract["amendments"] = [
            {
                "id": str(version.number),
                "date": _instant(version.signed_at),
                "rationale": f"{AMENDMENT_REASONS.get(version.amendment_reason or '', version.amendment_reason or '')}: {version.amendment_rationale}".strip(
                    ": "
                ),
                "description": f"Version {version.number}: value {version.amount_total} {CURRENCY}, "
                f"{version.starts_on.isoformat()} to {version.ends_on.isoformat()}.",
                "releaseID": f"{process}-amendment-{version.id}",
            }
            for version in amendments
        ]
    if payments:
        ocds_contract["implementation"] = {
            "transactions": [
                {
                    "id": f"{invoice.number}-payment-{payment.id}",
                    "date": _day_start(payment.paid_on),
                    "value": _value(payment.amount),
                    "payer": _reference(buyer),
                    "payee": _reference(supplier),
                }
                for payment, invoice in payments
            ]
        }

    related: list[dict[str, Any]] = []
    certificate = await committee.certificate_of_service(session, contract.service_id)
    if certificate is not None:
        related.append(
            {
                "id": "certification",
                "relationship": ["framework"],
                "title": f"Certification {certificate.number} of {certificate.service_name}",
                # Certificates are not published as contracting processes: they are named by their own number.
                "scheme": "x_certificate",
                "identifier": certificate.number,
                "uri": f"/certificates/{certificate.number}",
            }
        )
    if contract.renewal_of_id is not None:
        previous = await session.get(Contract, contract.renewal_of_id)
        if previous is not None and previous.status in PUBLIC:
            related.append(
                {
                    "id": "renews",
                    "relationship": ["prior"],
                    "title": f"Contract {previous.number}",
                    "scheme": "ocid",
                    "identifier": ocid(previous.number, prefix),
                }
            )

    release: dict[str, Any] = {
        "ocid": process,
        "id": release_id,
        "date": at.isoformat(),
        "tag": tags,
        "initiationType": "tender",
        "language": OCDS_LANGUAGE,
        "parties": parties,
        "buyer": _reference(buyer),
        "tender": {
            "id": f"{process}-tender",
            "title": title,
            "status": "complete",
            "procuringEntity": _reference(procuring),
            "procurementMethod": "direct",
            "procurementMethodDetails": ROUTE_DETAILS.get(in_force.route, in_force.route),
            "mainProcurementCategory": "services",
        },
        "awards": [
            {
                "id": award_id,
                "title": awarded_service.name if awarded_service else title,
                "status": "active",
                "date": _instant(awarded.signed_at),
                "value": _value(awarded.amount_total),
                "suppliers": [_reference(supplier)],
                "items": _items(awarded, awarded_service),
                "contractPeriod": {"startDate": _day_start(awarded.starts_on), "endDate": _day_end(awarded.ends_on)},
            }
        ],
        "contracts": [ocds_contract],
    }
    if related:
        release["relatedProcesses"] = related
    return release


# --- writing releases when contracts change -------------------------------------------------------------


async def write_release(
    session: AsyncSession, contract_id: int, event: str, key: str, tags: list[str] | None = None
) -> Release | None:
    """Record the contract as it now stands, once per (contract, key): a repeated event writes nothing."""
    contract = await session.get(Contract, contract_id)
    if contract is None or contract.status not in PUBLIC or contract.signed_version_id is None:
        return None
    process = ocid(contract.number)
    release_id = f"{process}-{key}"
    await lock(session, OCDS_FEED_LOCK)
    if await session.scalar(sa.select(col(Release.id)).where(col(Release.release_id) == release_id)) is not None:
        return None
    now = utcnow()
    tags = list(tags or TAGS[event])
    release = Release(
        contract_id=contract_id,
        ocid=process,
        release_id=release_id,
        tags=tags,
        released_at=now,
        data=await build_release(session, contract, release_id, tags, now),
    )
    session.add(release)
    await session.flush()
    return release


async def backfill(session: AsyncSession) -> int:
    """A first release for every contract in the register that has none (contracts signed before publication began)."""
    missing = (
        await session.execute(
            sa.select(col(Contract.id), col(Contract.status))
            .where(
                col(Contract.status).in_(sorted(PUBLIC)),
                ~sa.exists().where(col(Release.contract_id) == col(Contract.id)),
            )
            .order_by(col(Contract.id))
        )
    ).all()
    written = 0
    for contract_id, status in missing:
        ended = ["contractTermination"] if status in CLOSED else []
        written += (
            await write_release(session, contract_id, "contract.signed", "contract", ["award", "contract", *ended])
            is not None
        )
    return written


async def on_contract_signed(
    session: AsyncSession, contract_id: int, version_id: int | None = None, **_data: object
) -> None:
    await write_release(session, contract_id, "contract.signed", f"contract-{version_id}" if version_id else "contract")


async def on_contract_amended(
    session: AsyncSession, contract_id: int, version_id: int | None = None, **_data: object
) -> None:
    await write_release(session, contract_id, "contract.amended", f"amendment-{version_id}")


async def on_contract_started(session: AsyncSession, contract_id: int, **_data: object) -> None:
    await write_release(session, contract_id, "contract.started", "started")


async def on_contract_completed(session: AsyncSession, contract_id: int, **_data: object) -> None:
    await write_release(session, contract_id, "contract.completed", "completed")


async def on_contract_terminated(session: AsyncSession, contract_id: int, **_data: object) -> None:
    await write_release(session, contract_id, "contract.terminated", "terminated")


async def on_invoice_paid(
    session: AsyncSession, invoice_id: int, payment_id: int | None = None, **_data: object
) -> None:
    invoice = await session.get(Invoice, invoice_id)
    if invoice is not None:
        await write_release(
            session,
            invoice.contract_id,
            "invoice.paid",
            f"payment-{payment_id}" if payment_id else f"invoice-{invoice_id}",
        )


# --- serving them ---------------------------------------------------------------------------------------


def _absolute(release: dict[str, Any], base_url: str) -> dict[str, Any]:
    """Stored releases name the marketplace's pages by path; the published ones by full address."""
    release = copy.deepcopy(release)
    for process in release.get("relatedProcesses", []):
        if str(process.get("uri", "")).startswith("/"):
            process["uri"] = base_url.rstrip("/") + process["uri"]
    return release


def _package(uri: str, base_url: str, published: datetime) -> dict[str, Any]:
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": published.isoformat(),
        "publisher": {"name": PUBLISHER_NAME, "uri": base_url.rstrip("/") + "/"},
        "publicationPolicy": base_url.rstrip("/") + "/contracts/register",
    }


async def releases_page(
    session: AsyncSession,
    *,
    after: int = 0,
    limit: int = FEED_PAGE_SIZE,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[Release], int]:
    """Releases after the cursor (a release row id), oldest first, and the cursor for the next request.

    With nothing new the cursor stays where it was, so a harvester polls the same `next` link until there is.
    """
    statement = sa.select(Release).where(col(Release.id) > after)
    if since is not None:
        statement = statement.where(col(Release.released_at) >= since)
    if until is not None:
        statement = statement.where(col(Release.released_at) < until)
    rows = list((await session.scalars(statement.order_by(col(Release.id)).limit(limit))).all())
    return rows, (rows[-1].id if rows else after)  # type: ignore[return-value]


def release_package(rows: list[Release], *, uri: str, base_url: str, next_uri: str | None) -> dict[str, Any]:
    package = _package(uri, base_url, utcnow())
    package["releases"] = [_absolute(row.data, base_url) for row in rows]
    if next_uri:
        package["links"] = {"next": next_uri}
    return package


async def record_package(session: AsyncSession, process: str, *, uri: str, base_url: str) -> dict[str, Any]:
    rows = list(
        (await session.scalars(sa.select(Release).where(col(Release.ocid) == process).order_by(col(Release.id)))).all()
    )
    if not rows:
        raise NotFound(_("No contracting process %(ocid)s is published.", ocid=process))
    releases = [_absolute(row.data, base_url) for row in rows]
    compiled = copy.deepcopy(releases[-1])  # each release is the whole process at its date, so the latest compiles them
    compiled.update(id=f"{process}-compiled", tag=["compiled"])
    package = _package(uri, base_url, utcnow())
    package["records"] = [{"ocid": process, "releases": releases, "compiledRelease": compiled}]
    return package
