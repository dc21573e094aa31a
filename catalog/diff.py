"""The differences between two texts of a service, field by field and plan by plan, as people read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from catalog import schemas
from market.formatting import money
from market.i18n import _, ngettext


@dataclass(frozen=True)
class Change:
    field: str  # the form's field name: "summary", "plans.0.unit_price", "certifications.1"
    label: str
    old: str
    new: str


def field_labels() -> dict[str, str]:
    return {
        "name": _("Name"),
        "summary": _("Summary"),
        "description": _("Description"),
        "category": _("Category"),
        "deployment_model": _("Deployment model"),
        "features": _("Features"),
        "benefits": _("Benefits"),
        "data_country": _("Data location: country"),
        "data_region": _("Data location: region"),
        "certifications": _("Certifications"),
        "sla_availability_bp": _("SLA availability"),
        "support_hours": _("Support hours"),
        "support_channels": _("Support channels"),
        "response_time_minutes": _("Response time"),
        "service_credits": _("Service credits"),
        "onboarding_terms": _("Onboarding"),
        "data_export_format": _("Data export format"),
        "data_return_terms": _("Data return"),
        "data_deletion_terms": _("Data deletion"),
        "plans": _("Plans"),
    }


def plan_field_labels() -> dict[str, str]:
    return {
        "name": _("name"),
        "unit": _("unit"),
        "unit_price": _("unit price"),
        "vat_included": _("VAT included"),
        "minimum_term_months": _("minimum term"),
        "free_trial_days": _("free trial"),
    }


def percentage(bp: int | None) -> str:
    return "" if bp is None else f"{bp / 100:.2f}".rstrip("0").rstrip(".") + " %"


def certification_text(certification: dict[str, Any]) -> str:
    scheme = certification.get("scheme") or ""
    parts = [certification.get("name") or scheme if scheme == "other" else schemes_short().get(scheme, scheme)]
    if scheme == "CSAP":
        parts.append(schemas.csap_type_labels().get(certification.get("csap_type") or "", ""))
        grade = schemas.grade_labels().get(certification.get("grade") or "")
        if grade:
            parts.append(_("grade %(grade)s", grade=grade.lower()))
    start, end = certification.get("valid_from") or "", certification.get("valid_to") or ""
    if start or end:
        parts.append(_("valid %(start)s to %(end)s", start=start or "?", end=end or "?"))
    return ", ".join(part for part in parts if part)


def schemes_short() -> dict[str, str]:
    return {
        "CSAP": "CSAP",
        "ISO27001": "ISO/IEC 27001",
        "ISO27017": "ISO/IEC 27017",
        "ISO27018": "ISO/IEC 27018",
        "other": _("Other"),
    }


def show(field: str, value: Any) -> str:
    """One stored value as a reader sees it."""
    if value is None or value == "" or value == []:
        return ""
    if field == "category":
        return schemas.category_labels().get(value, value)
    if field == "deployment_model":
        return schemas.deployment_labels().get(value, value)
    if field == "support_channels":
        labels = schemas.channel_labels()
        return ", ".join(labels.get(item, item) for item in value)
    if field == "sla_availability_bp":
        return percentage(value)
    if field == "response_time_minutes":
        return ngettext("%(num)s minute", "%(num)s minutes", value)
    if field in {"features", "benefits"}:
        return "; ".join(value)
    return str(value)


def show_plan(field: str, value: Any) -> str:
    if field == "unit":
        return schemas.unit_labels().get(value, value or "")
    if field == "unit_price":
        return money(value)
    if field == "vat_included":
        return _("Yes") if value else _("No")
    if field == "minimum_term_months":
        return ngettext("%(num)s month", "%(num)s months", value or 0)
    if field == "free_trial_days":
        return ngettext("%(num)s day", "%(num)s days", value or 0)
    return "" if value is None else str(value)


def file_size(size: int) -> str:
    if size < 1024 * 1024:
        return _("%(n)s KB", n=max(1, round(size / 1024)))
    return _("%(n)s MB", n=f"{size / (1024 * 1024):.1f}")


def flatten(content: dict[str, Any], rows: dict[str, int] | None = None) -> dict[str, tuple[str, str]]:
    """Every field of a version as field name -> (label, shown value), in display order.

    `rows` pads plans and certifications to a number of rows, so that two versions line up.
    """
    labels = field_labels()
    out: dict[str, tuple[str, str]] = {}
    certifications = list(content.get("certifications") or [])
    plans = list(content.get("plans") or [])
    for field in schemas.VERSION_FIELDS:
        if field == "certifications":
            for index in range((rows or {}).get("certifications", len(certifications))):
                value = certification_text(certifications[index]) if index < len(certifications) else ""
                out[f"certifications.{index}"] = (_("Certification %(n)s", n=index + 1), value)
            continue
        out[field] = (labels[field], show(field, content.get(field)))
    plan_labels = plan_field_labels()
    for index in range((rows or {}).get("plans", len(plans))):
        plan = plans[index] if index < len(plans) else None
        for field in schemas.PLAN_FIELDS:
            value = show_plan(field, plan.get(field)) if plan is not None else ""
            out[f"plans.{index}.{field}"] = (_("Plan %(n)s: %(field)s", n=index + 1, field=plan_labels[field]), value)
    return out


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The fields whose shown value differs, in display order; a plan added or removed shows as changed rows."""
    rows = {group: max(len(old.get(group) or []), len(new.get(group) or [])) for group in ("plans", "certifications")}
    before, after = flatten(old, rows), flatten(new, rows)
    return [
        Change(field, label, before[field][1], value)
        for field, (label, value) in after.items()
        if before[field][1] != value
    ]
