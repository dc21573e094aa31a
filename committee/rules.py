"""The committee's pure rules: the default criteria, checking a review, and the decision rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from market.errors import Invalid
from market.i18n import _

DEFAULT_CRITERIA: list[dict[str, Any]] = [
    {
        "code": "management",
        "name": "Management condition",
        "description": "Credit rating of the provider.",
        "mandatory": True,
        "weight": 20,
    },
    {
        "code": "sanctions",
        "name": "Sanctions",
        "description": "The provider is not a debarred supplier.",
        "mandatory": True,
        "weight": 0,
    },
    {
        "code": "security",
        "name": "Security",
        "description": "A security certification valid for the category (e.g. CSAP); a SaaS runs on a certified IaaS.",
        "mandatory": True,
        "weight": 30,
    },
    {
        "code": "stability",
        "name": "Operational stability",
        "description": "Service level agreement and track record.",
        "mandatory": False,
        "weight": 30,
    },
    {
        "code": "support",
        "name": "Support system",
        "description": "Support hours, staff and an exit plan.",
        "mandatory": False,
        "weight": 20,
    },
]

RULE_NAME = "majority-passes-mandatory-and-weighted-mean"
REMINDER_DAYS = (90, 30, 7)


def certificate_number(year: int, sequence: int) -> str:
    return f"DS-{year}-{sequence:05d}"


def check_criteria(criteria: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A criteria set must name each criterion once, with a weight from 0 to 100."""
    errors: dict[str, str] = {}
    seen: set[str] = set()
    cleaned = []
    for index, item in enumerate(criteria):
        code = str(item.get("code", "")).strip()
        name = str(item.get("name", "")).strip()
        try:
            weight = int(item.get("weight", 0))
        except (TypeError, ValueError):
            weight = -1
        if not code or not name:
            errors[f"criteria.{index}"] = _("Each criterion needs a code and a name.")
        elif code in seen:
            errors[f"criteria.{index}"] = _("The code %(code)s is used twice.", code=code)
        elif not 0 <= weight <= 100:
            errors[f"criteria.{index}"] = _("The weight must be between 0 and 100.")
        seen.add(code)
        cleaned.append(
            {
                "code": code,
                "name": name,
                "description": str(item.get("description", "")),
                "mandatory": bool(item.get("mandatory")),
                "weight": weight,
            }
        )
    if not cleaned:
        errors["criteria"] = _("A criteria set needs at least one criterion.")
    if errors:
        raise Invalid(_("The criteria set is not valid."), errors=errors)
    return cleaned


@dataclass(frozen=True)
class CheckedReview:
    answers: dict[str, dict[str, Any]]
    weighted_score: float | None
    passes_mandatory: bool


def check_review(criteria: list[dict[str, Any]], answers: dict[str, Any]) -> CheckedReview:
    """Every criterion answered pass or fail; every fail explained; every scored criterion scored 0-100."""
    errors: dict[str, str] = {}
    cleaned: dict[str, dict[str, Any]] = {}
    for criterion in criteria:
        code = criterion["code"]
        answer = answers.get(code) or {}
        passed = answer.get("passed")
        if isinstance(passed, str):
            passed = {"pass": True, "true": True, "fail": False, "false": False}.get(passed.lower())
        comment = str(answer.get("comment") or "").strip()
        score: int | None = None
        if passed is None:
            errors[f"{code}.passed"] = _("Choose pass or fail.")
        elif not passed and not comment:
            errors[f"{code}.comment"] = _("Explain why this criterion fails.")
        if criterion.get("weight"):
            raw = answer.get("score")
            try:
                score = int(raw) if raw not in (None, "") else None
            except (TypeError, ValueError):
                score = None
                errors[f"{code}.score"] = _("Enter a whole number from 0 to 100.")
            else:
                if score is None:
                    errors[f"{code}.score"] = _("Enter a score from 0 to 100.")
                elif not 0 <= score <= 100:
                    errors[f"{code}.score"] = _("Enter a whole number from 0 to 100.")
        if len(comment) > 2000:
            errors[f"{code}.comment"] = _("At most %(n)s characters.", n=2000)
        cleaned[code] = {"passed": passed, "score": score, "comment": comment}
    if errors:
        raise Invalid(_("The review is not complete."), errors=errors)
    weights = {c["code"]: c["weight"] for c in criteria if c.get("weight")}
    total_weight = sum(weights.values())
    weighted = (
        round(sum(cleaned[code]["score"] * weight for code, weight in weights.items()) / total_weight, 2)
        if total_weight
        else None
    )
    passes = all(cleaned[c["code"]]["passed"] for c in criteria if c.get("mandatory"))
    return CheckedReview(cleaned, weighted, passes)


@dataclass(frozen=True)
class Outcome:
    outcome: str  # certified or rejected
    rule: dict[str, Any]
    inputs: dict[str, Any]
    result: dict[str, Any]
    reason: str


def decide(criteria: list[dict[str, Any]], threshold: int, reviews: list[dict[str, Any]]) -> Outcome:
    """Certify when more than half the reviews pass every mandatory criterion and the mean weighted score
    reaches the threshold; otherwise reject, naming each failed criterion with the comments (never the names).

    `reviews` are {"review_id", "answers", "weighted_score", "passes_mandatory"}.
    """
    count = len(reviews)
    passing = sum(1 for review in reviews if review["passes_mandatory"])
    scores = [review["weighted_score"] for review in reviews if review["weighted_score"] is not None]
    mean = round(sum(scores) / len(scores), 2) if scores else None
    majority = passing * 2 > count
    reaches = mean is None or mean >= threshold
    outcome = "certified" if count and majority and reaches else "rejected"
    failed = []
    for criterion in criteria:
        comments = [
            review["answers"][criterion["code"]]["comment"]
            for review in reviews
            if not review["answers"].get(criterion["code"], {}).get("passed", True)
        ]
        if comments:
            failed.append(
                {
                    "code": criterion["code"],
                    "name": criterion["name"],
                    "mandatory": bool(criterion.get("mandatory")),
                    "comments": comments,
                }
            )
    lines = []
    if outcome == "rejected":
        if not majority:
            lines.append(
                _(
                    "Fewer than a majority of reviews passed every mandatory criterion (%(passing)s of %(count)s).",
                    passing=passing,
                    count=count,
                )
            )
        if not reaches:
            lines.append(
                _(
                    "The weighted mean score %(mean)s is below the threshold %(threshold)s.",
                    mean=mean,
                    threshold=threshold,
                )
            )
        for item in failed:
            lines.append(f"{item['name']}: " + " / ".join(item["comments"]))
    return Outcome(
        outcome=outcome,
        rule={
            "name": RULE_NAME,
            "threshold": threshold,
            "majority": "more than half of the reviews pass every mandatory criterion",
        },
        inputs={
            "reviews": [
                {
                    "review_id": r["review_id"],
                    "passes_mandatory": r["passes_mandatory"],
                    "weighted_score": r["weighted_score"],
                    "answers": r["answers"],
                }
                for r in reviews
            ]
        },
        result={
            "outcome": outcome,
            "reviews": count,
            "passing_mandatory": passing,
            "majority": majority,
            "mean_score": mean,
            "reaches_threshold": reaches,
            "failed_criteria": failed,
        },
        reason="\n".join(lines),
    )
