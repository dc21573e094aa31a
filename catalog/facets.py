"""The values the catalogue's filters offer, and how each is shown: the listing vocabulary of
`catalog.schemas`, plus countries, the SLA and price thresholds, and how each plan unit is charged."""

from __future__ import annotations

from catalog import schemas
from catalog.models import Category, DeploymentModel
from market.i18n import _

CATEGORIES = tuple(category.value for category in Category)
DEPLOYMENT_MODELS = tuple(model.value for model in DeploymentModel)
# "other" certifications are named freely and not kept in the search projection, so they cannot be filtered.
CERTIFICATIONS = tuple(scheme for scheme in schemas.CERTIFICATION_SCHEMES if scheme != "other")
CSAP_GRADES = schemas.CSAP_GRADES

# Thresholds offered as facet values; any other value typed in the box works too.
SLA_THRESHOLDS_BP = (9900, 9950, 9990, 9995, 9999)
PRICE_THRESHOLDS = (10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000)

# How a plan's unit price is charged over time; units not named here are taken as monthly.
CHARGING = {
    "user_month": "monthly",
    "instance_month": "monthly",
    "gb_month": "monthly",
    "month": "monthly",
    "vcpu_hour": "hourly",
    "year": "yearly",
    "project": "once",
    "person_day": "once",
}


def country_labels() -> dict[str, str]:
    return {
        "KR": _("Korea"),
        "US": _("United States"),
        "JP": _("Japan"),
        "SG": _("Singapore"),
        "DE": _("Germany"),
        "IE": _("Ireland"),
        "GB": _("United Kingdom"),
        "FR": _("France"),
        "HK": _("Hong Kong"),
        "AU": _("Australia"),
    }


def category_label(value: str) -> str:
    return schemas.category_labels().get(value, value)


def deployment_label(value: str) -> str:
    return schemas.deployment_labels().get(value, value)


def certification_label(value: str) -> str:
    return schemas.scheme_labels().get(value, value)


def grade_label(value: str) -> str:
    return schemas.grade_labels().get(value, value)


def country_label(value: str) -> str:
    return country_labels().get(value, value)


def unit_label(unit: str) -> str:
    return schemas.unit_labels().get(unit, unit.replace("_", " "))


def percent(basis_points: int | None) -> str:
    """9995 -> "99.95 %"; trailing zeros dropped (9900 -> "99 %")."""
    if basis_points is None:
        return ""
    whole, part = divmod(basis_points, 100)
    return f"{whole}.{part:02d}".rstrip("0").rstrip(".") + " %"
