"""Input for listings: a draft accepts what is there; a submission must be complete, and says all that is not.

Field names in error messages are the same dotted paths the forms use (`plans.0.unit_price`), so a
message links to its input.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeAlias, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from catalog.models import Category, DeploymentModel
from market.errors import Invalid
from market.formatting import number
from market.i18n import _
from market.schemas import MONEY_MAX
from market.web import parse

Model = TypeVar("Model", bound=BaseModel)

CERTIFICATION_SCHEMES = ("CSAP", "ISO27001", "ISO27017", "ISO27018", "other")
CSAP_TYPES = ("iaas", "saas_standard", "saas_simplified", "daas")
CSAP_GRADES = ("high", "medium", "low")
SUPPORT_CHANNELS = ("phone", "email", "web", "chat", "onsite")
PLAN_UNITS = ("user_month", "vcpu_hour", "gb_month", "instance_month", "project", "month", "year", "person_day")
DOCUMENT_KINDS = ("service_definition", "terms_of_use", "security_evidence")
REQUIRED_DOCUMENTS = ("service_definition",)

MAX_PLANS = 20
MAX_CERTIFICATIONS = 20
MAX_LIST_ITEMS = 30

# Fields of a version in display order (plans follow); the diff, the snapshot of each save and the API use them.
VERSION_FIELDS = (
    "name",
    "summary",
    "description",
    "category",
    "deployment_model",
    "features",
    "benefits",
    "data_country",
    "data_region",
    "certifications",
    "sla_availability_bp",
    "support_hours",
    "support_channels",
    "response_time_minutes",
    "service_credits",
    "onboarding_terms",
    "data_export_format",
    "data_return_terms",
    "data_deletion_terms",
)
PLAN_FIELDS = ("name", "unit", "unit_price", "vat_included", "minimum_term_months", "free_trial_days")


def category_labels() -> dict[str, str]:
    return {
        Category.iaas: _("Cloud: IaaS"),
        Category.paas: _("Cloud: PaaS"),
        Category.saas: _("Cloud: SaaS"),
        Category.consulting: _("Support: consulting"),
        Category.migration: _("Support: migration"),
        Category.managed_operations: _("Support: managed operations"),
        Category.cloud_ai: _("Convergence: cloud with AI"),
        Category.cloud_big_data: _("Convergence: cloud with big data"),
        Category.cloud_iot: _("Convergence: cloud with IoT"),
        Category.cloud_blockchain: _("Convergence: cloud with blockchain"),
    }


def deployment_labels() -> dict[str, str]:
    return {
        DeploymentModel.public: _("Public"),
        DeploymentModel.private: _("Private"),
        DeploymentModel.hybrid: _("Hybrid"),
        DeploymentModel.community: _("Community"),
    }


def scheme_labels() -> dict[str, str]:
    return {
        "CSAP": _("CSAP (Cloud Security Assurance Program)"),
        "ISO27001": "ISO/IEC 27001",
        "ISO27017": "ISO/IEC 27017",
        "ISO27018": "ISO/IEC 27018",
        "other": _("Other (named)"),
    }


def csap_type_labels() -> dict[str, str]:
    return {
        "iaas": "IaaS",
        "saas_standard": _("SaaS standard"),
        "saas_simplified": _("SaaS simplified"),
        "daas": "DaaS",
    }


def grade_labels() -> dict[str, str]:
    return {"high": _("High"), "medium": _("Medium"), "low": _("Low")}


def channel_labels() -> dict[str, str]:
    return {
        "phone": _("Telephone"),
        "email": _("E-mail"),
        "web": _("Web portal"),
        "chat": _("Chat"),
        "onsite": _("On site"),
    }


def unit_labels() -> dict[str, str]:
    return {
        "user_month": _("per user per month"),
        "vcpu_hour": _("per vCPU-hour"),
        "gb_month": _("per GB-month"),
        "instance_month": _("per instance per month"),
        "project": _("per project"),
        "month": _("per month"),
        "year": _("per year"),
        "person_day": _("per person-day"),
    }


def document_kind_labels() -> dict[str, str]:
    return {
        "service_definition": _("Service definition"),
        "terms_of_use": _("Terms of use"),
        "security_evidence": _("Security evidence"),
    }


# --- value parsing ----------------------------------------------------------------------------------


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _whole_number(value: Any) -> Any:
    """12000, "12000" and "12,000" are whole numbers; 12.5, "12.5" and "twelve" are not."""
    value = _blank_to_none(value)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(_("Enter a whole number."))
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(_("Enter a whole number."))
        return int(value)
    if isinstance(value, str):
        cleaned = re.sub(r"[,_\s]", "", value)
        if not re.fullmatch(r"-?\d{1,18}", cleaned):
            raise ValueError(_("Enter a whole number."))
        return int(cleaned)
    return value


def _percentage(value: Any) -> Any:
    """ "99.95" (per cent, at most two decimals) to basis points 9995."""
    value = _blank_to_none(value)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(_("Enter a percentage such as 99.95."))
    try:
        number = Decimal(str(value).strip().rstrip("%").strip())
    except InvalidOperation:
        raise ValueError(_("Enter a percentage such as 99.95.")) from None
    if not number.is_finite() or number < 0 or number > 100:
        raise ValueError(_("Enter a percentage between 0 and 100."))
    basis_points = number * 100
    if basis_points != basis_points.to_integral_value():
        raise ValueError(_("Use at most two decimals, such as 99.95."))
    return int(basis_points)


def _date(value: Any) -> Any:
    value = _blank_to_none(value)
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(_("Enter a date as YYYY-MM-DD.")) from None


def _country(value: Any) -> Any:
    value = "" if value is None else value
    if not isinstance(value, str) or not re.fullmatch(r"([A-Za-z]{2})?", value.strip()):
        raise ValueError(_("Enter the two-letter country code, such as KR."))
    return value.strip().upper()


def _checkbox(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return value


def _choice(options: tuple[str, ...]) -> Any:
    def check(value: Any) -> Any:
        value = "" if value is None else value
        if not isinstance(value, str) or (value.strip() and value.strip() not in options):
            raise ValueError(_("Choose one of the offered values."))
        return value.strip()

    return BeforeValidator(check)


def _lines(value: Any) -> Any:
    """A list, or text with one item a line (forms); blank items dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.splitlines()
    if isinstance(value, list):
        return [
            item.strip() if isinstance(item, str) else item
            for item in value
            if not (isinstance(item, str) and not item.strip())
        ]
    return value


