"""Comparing 2 to 4 services side by side, and what each plan would cost for a buyer's quantity and term.

Services come from search results (their listed versions) or from a project's ended search (the versions
frozen in its snapshot). Every attribute is one row; a row whose values are not all the same is marked.
Prices are computed here, on the server, from the stored plans: totals and monthly cost with VAT (10 %)
shown separately.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from catalog import schemas
from catalog.facets import (
    CHARGING,
    category_label,
    certification_label,
    country_label,
    deployment_label,
    grade_label,
    percent,
    unit_label,
)
from catalog.listings import version_content
from catalog.models import ListedService, Project, ProjectStatus, ServiceVersion, SnapshotItem
from market.auth import Principal
from market.csv_export import CsvWriter
from market.errors import Invalid, NotFound
from market.formatting import day, money, number
from market.guards import ensure_owner
from market.i18n import _
from market.models import Organisation

MIN_SERVICES = 2
MAX_SERVICES = 4
VAT_PERCENT = 10
HOURS_PER_MONTH = 730
MAX_QUANTITY = 1_000_000
MAX_MONTHS = 120


# --- input ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    ids: tuple[int, ...]
    quantity: int = 1
    months: int = 12
    project_id: int | None = None


def _values(raw: Mapping[str, Any], name: str) -> list[str]:
    value = raw.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [str(item).strip() for item in items if str(item).strip()]


def parse_request(raw: Mapping[str, Any]) -> Request:
    """ids (2 to 4 services), quantity and months (whole numbers from 1), project (optional)."""
    errors: dict[str, str] = {}
    ids: list[int] = []
    for value in _values(raw, "ids"):
        if not re.fullmatch(r"\d{1,9}", value):
            errors["ids"] = _("Services are chosen by their number.")
            break
        if int(value) not in ids:
            ids.append(int(value))
    if "ids" not in errors and not MIN_SERVICES <= len(ids) <= MAX_SERVICES:
        errors["ids"] = _("Choose from %(low)s to %(high)s services to compare.", low=MIN_SERVICES, high=MAX_SERVICES)

    def whole(name: str, default: int, high: int) -> int:
        found = _values(raw, name)
        if not found:
            return default
        text = found[-1].replace(",", "")
        if not re.fullmatch(r"\d{1,9}", text) or not 1 <= int(text) <= high:
            errors[name] = _("Enter a whole number from 1 to %(high)s.", high=number(high))
            return default
        return int(text)

    quantity = whole("quantity", 1, MAX_QUANTITY)
    months = whole("months", 12, MAX_MONTHS)
    project_id = None
    if project := _values(raw, "project"):
        if re.fullmatch(r"\d{1,9}", project[-1]):
            project_id = int(project[-1])
        else:
            errors["project"] = _("Enter a whole number.")
    if errors:
        raise Invalid(_("Please correct: %(fields)s.", fields=", ".join(errors)), errors=errors)
    return Request(tuple(ids), quantity, months, project_id)


# --- cost -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    net: int
    vat: int

    @property
    def gross(self) -> int:
        return self.net + self.vat


def _divide(numerator: int, denominator: int) -> int:
    """Whole won, halves rounded up."""
    return (2 * numerator + denominator) // (2 * denominator)


def with_vat(amount: int, vat_included: bool) -> Amount:
    """Split an amount into net and VAT: a VAT-inclusive price holds 10/110 of VAT; otherwise 10 % is added."""
    if vat_included:
        net = _divide(amount * 100, 100 + VAT_PERCENT)
        return Amount(net, amount - net)
    return Amount(amount, _divide(amount * VAT_PERCENT, 100))


@dataclass(frozen=True)
class Cost:
    plan: str
    unit: str
    unit_label: str
    unit_price: int | None
    vat_included: bool
    charging: str
    billed_months: int
    monthly: Amount | None
    total: Amount | None
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def amount(value: Amount | None) -> dict[str, int] | None:
            return {"net": value.net, "vat": value.vat, "gross": value.gross} if value else None

        return {
            "plan": self.plan,
            "unit": self.unit,
            "unit_price": self.unit_price,
            "vat_included": self.vat_included,
            "charging": self.charging,
            "billed_months": self.billed_months,
            "monthly": amount(self.monthly),
            "total": amount(self.total),
            "notes": list(self.notes),
        }


def plan_cost(plan: Mapping[str, Any], quantity: int, months: int) -> Cost:
    """The cost of one plan for `quantity` units over `months` months (at least its minimum term)."""
    unit = plan.get("unit") or ""
    price = plan.get("unit_price")
    charging = CHARGING.get(unit, "monthly")
    minimum = int(plan.get("minimum_term_months") or 0)
    billed = max(months, minimum)
    notes: list[str] = []
    if minimum > months:
        notes.append(_("Minimum term %(n)s months: billed for %(n)s months.", n=minimum))
    if charging == "hourly":
        notes.append(_("Hourly price counted for %(h)s hours a month.", h=HOURS_PER_MONTH))
    if charging == "once":
        notes.append(_("Charged once; the monthly figure spreads it over the term."))
    if charging == "yearly":
        notes.append(_("Charged per year started."))
    if plan.get("free_trial_days"):
        notes.append(_("Free trial of %(n)s days, not deducted here.", n=plan["free_trial_days"]))
    if price is None:
        return Cost(
            plan.get("name") or "",
            unit,
            unit_label(unit),
            None,
            bool(plan.get("vat_included")),
            charging,
            billed,
            None,
            None,
            (_("No price given."),),
        )
    if charging == "hourly":
        total = price * quantity * HOURS_PER_MONTH * billed
    elif charging == "yearly":
        total = price * quantity * -(-billed // 12)
    elif charging == "once":
        total = price * quantity
    else:
        total = price * quantity * billed
    vat_included = bool(plan.get("vat_included"))
    return Cost(
        plan=plan.get("name") or "",
        unit=unit,
        unit_label=unit_label(unit),
        unit_price=price,
        vat_included=vat_included,
        charging=charging,
        billed_months=billed,
        monthly=with_vat(_divide(total, billed), vat_included),
        total=with_vat(total, vat_included),
        notes=tuple(notes),
    )


# --- the comparison -------------------------------------------------------------------------------


@dataclass
class Column:
    service_id: int
    version_number: int
    name: str
    provider_name: str
    url: str
    content: dict[str, Any]
    costs: list[Cost] = field(default_factory=list)


@dataclass
class Row:
    key: str
    label: str
    values: list[str]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


@dataclass
class Comparison:
    columns: list[Column]
    rows: list[Row]
    quantity: int
    months: int
    project_id: int | None = None

    @property
    def ids(self) -> list[int]:
        return [column.service_id for column in self.columns]

    def to_json(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity,
            "months": self.months,
            "project": self.project_id,
            "vat_percent": VAT_PERCENT,
            "services": [
                {
                    "id": column.service_id,
                    "version": column.version_number,
                    "name": column.name,
                    "provider": column.provider_name,
                    "url": column.url,
                    "costs": [cost.to_json() for cost in column.costs],
                }
                for column in self.columns
            ],
            "rows": [
                {"key": row.key, "label": row.label, "values": row.values, "differs": row.differs} for row in self.rows
            ],
        }


async def compare(session: AsyncSession, viewer: Principal | None, request: Request) -> Comparison:
    """The services' listed versions side by side; with a project, the versions its ended search froze."""
    versions = (
        await _project_versions(session, viewer, request)
        if request.project_id
        else await _listed_versions(session, request.ids)
    )
    columns: list[Column] = []
    for service_id in request.ids:
        version, provider = versions[service_id]
        content = await version_content(session, version)
        content["provider"] = {
            "name": provider.name if provider else "",
            "is_sme": bool(provider and provider.is_sme),
            "contact_email": provider.contact_email if provider else "",
            "contact_phone": provider.contact_phone if provider else "",
        }
        content["listed_at"] = version.listed_at
        column = Column(
            service_id, version.number, version.name, content["provider"]["name"], f"/services/{service_id}", content
        )
        column.costs = [plan_cost(plan, request.quantity, request.months) for plan in content["plans"]]
        columns.append(column)
    return Comparison(columns, _rows(columns), request.quantity, request.months, request.project_id)


