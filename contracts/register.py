"""The open contract register: every contract both parties signed, with what the public may know of it.

Reads only: the register shows the text in force (the latest version both sides signed), never the document,
the signatures' addresses or anything from before signature.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog import CATEGORIES, category_label, service_version_names, unit_label
from contracts.models import Contract, ContractStatus, ContractVersion, VersionKind
from contracts.schemas import amendment_reason_labels, route_labels
from contracts.views import Agency, ContractRow, Provider, Shown, amount_paid, row_values, rows_select
from contracts.workflow import CONTRACT, PUBLIC
from market.csv_export import CsvWriter
from market.errors import NotFound
from market.i18n import _
from market.models import Organisation
from market.web import PAGE_SIZE, Page, check_page


def route_label(route: str) -> str:
    return route_labels().get(route, route)


def status_options() -> list[tuple[str, str]]:
    return [("", _("Any status"))] + [(s, CONTRACT.label(s)) for s in CONTRACT.labels if s in PUBLIC]


def route_options() -> list[tuple[str, str]]:
    return [("", _("Any route")), *list(route_labels().items())]


def category_options() -> list[tuple[str, str]]:
    return [("", _("Any category"))] + [(c, category_label(c)) for c in CATEGORIES]


def sort_options() -> list[tuple[str, str]]:
    return [
        ("newest", _("Signed, newest first")),
        ("oldest", _("Signed, oldest first")),
        ("value_desc", _("Value, highest first")),
        ("value_asc", _("Value, lowest first")),
        ("ends", _("End date, soonest first")),
        ("agency", _("Agency, A to Z")),
        ("provider", _("Provider, A to Z")),
    ]


class RegisterQuery(BaseModel):
    """The register's search: a keyword and filters, all optional; unknown values are refused by name."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    q: str = Field(default="", max_length=200)
    status: Literal["", "signed", "active", "completed", "terminated"] = ""  # the public states (workflow.PUBLIC)
    route: Literal["", "direct", "central"] = ""
    category: str = ""
    agency: int | None = None
    year: int | None = Field(default=None, ge=2000, le=2100)
    sort: Literal["newest", "oldest", "value_desc", "value_asc", "ends", "agency", "provider"] = "newest"

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value and value not in CATEGORIES:
            raise ValueError(_("Choose one of the offered values."))
        return value

    @field_validator("agency", "year", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def params(self, **override: Any) -> dict[str, str]:
        """The query as URL parameters, blanks left out (for links that keep the filters)."""
        values = {**self.model_dump(), **override}
        return {
            key: str(value)
            for key, value in values.items()
            if value not in ("", None) and not (key == "sort" and value == "newest")
        }


@dataclass(frozen=True)
class RegisterRow(ContractRow):
    """A contract as the register lists it: the text in force, the service's category, when it first bound both
    parties and when it ended."""

    category: str
    signed_at: datetime | None
    ended_on: date | None

    @property
    def route_label(self) -> str:
        return route_label(self.route)

    @property
    def category_label(self) -> str:
        return category_label(self.category) if self.category else ""


# --- the query ------------------------------------------------------------------------------------------


def _first_signed() -> Any:
    """When each contract first became binding: the earliest time a version of it was signed by both."""
    return (
        sa.select(
            col(ContractVersion.contract_id).label("contract_id"),
            sa.func.min(col(ContractVersion.signed_at)).label("signed_at"),
        )
        .where(col(ContractVersion.signed_at).is_not(None))
        .group_by(col(ContractVersion.contract_id))
        .subquery("first_signed")
    )


FirstSigned = _first_signed()


def _base() -> sa.Select[Any]:
    """The contract rows of the register: a public contract's shown version is the one both parties signed."""
    return (
        rows_select(
            service_version_names().c.category.label("category"), FirstSigned.c.signed_at, col(Contract.ended_on)
        )
        .outerjoin(FirstSigned, FirstSigned.c.contract_id == col(Contract.id))
        .where(col(Contract.status).in_(sorted(PUBLIC)))
    )


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def year_bounds(year: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A calendar year in the marketplace's time zone, as UTC instants [start, end)."""
    return datetime.combine(date(year, 1, 1), time(), zone), datetime.combine(date(year + 1, 1, 1), time(), zone)


def _filtered(query: RegisterQuery, zone: ZoneInfo) -> sa.Select[Any]:
    statement = _base()
    if query.q:
        pattern = _like(query.q)
        statement = statement.where(
            sa.or_(
                *[
                    sa.func.lower(column).like(pattern, escape="\\")
                    for column in (
                        col(Contract.number),
                        col(Agency.name),
                        col(Provider.name),
                        service_version_names().c.name,
                    )
                ]
            )
        )
    if query.status:
        statement = statement.where(col(Contract.status) == query.status)
    if query.route:
        statement = statement.where(col(Shown.route) == query.route)
    if query.category:
        statement = statement.where(service_version_names().c.category == query.category)
    if query.agency is not None:
        statement = statement.where(col(Contract.agency_id) == query.agency)
    if query.year is not None:
        start, end = year_bounds(query.year, zone)
        statement = statement.where(FirstSigned.c.signed_at >= start, FirstSigned.c.signed_at < end)
    return statement


def _ordered(statement: sa.Select[Any], sort: str) -> sa.Select[Any]:
    # Every order ends with the contract id, so pages never overlap or skip a row between requests.
    orders: dict[str, list[Any]] = {
        "newest": [FirstSigned.c.signed_at.desc(), col(Contract.id).desc()],
        "oldest": [FirstSigned.c.signed_at.asc(), col(Contract.id).asc()],
        "value_desc": [col(Shown.amount_total).desc(), col(Contract.id).desc()],
        "value_asc": [col(Shown.amount_total).asc(), col(Contract.id).asc()],
        "ends": [col(Shown.ends_on).asc(), col(Contract.id).asc()],
        "agency": [col(Agency.name).asc(), col(Contract.id).asc()],
        "provider": [col(Provider.name).asc(), col(Contract.id).asc()],
    }
    return statement.order_by(*orders[sort])


def _row(values: Any) -> RegisterRow:
    return RegisterRow(**row_values(values))


async def search(
    session: AsyncSession, query: RegisterQuery, page_number: int, zone: ZoneInfo
) -> tuple[list[RegisterRow], Page]:
    """One page of the register (20 rows); a page beyond the end is 404."""
    statement = _filtered(query, zone)
    total = int(await session.scalar(sa.select(sa.func.count()).select_from(statement.subquery())) or 0)
    page = check_page(Page(page_number, PAGE_SIZE, total))
    rows = (await session.execute(_ordered(statement, query.sort).offset(page.offset).limit(page.size))).all()
    return [_row(values) for values in rows], page


async def all_rows(session: AsyncSession, query: RegisterQuery, zone: ZoneInfo) -> list[RegisterRow]:
    rows = (await session.execute(_ordered(_filtered(query, zone), query.sort))).all()
    return [_row(values) for values in rows]


async def agency_options(session: AsyncSession) -> list[tuple[str, str]]:
    """Agencies with at least one contract in the register, for the filter."""
    rows = (
        await session.execute(
            sa.select(col(Organisation.id), col(Organisation.name))
            .where(
                col(Organisation.id).in_(
                    sa.select(col(Contract.agency_id)).where(col(Contract.status).in_(sorted(PUBLIC)))
                )
            )
            .order_by(col(Organisation.name), col(Organisation.id))
        )
    ).all()
    return [("", _("Any agency"))] + [(str(row.id), row.name) for row in rows]


async def year_options(session: AsyncSession, zone: ZoneInfo) -> list[tuple[str, str]]:
    times = (
        await session.scalars(
            sa.select(FirstSigned.c.signed_at)
            .select_from(Contract)
            .join(FirstSigned, FirstSigned.c.contract_id == col(Contract.id))
            .where(col(Contract.status).in_(sorted(PUBLIC)))
        )
    ).all()
    years = sorted({moment.astimezone(zone).year for moment in times if moment is not None}, reverse=True)
    return [("", _("Any year"))] + [(str(year), str(year)) for year in years]


def row_json(row: RegisterRow) -> dict[str, Any]:
    return {
        "number": row.number,
        "status": row.status,
        "agency": {"id": row.agency_id, "name": row.agency_name},
        "provider": {"id": row.provider_id, "name": row.provider_name},
        "service": {"id": row.service_id, "name": row.service_name, "category": row.category, "plan": row.plan_name},
        "route": row.route,
        "currency": "KRW",
        "amount_net": row.amount_net,
        "amount_vat": row.amount_vat,
        "amount_total": row.amount_total,
        "starts_on": row.starts_on.isoformat(),
        "ends_on": row.ends_on.isoformat(),
        "signed_at": row.signed_at.isoformat() if row.signed_at else None,
        "ended_on": row.ended_on.isoformat() if row.ended_on else None,
    }


# --- CSV -------------------------------------------------------------------------------------------------


def csv_text(rows: list[RegisterRow], zone: ZoneInfo) -> str:
    writer = CsvWriter()
    writer.writerow(
        [
            _("Number"),
            _("Status"),
            _("Agency"),
            _("Provider"),
            _("Service"),
            _("Category"),
            _("Plan"),
            _("Route"),
            _("Value before VAT (KRW)"),
            _("VAT (KRW)"),
            _("Value with VAT (KRW)"),
            _("Starts on"),
            _("Ends on"),
            _("Signed on"),
            _("Ended on"),
        ]
    )
    for row in rows:
        writer.writerow(
            (
                row.number,
                row.status_label,
                row.agency_name,
                row.provider_name,
                row.service_name,
                row.category_label,
                row.plan_name,
                row.route_label,
                row.amount_net,
                row.amount_vat,
                row.amount_total,
                row.starts_on.isoformat(),
                row.ends_on.isoformat(),
                row.signed_at.astimezone(zone).date().isoformat() if row.signed_at else "",
                row.ended_on.isoformat() if row.ended_on else "",
            )
        )
    return writer.text(byte_order_mark=False)


# --- one contract ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amendment:
    number: int
    reason: str
    rationale: str
    signed_at: datetime | None
    amount_total: int
    ends_on: date


@dataclass(frozen=True)
class RegisterEntry:
    row: RegisterRow
    quantity: int
    unit: str
    billing_period: str
    vat_rate_bp: int
    amendments: list[Amendment]
    amount_paid: int
    end_reason: str
    renewal_of: str | None


async def entry(session: AsyncSession, number: str) -> RegisterEntry:
    """One contract as the register shows it; a contract never signed (or unknown) is 404."""
    values = (await session.execute(_base().where(col(Contract.number) == number.strip().upper()))).first()
    if values is None:
        raise NotFound(_("No contract %(number)s is in the register.", number=number))
    row = _row(values)
    contract = await session.get(Contract, row.id)
    assert contract is not None
    in_force = await session.get(ContractVersion, contract.signed_version_id)
    assert in_force is not None
    amendments = (
        await session.scalars(
            sa.select(ContractVersion)
            .where(
                col(ContractVersion.contract_id) == row.id,
                col(ContractVersion.kind) == VersionKind.amendment,
                col(ContractVersion.signed_at).is_not(None),
            )
            .order_by(col(ContractVersion.number))
        )
    ).all()
    reasons = amendment_reason_labels()
    renewal_of = None
    if contract.renewal_of_id is not None:
        previous = await session.get(Contract, contract.renewal_of_id)
        renewal_of = previous.number if previous is not None and previous.status in PUBLIC else None
    return RegisterEntry(
        row=row,
        quantity=in_force.quantity,
        unit=unit_label(str(in_force.plan["unit"])) if in_force.plan.get("unit") else "",
        billing_period=in_force.billing_period,
        vat_rate_bp=in_force.vat_rate_bp,
        amendments=[
            Amendment(
                number=v.number,
                reason=reasons.get(v.amendment_reason or "", v.amendment_reason or ""),
                rationale=v.amendment_rationale,
                signed_at=v.signed_at,
                amount_total=v.amount_total,
                ends_on=v.ends_on,
            )
            for v in amendments
        ],
        amount_paid=await amount_paid(session, row.id),
        end_reason=contract.end_reason if contract.status == ContractStatus.terminated else "",
        renewal_of=renewal_of,
    )


# --- statistics -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    key: str
    label: str
    contracts: int
    value: int


@dataclass(frozen=True)
class Statistics:
    contracts: int
    value: int
    by_category: list[Tally]
    by_agency: list[Tally]
    by_month: list[Tally]


def _tallies(groups: dict[str, list[int]], labels: dict[str, str]) -> list[Tally]:
    return [
        Tally(key=key, label=labels.get(key, key), contracts=len(values), value=sum(values))
        for key, values in groups.items()
    ]


async def statistics(session: AsyncSession, zone: ZoneInfo, year: int | None = None) -> Statistics:
    """Contracts and their value (with VAT, as in force) by category, by agency and by month of signature."""
    query = RegisterQuery(year=year)
    rows = await all_rows(session, query, zone)
    by_category: dict[str, list[int]] = defaultdict(list)
    by_agency: dict[str, list[int]] = defaultdict(list)
    by_month: dict[str, list[int]] = defaultdict(list)
    agency_names: dict[str, str] = {}
    for row in rows:
        by_category[row.category].append(row.amount_total)
        by_agency[str(row.agency_id)].append(row.amount_total)
        agency_names[str(row.agency_id)] = row.agency_name
        if row.signed_at is not None:
            by_month[row.signed_at.astimezone(zone).strftime("%Y-%m")].append(row.amount_total)
    categories = sorted(
        _tallies(by_category, {c: category_label(c) for c in CATEGORIES}), key=lambda t: (-t.value, t.label)
    )
    agencies = sorted(_tallies(by_agency, agency_names), key=lambda t: (-t.value, t.label))
    months = sorted(_tallies(by_month, {}), key=lambda t: t.key)
    return Statistics(
        contracts=len(rows),
        value=sum(row.amount_total for row in rows),
        by_category=categories,
        by_agency=agencies,
        by_month=months,
    )
