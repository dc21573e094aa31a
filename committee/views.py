"""What the committee's pages show: each state by its name in the reader's language, and flags for what the reader
may do now, so that templates ask the view rather than compare state codes. The JSON API keeps the bare codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from committee.models import CaseKind, CaseState, Certificate, CertificateStatus, Confirmation, MeetingStatus
from committee.workflow import BEFORE_DECISION, CASE, CERTIFICATE, REVISION_OUTCOMES, SESSION_OUTCOMES, WITH_PROVIDER


def case_row(row: dict[str, Any]) -> dict[str, Any]:
    """A case in a list (the queue, a member's cases, the cases ready for a session)."""
    return {**row, "state_label": CASE.label(row["state"])}


def provider_case_row(row: dict[str, Any]) -> dict[str, Any]:
    """A case in its provider's list, with what was asked of the provider or why it was decided so."""
    return {**case_row(row), "note": row["message"] if row["state"] in WITH_PROVIDER else row["reason"]}


def case_page(detail: dict[str, Any]) -> dict[str, Any]:
    """One case as its page shows it, for the member, the secretariat, the chair or the provider."""
    state, role = detail["state"], detail["role"]
    view = {
        **case_row(detail),
        "can_check_completeness": role["operator"] and CASE.allows(state, CaseState.assignment),
        "can_assign": role["chair"] and state in BEFORE_DECISION,
        "can_release": role["chair"] and state == CaseState.review,
        "awaiting_supplements": state == CaseState.incomplete,
        "history": [{**event, "to_state_label": CASE.label(event["to_state"])} for event in detail["history"]],
    }
    if detail["decision"] is not None:
        view["decision"] = {**detail["decision"], "outcome_label": CASE.label(detail["decision"]["outcome"])}
    if detail["certificate"] is not None:
        view["certificate"] = {
            **detail["certificate"],
            "status_label": CERTIFICATE.label(detail["certificate"]["status"]),
        }
    return view


def review_row(row: dict[str, Any]) -> dict[str, Any]:
    """One of a member's reviews, with the state of its case."""
    return {**row, "case": case_row(row["case"])}


@dataclass(frozen=True)
class CertificateRow:
    certificate: Certificate
    status_label: str
    is_valid: bool  # valid now: it may be suspended, and its provider may apply to renew it


def certificate_row(certificate: Certificate) -> CertificateRow:
    return CertificateRow(
        certificate, CERTIFICATE.label(certificate.status), certificate.status == CertificateStatus.valid
    )


def certificate_rows(certificates: list[Certificate]) -> list[CertificateRow]:
    return [certificate_row(certificate) for certificate in certificates]


def meeting_page(record: dict[str, Any]) -> dict[str, Any]:
    """A session's minutes as its page shows them: while open, what the chair may still confirm or override."""
    is_open = record["status"] == MeetingStatus.open
    items = []
    for item in record["items"]:
        choices = REVISION_OUTCOMES if item["kind"] == CaseKind.revision else SESSION_OUTCOMES
        items.append(
            {
                **item,
                "outcome_label": CASE.label(item["outcome"]),
                "computed_outcome_label": CASE.label(item["computed_outcome"]) if item["computed_outcome"] else "",
                "is_pending": item["confirmation"] == Confirmation.pending,
                "override_choices": [
                    (outcome, CASE.label(outcome)) for outcome in sorted(choices) if outcome != item["outcome"]
                ],
            }
        )
    return {
        **record,
        "is_open": is_open,
        "items": items,
        "ready_cases": [case_row(row) for row in record["ready_cases"]],
    }