async def _listed_versions(
    session: AsyncSession, ids: Iterable[int]
) -> dict[int, tuple[ServiceVersion, Organisation | None]]:
    ids = list(ids)
    rows = (
        await session.execute(
            sa.select(col(ListedService.service_id), ServiceVersion, Organisation)
            .join(ServiceVersion, col(ServiceVersion.id) == col(ListedService.version_id))
            .outerjoin(Organisation, col(Organisation.id) == col(ListedService.provider_id))
            .where(col(ListedService.service_id).in_(ids))
        )
    ).all()
    found = {row[0]: (row[1], row[2]) for row in rows}
    missing = [str(service_id) for service_id in ids if service_id not in found]
    if missing:
        raise NotFound(_("No listed service numbered %(ids)s.", ids=", ".join(missing)))
    return found


async def _project_versions(
    session: AsyncSession, viewer: Principal | None, request: Request
) -> dict[int, tuple[ServiceVersion, Organisation | None]]:
    """The versions the project's ended search froze, with the provider as the snapshot recorded it."""
    project = await session.get(Project, request.project_id)
    if project is None or viewer is None:
        raise NotFound(_("No such project."))
    ensure_owner(viewer, project.agency_id)
    if project.status != ProjectStatus.ended:
        raise NotFound(_("This project's search has not ended; compare from the search results instead."))
    rows = (
        await session.execute(
            sa.select(col(SnapshotItem.service_id), col(SnapshotItem.data), ServiceVersion)
            .join(ServiceVersion, col(ServiceVersion.id) == col(SnapshotItem.version_id))
            .where(col(SnapshotItem.project_id) == project.id, col(SnapshotItem.service_id).in_(request.ids))
        )
    ).all()
    found: dict[int, tuple[ServiceVersion, Organisation | None]] = {}
    for service_id, data, version in rows:
        contact = data.get("contact") or {}
        provider = Organisation(
            kind="provider",
            name=data.get("provider", ""),
            is_sme=bool(data.get("provider_sme")),
            contact_email=contact.get("email", ""),
            contact_phone=contact.get("phone", ""),
        )
        found[service_id] = (version, provider)
    missing = [str(service_id) for service_id in request.ids if service_id not in found]
    if missing:
        raise NotFound(_("Services %(ids)s are not in this project's results.", ids=", ".join(missing)))
    return found


