"""Input models for the committee's forms and API."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from committee.models import TieKind
from market.schemas import RowId


def _ids(value: Any) -> list[int]:
    if value in (None, ""):
        return []
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value if str(v).strip()]
    return [int(part) for part in str(value).replace(",", " ").split()]


class Message(BaseModel):
    message: str = Field(default="", max_length=4000)


class Reason(BaseModel):
    reason: str = Field(default="", max_length=2000)


class MemberIds(BaseModel):
    member_ids: list[RowId] = Field(default_factory=list)

    _split = field_validator("member_ids", mode="before")(_ids)


class MemberId(BaseModel):
    member_id: RowId


class ReviewInput(BaseModel):
    """`answers` maps each criterion code to {passed, score, comment}; a revision takes `approve` instead."""

    answers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    approve: bool | None = None
    comment: str = Field(default="", max_length=4000)


def review_from_form(form: dict[str, Any]) -> ReviewInput:
    """Form fields `<code>.passed`, `<code>.score`, `<code>.comment` become `answers`."""
    answers: dict[str, dict[str, Any]] = {}
    for key, value in form.items():
        if "." in key:
            code, part = key.split(".", 1)
            if part in {"passed", "score", "comment"}:
                answers.setdefault(code, {})[part] = value
    approve = form.get("approve")
    return ReviewInput(
        answers=answers,
        approve=None if approve in (None, "") else approve == "yes",
        comment=str(form.get("comment", ""))[:4000],
    )


class TieInput(BaseModel):
    provider_id: RowId
    kind: Literal["employment", "shareholding", "advisory", "family", "other"]
    starts_on: date
    ends_on: date | None = None
    note: str = Field(default="", max_length=1000)

    @field_validator("ends_on", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if value == "" else value


TIE_KINDS = [kind.value for kind in TieKind]


class TieEnd(BaseModel):
    ends_on: date


class SuspendInput(BaseModel):
    reason: str = Field(default="", max_length=2000)
    until: date


class BarInput(BaseModel):
    provider_id: RowId
    starts_on: date
    ends_on: date
    reason: str = Field(default="", max_length=2000)


class MeetingInput(BaseModel):
    held_on: date
    title: str = Field(min_length=1, max_length=200)
    quorum: int = Field(default=3, ge=1, le=50)


class CaseId(BaseModel):
    case_id: RowId


class ConfirmInput(BaseModel):
    case_id: RowId
    override: Literal["", "certified", "rejected", "approved", "refused"] = ""
    reason: str = Field(default="", max_length=4000)


class CriteriaInput(BaseModel):
    criteria: list[dict[str, Any]]
    threshold: int = Field(ge=0, le=100)
    reviewers_per_case: int = Field(ge=1, le=15)
    review_period_days: int = Field(ge=1, le=365)
    certificate_years: int = Field(ge=1, le=10)
    note: str = Field(default="", max_length=2000)


def criteria_from_text(text: str) -> list[dict[str, Any]]:
    """One criterion a line: `code | name | mandatory (yes/no) | weight | description`."""
    criteria = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [part.strip() for part in line.split("|")]
        parts += [""] * (5 - len(parts))
        criteria.append(
            {
                "code": parts[0],
                "name": parts[1],
                "mandatory": parts[2].lower() in {"yes", "y", "true", "mandatory", "1"},
                "weight": parts[3] or "0",
                "description": parts[4],
            }
        )
    return criteria


def criteria_to_text(criteria: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{c['code']} | {c['name']} | {'yes' if c.get('mandatory') else 'no'} | {c.get('weight', 0)} | {c.get('description', '')}"
        for c in criteria
    )