WholeNumber = Annotated[int | None, BeforeValidator(_whole_number)]


def _within(low: int, high: int) -> AfterValidator:
    """Bounds for a whole number that may be blank: they apply only to a value that was given."""

    def within(value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise ValueError(_("Enter a whole number from %(low)s to %(high)s.", low=number(low), high=number(high)))
        return value

    return AfterValidator(within)


MAX_UNIT_PRICE = MONEY_MAX  # won
UnitPrice: TypeAlias = Annotated[WholeNumber, _within(0, MAX_UNIT_PRICE)]
Months: TypeAlias = Annotated[WholeNumber, _within(0, 120)]
TrialDays: TypeAlias = Annotated[WholeNumber, _within(0, 365)]
ResponseMinutes: TypeAlias = Annotated[WholeNumber, _within(1, 10_080)]  # up to a week


Percentage = Annotated[int | None, BeforeValidator(_percentage)]
OptionalDate = Annotated[date | None, BeforeValidator(_date)]
Checkbox = Annotated[bool, BeforeValidator(_checkbox)]
Item = Annotated[str, Field(max_length=300)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PlanInput(_Input):
    name: str = Field(default="", max_length=120)
    unit: Annotated[str, _choice(PLAN_UNITS)] = ""
    unit_price: UnitPrice = None
    vat_included: Checkbox = False
    minimum_term_months: Months = None
    free_trial_days: TrialDays = None


class CertificationInput(_Input):
    scheme: Annotated[str, _choice(CERTIFICATION_SCHEMES)] = ""
    name: str = Field(default="", max_length=120)  # for "other": the certification's name
    csap_type: Annotated[str, _choice(CSAP_TYPES)] = ""
    grade: Annotated[str, _choice(CSAP_GRADES)] = ""
    valid_from: OptionalDate = None
    valid_to: OptionalDate = None

    @field_validator("valid_to")
    @classmethod
    def _dates_in_order(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("valid_from")
        if value and start and value < start:
            raise ValueError(_("The end of validity is before its start."))
        return value

    def stored(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "name": self.name,
            "csap_type": self.csap_type if self.scheme == "CSAP" else "",
            "grade": self.grade if self.scheme == "CSAP" else "",
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
        }


class ListingInput(_Input):
    """Everything a provider says about a service. Every field may be left blank in a draft."""

    name: str = Field(default="", max_length=200)
    summary: str = Field(default="", max_length=300)
    description: str = Field(default="", max_length=20_000)
    category: Annotated[str, _choice(tuple(Category))] = ""
    deployment_model: Annotated[str, _choice(tuple(DeploymentModel))] = ""
    features: Annotated[list[Item], BeforeValidator(_lines), Field(max_length=MAX_LIST_ITEMS)] = []
    benefits: Annotated[list[Item], BeforeValidator(_lines), Field(max_length=MAX_LIST_ITEMS)] = []
    data_country: Annotated[str, BeforeValidator(_country)] = ""
    data_region: str = Field(default="", max_length=100)
    certifications: Annotated[list[CertificationInput], Field(max_length=MAX_CERTIFICATIONS)] = []
    sla_availability: Percentage = None
    support_hours: str = Field(default="", max_length=100)
    support_channels: Annotated[list[Annotated[str, _choice(SUPPORT_CHANNELS)]], BeforeValidator(_lines)] = []
    response_time_minutes: ResponseMinutes = None
    service_credits: str = Field(default="", max_length=2000)
    onboarding_terms: str = Field(default="", max_length=4000)
    data_export_format: str = Field(default="", max_length=200)
    data_return_terms: str = Field(default="", max_length=4000)
    data_deletion_terms: str = Field(default="", max_length=4000)
    plans: Annotated[list[PlanInput], Field(max_length=MAX_PLANS)] = []

    def changes(self, only_set: bool = False) -> dict[str, Any]:
        """The version's column values (and `plans`) this input sets: all of them, or those the sender gave."""
        given = self.model_fields_set if only_set else set(type(self).model_fields)
        values: dict[str, Any] = {}
        for field in type(self).model_fields:
            if field not in given or field == "lock_version":
                continue
            value = getattr(self, field)
            if field == "sla_availability":
                values["sla_availability_bp"] = value
            elif field == "certifications":
                values["certifications"] = [item.stored() for item in value]
            elif field == "support_channels":
                values["support_channels"] = list(dict.fromkeys(value))
            elif field == "plans":
                values["plans"] = [
                    {
                        "name": plan.name,
                        "unit": plan.unit,
                        "unit_price": plan.unit_price,
                        "vat_included": plan.vat_included,
                        "minimum_term_months": plan.minimum_term_months or 0,
                        "free_trial_days": plan.free_trial_days or 0,
                    }
                    for plan in value
                ]
            else:
                values[field] = value
        return values


class ListingEdit(ListingInput):
    """A save names the version it edited; a stale one is refused (409) and shown what changed meanwhile."""

    lock_version: int


class SubmitInput(_Input):
    lock_version: int


class WithdrawInput(_Input):
    reason: str = Field(min_length=1, max_length=2000)
    confirm: Checkbox = Field(default=False, validate_default=True)

    @field_validator("confirm")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if not value:
            raise ValueError(_("Confirm that the service should be withdrawn."))
        return value


class StatusInput(_Input):
    reason: str = Field(default="", max_length=2000)


def validate(model: type[Model], data: dict[str, Any]) -> Model:
    """`market.web.parse`, with a wrong item of a typed list (`features.3`) reported on the list's own field."""
    try:
        return parse(model, data)
    except Invalid as exc:
        errors: dict[str, str] = {}
        for key, message in exc.errors.items():
            head, _dot, rest = key.partition(".")
            errors.setdefault(head if head in _LIST_FIELDS and rest else key, message)
        raise Invalid(exc.detail, errors=errors) from None


_LIST_FIELDS = {"features", "benefits", "support_channels"}


# --- completeness for submission ----------------------------------------------------------------------


def missing_for_submission(content: dict[str, Any], document_kinds: set[str], today: date) -> dict[str, str]:
    """Every missing or wrong field of a stored version, by the form's field name; empty when complete."""
    errors: dict[str, str] = {}
    required = _("This field is required.")
    for field in (
        "name",
        "summary",
        "description",
        "category",
        "deployment_model",
        "data_country",
        "data_region",
        "support_hours",
        "service_credits",
        "onboarding_terms",
        "data_export_format",
        "data_return_terms",
        "data_deletion_terms",
    ):
        if not str(content.get(field) or "").strip():
            errors[field] = required
    if not content.get("features"):
        errors["features"] = _("List at least one feature.")
    if not content.get("benefits"):
        errors["benefits"] = _("List at least one benefit.")
    if content.get("sla_availability_bp") is None:
        errors["sla_availability"] = _("Give the availability the SLA promises, in per cent.")
    if not content.get("support_channels"):
        errors["support_channels"] = _("Choose at least one support channel.")
    if content.get("response_time_minutes") is None:
        errors["response_time_minutes"] = _("Give the response time in minutes.")
    plans = content.get("plans") or []
    if not plans:
        errors["plans"] = _("Add at least one pricing plan.")
    for index, plan in enumerate(plans):
        prefix = f"plans.{index}."
        if not plan.get("name"):
            errors[prefix + "name"] = required
        if not plan.get("unit"):
            errors[prefix + "unit"] = _("Choose the unit the price is for.")
        if plan.get("unit_price") is None:
            errors[prefix + "unit_price"] = _("Give the unit price in won.")
    for index, certification in enumerate(content.get("certifications") or []):
        prefix = f"certifications.{index}."
        scheme = certification.get("scheme")
        if not scheme:
            errors[prefix + "scheme"] = _("Choose the certification.")
        if scheme == "CSAP":
            if not certification.get("csap_type"):
                errors[prefix + "csap_type"] = _("Choose the CSAP type.")
            if not certification.get("grade"):
                errors[prefix + "grade"] = _("Choose the CSAP grade.")
        if scheme == "other" and not certification.get("name"):
            errors[prefix + "name"] = _("Name the certification.")
        if not certification.get("valid_from"):
            errors[prefix + "valid_from"] = _("Give the date the certification is valid from.")
        valid_to = certification.get("valid_to")
        if not valid_to:
            errors[prefix + "valid_to"] = _("Give the date the certification is valid until.")
        elif date.fromisoformat(valid_to) < today:
            errors[prefix + "valid_to"] = _("The certification expired on %(date)s.", date=valid_to)
    labels = document_kind_labels()
    for kind in REQUIRED_DOCUMENTS:
        if kind not in document_kinds:
            errors[f"documents.{kind}"] = _(
                "Attach the %(document)s (PDF or OpenDocument).", document=labels[kind].lower()
            )
    return errors


# --- forms: flat fields to the nested input, and back ---------------------------------------------------

_ROW = re.compile(r"^(plans|certifications)\.(\d{1,2})\.(\w+)$")
FORM_ROWS = 3  # empty rows offered for plans and certifications


def listing_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """A page form (`plans.0.name`, `support_channels.email` ...) as the nested input the API takes.

    Rows left entirely blank are dropped, so the numbering of rows in errors is that of the filled rows.
    """
    data: dict[str, Any] = {}
    rows: dict[str, dict[int, dict[str, Any]]] = {"plans": {}, "certifications": {}}
    channels: list[str] = []
    for key, value in form.items():
        if isinstance(value, list):
            value = value[-1]
        match = _ROW.match(key)
        if match:
            group, index, field = match.group(1), int(match.group(2)), match.group(3)
            rows[group].setdefault(index, {})[field] = value
        elif key.startswith("support_channels."):
            channels.append(key.split(".", 1)[1])
        elif key in ListingEdit.model_fields:
            data[key] = value
    data["support_channels"] = channels
    for group, found in rows.items():
        data[group] = [
            row
            for _index, row in sorted(found.items())
            if any(str(value).strip() for field, value in row.items() if field != "vat_included")
        ]
    return data


def form_values(content: dict[str, Any]) -> dict[str, Any]:
    """A stored version's content in the shape the form shows (strings where the user types)."""
    values = dict(content)
    bp = content.get("sla_availability_bp")
    values["sla_availability"] = "" if bp is None else _format_percentage(bp)
    values["features"] = list(content.get("features") or [])
    values["benefits"] = list(content.get("benefits") or [])
    values["plans"] = [dict(plan) for plan in content.get("plans") or []]
    values["certifications"] = [
        {
            **certification,
            "valid_from": certification.get("valid_from") or "",
            "valid_to": certification.get("valid_to") or "",
        }
        for certification in content.get("certifications") or []
    ]
    return values


def _format_percentage(bp: int) -> str:
    return f"{Decimal(bp) / 100:.2f}".rstrip("0").rstrip(".")