def _yes_no(value: Any) -> str:
    return _("Yes") if value else _("No")


def _certification(item: Mapping[str, Any]) -> str:
    scheme = item.get("scheme") or ""
    text = item["name"] if scheme == "other" and item.get("name") else certification_label(scheme)
    details = []
    if scheme == "CSAP":
        if item.get("csap_type"):
            details.append(schemas.csap_type_labels().get(item["csap_type"], item["csap_type"]))
        if item.get("grade"):
            details.append(_("grade %(g)s", g=grade_label(item["grade"])))
    if item.get("valid_from") or item.get("valid_to"):
        details.append(
            _("valid %(start)s to %(end)s", start=item.get("valid_from") or "?", end=item.get("valid_to") or "?")
        )
    return f"{text} ({', '.join(details)})" if details else text


def _plan(plan: Mapping[str, Any]) -> str:
    price = plan.get("unit_price")
    parts = [
        f"{plan.get('name') or ''}: "
        + (f"{money(price)} {unit_label(plan.get('unit') or '')}" if price is not None else _("no price")),
        _("VAT included") if plan.get("vat_included") else _("VAT excluded"),
    ]
    if plan.get("minimum_term_months"):
        parts.append(_("minimum term %(n)s months", n=plan["minimum_term_months"]))
    if plan.get("free_trial_days"):
        parts.append(_("free trial %(n)s days", n=plan["free_trial_days"]))
    return ", ".join(parts)


def _lowest(plans: list[Mapping[str, Any]]) -> str:
    priced = [plan for plan in plans if plan.get("unit_price") is not None]
    if not priced:
        return ""
    cheapest = min(priced, key=lambda plan: plan["unit_price"])
    return f"{money(cheapest['unit_price'])} {unit_label(cheapest.get('unit') or '')}"


