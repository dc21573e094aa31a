"""What drafting, signing and the lifecycle take as input (pages and /api alike), validated before any rule runs."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog import MAX_UNIT_PRICE
from contracts.models import AmendmentReason
from market.errors import Invalid
from market.i18n import _
from market.schemas import MONEY_MAX, RowId

BillingPeriodName = Literal["monthly", "quarterly", "once"]
RouteName = Literal["direct", "central"]
MAX_QUANTITY = 1_000_000
MAX_TERM_DAYS = 366 * 5  # a catalogue contract runs at most five years


def invalid(field_name: str, message: str) -> Invalid:
    """A refusal of one field, for a rule checked after the input was parsed."""
    return Invalid(_("Please correct: %(fields)s.", fields=field_name), errors={field_name: message})


# How each choice is named to the reader (the drafting form, the document, the register).


def billing_labels() -> dict[str, str]:
    return {"monthly": _("Monthly"), "quarterly": _("Quarterly"), "once": _("One payment for the whole term")}


def route_labels() -> dict[str, str]:
    return {
        "direct": _("Direct award by the agency"),
        "central": _("Catalogue contract through the central procurement agency"),
    }


def amendment_reason_labels() -> dict[str, str]:
    return {
        AmendmentReason.price_reduction: _("Price reduction"),
        AmendmentReason.volume_change: _("Volume change"),
        AmendmentReason.duration_extension: _("Duration extension"),
        AmendmentReason.tax_rate_change: _("Tax rate change"),
        AmendmentReason.other: _("Other"),
    }


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TermsInput(_Input):
    """The terms an agency chooses: plan, quantity, term, billing, budget reference, route and special terms.
    There is no amount: the price is computed from the stored plan."""

    plan_id: RowId
    quantity: int = Field(ge=1, le=MAX_QUANTITY)
    starts_on: date
    ends_on: date
    billing_period: BillingPeriodName = "monthly"
    budget_reference: str = Field(default="", max_length=100)
    route: RouteName = "direct"
    special_terms: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _term(self) -> TermsInput:
        if self.ends_on < self.starts_on:
            raise ValueError(_("The end date must not be before the start date."))
        if (self.ends_on - self.starts_on).days > MAX_TERM_DAYS:
            raise ValueError(_("A contract runs at most five years."))
        return self


class DraftInput(TermsInput):
    """A new contract from a listed service's plan; `project_id` names the procurement project whose award it follows."""

    service_id: RowId
    project_id: RowId | None = None

    @field_validator("project_id", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)


class DraftUpdate(TermsInput):
    """A change to a draft; `lock_version` is the version of the draft the change was made on."""

    lock_version: int


class BudgetInput(_Input):
    """An agency's budget for cloud services in one calendar year, in won."""

    year: int = Field(ge=2000, le=2100)
    amount: int = Field(ge=0, le=MONEY_MAX)  # won


class ApprovalThresholdInput(_Input):
    """An agency's approval threshold in won with VAT: a draft above it needs a second member's approval before it is
    sent. Null removes it."""

    amount: int | None = Field(ge=0, le=MONEY_MAX)


class ReasonInput(_Input):
    reason: str = Field(min_length=1, max_length=2000)


class OptionalReasonInput(_Input):
    reason: str = Field(default="", max_length=2000)


SigningMethod = Literal["password", "webauthn", "ed25519"]


class SignInput(_Input):
    """The confirmation that the signer read the document, their typed name, the fingerprint of the document they
    were shown (a document that changed since is refused), and the proof, by `method`:

    - `webauthn`: a passkey's answer (`credential`, as `navigator.credentials.get` gives it) to the challenge of a
      signing request (`nonce`);
    - `ed25519`: the signature (`signature`, base64) of the signing request's `payload` bytes by the registered
      signing key `key_id`, with the request's `nonce`;
    - `password` (where the organisation allows it): the signer's password again.
    """

    method: SigningMethod = "password"
    password: str = Field(default="", max_length=200)
    confirm_read: bool = False
    signer_name: str = Field(min_length=1, max_length=200)
    document_sha256: str = Field(min_length=64, max_length=64)
    nonce: str = Field(default="", max_length=64)
    credential: dict[str, Any] | str | None = None
    key_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    signature: str = Field(default="", max_length=200)

    @field_validator("confirm_read")
    @classmethod
    def _confirmed(cls, value: bool) -> bool:
        if not value:
            raise ValueError(_("Confirm that you have read the document."))
        return value

    @field_validator("key_id", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)

    def missing_proof(self) -> list[str]:
        """The fields the chosen method needs that are empty."""
        needed = {
            "password": ("password",),
            "webauthn": ("nonce", "credential"),
            "ed25519": ("nonce", "key_id", "signature"),
        }[self.method]
        return [name for name in needed if getattr(self, name) in (None, "")]


class TerminateInput(_Input):
    reason: str = Field(min_length=1, max_length=2000)
    effective_on: date


class AmendInput(_Input):
    """An amendment: a reason from the fixed list, a written rationale, and what changes (blank: unchanged)."""

    amendment_reason: AmendmentReason
    rationale: str = Field(min_length=1, max_length=4000)
    quantity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)
    ends_on: date | None = None
    unit_price: int | None = Field(default=None, ge=0, le=MAX_UNIT_PRICE)  # as a plan's price is capped
    vat_rate_bp: int | None = Field(default=None, ge=0, le=5000)
    special_terms: str | None = Field(default=None, max_length=4000)

    @field_validator("quantity", "ends_on", "unit_price", "vat_rate_bp", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.replace(",", "").strip()
        return _blank_to_none(value)


class RenewInput(_Input):
    """A renewal: a new draft linked to this contract; blanks take the same plan and quantity for the same length,
    starting the day after this one ends."""

    starts_on: date | None = None
    ends_on: date | None = None
    quantity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)

    @field_validator("starts_on", "ends_on", "quantity", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return _blank_to_none(value)