def attributes() -> list[tuple[str, str, Any]]:
    """Every attribute a buyer compares: (key, label, how to show it from a version's content)."""
    channels = schemas.channel_labels()
    return [
        ("provider", _("Provider"), lambda c: c["provider"]["name"]),
        ("sme", _("Provider is an SME"), lambda c: _yes_no(c["provider"]["is_sme"])),
        (
            "contact",
            _("Provider contact"),
            lambda c: " ".join(filter(None, [c["provider"]["contact_email"], c["provider"]["contact_phone"]])),
        ),
        ("summary", _("Summary"), lambda c: c.get("summary") or ""),
        ("description", _("Description"), lambda c: c.get("description") or ""),
        ("category", _("Category"), lambda c: category_label(c.get("category") or "")),
        ("deployment_model", _("Deployment model"), lambda c: deployment_label(c.get("deployment_model") or "")),
        ("features", _("Features"), lambda c: "; ".join(c.get("features") or [])),
        ("benefits", _("Benefits"), lambda c: "; ".join(c.get("benefits") or [])),
        (
            "data_location",
            _("Data location"),
            lambda c: ", ".join(filter(None, [country_label(c.get("data_country") or ""), c.get("data_region") or ""])),
        ),
        (
            "certifications",
            _("Certifications"),
            lambda c: "; ".join(_certification(item) for item in c.get("certifications") or []),
        ),
        ("sla_availability", _("SLA availability"), lambda c: percent(c.get("sla_availability_bp"))),
        ("support_hours", _("Support hours"), lambda c: c.get("support_hours") or ""),
        (
            "support_channels",
            _("Support channels"),
            lambda c: ", ".join(channels.get(item, item) for item in c.get("support_channels") or []),
        ),
        (
            "response_time",
            _("Response time"),
            lambda c: (
                _("%(n)s minutes", n=c["response_time_minutes"]) if c.get("response_time_minutes") is not None else ""
            ),
        ),
        ("service_credits", _("Service credits"), lambda c: c.get("service_credits") or ""),
        ("onboarding_terms", _("Onboarding"), lambda c: c.get("onboarding_terms") or ""),
        ("data_export_format", _("Data export format"), lambda c: c.get("data_export_format") or ""),
        ("data_return_terms", _("Data return"), lambda c: c.get("data_return_terms") or ""),
        ("data_deletion_terms", _("Data deletion"), lambda c: c.get("data_deletion_terms") or ""),
        ("plans", _("Plans"), lambda c: " | ".join(_plan(plan) for plan in c.get("plans") or [])),
        ("lowest_price", _("Lowest price"), lambda c: _lowest(c.get("plans") or [])),
        ("listed_at", _("Listed since"), lambda c: day(c.get("listed_at"))),
    ]


def _rows(columns: list[Column]) -> list[Row]:
    return [Row(key, label, [show(column.content) for column in columns]) for key, label, show in attributes()]


# --- export ---------------------------------------------------------------------------------------


def to_csv(comparison: Comparison) -> str:
    """The table as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read Korean): attributes, then costs."""
    writer = CsvWriter()
    writer.writerow([_("Attribute"), *[column.name for column in comparison.columns], _("Differs")])
    writer.writerow([_("Service page"), *[column.url for column in comparison.columns], ""])
    for row in comparison.rows:
        writer.writerow([row.label, *row.values, _("Yes") if row.differs else _("No")])
    writer.writerow([])
    writer.writerow(
        [
            _(
                "Cost for a quantity of %(q)s over %(m)s months (VAT %(v)s %%)",
                q=comparison.quantity,
                m=comparison.months,
                v=VAT_PERCENT,
            )
        ]
    )
    writer.writerow(
        [
            _("Service"),
            _("Plan"),
            _("Unit"),
            _("Unit price"),
            _("Months billed"),
            _("Monthly, before VAT"),
            _("Monthly VAT"),
            _("Monthly with VAT"),
            _("Total, before VAT"),
            _("Total VAT"),
            _("Total with VAT"),
            _("Notes"),
        ]
    )
    for column in comparison.columns:
        for cost in column.costs:
            money = (
                [
                    cost.monthly.net,
                    cost.monthly.vat,
                    cost.monthly.gross,
                    cost.total.net,
                    cost.total.vat,
                    cost.total.gross,
                ]
                if cost.monthly and cost.total
                else [""] * 6
            )
            writer.writerow(
                [
                    column.name,
                    cost.plan,
                    cost.unit_label,
                    cost.unit_price if cost.unit_price is not None else "",
                    cost.billed_months,
                    *money,
                    " ".join(cost.notes),
                ]
            )
    return writer.text()
