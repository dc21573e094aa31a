"""Properties of the transition tables: random walks of `check` calls only ever move along the table, a
refused step is a 409 that leaves the state where it was, and a terminal state has no way out. Also the
committee's decision rule, which decides the state a review case ends in."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog import workflow as catalog_workflow
from catalog.models import ServiceStatus
from catalog.models import VersionState as ServiceVersionState
from committee import rules
from committee import workflow as committee_workflow
from committee.models import CaseState, CertificateStatus
from contracts import workflow as contract_workflow
from contracts.models import ContractStatus, InvoiceStatus, VersionState
from market.errors import Conflict

Table = dict[tuple[str, str], str]

# Each table with the states it ranges over, where its life starts, and the function that applies it.
MACHINES: dict[str, tuple[Table, list[str], str, Callable[[str, str], str]]] = {
    "catalog service": (
        dict(catalog_workflow.SERVICE.transitions),
        list(ServiceStatus),
        ServiceStatus.draft,
        catalog_workflow.SERVICE.check,
    ),
    "catalog version": (
        dict(catalog_workflow.VERSION.transitions),
        list(ServiceVersionState),
        ServiceVersionState.draft,
        catalog_workflow.VERSION.check,
    ),
    "contract": (
        dict(contract_workflow.CONTRACT.transitions),
        list(ContractStatus),
        ContractStatus.draft,
        contract_workflow.CONTRACT.check,
    ),
    "contract version": (
        dict(contract_workflow.VERSION.transitions),
        list(VersionState),
        VersionState.draft,
        contract_workflow.VERSION.check,
    ),
    "invoice": (
        dict(contract_workflow.INVOICE.transitions),
        list(InvoiceStatus),
        InvoiceStatus.open,
        contract_workflow.INVOICE.check,
    ),
    "committee case": (
        dict(committee_workflow.CASE.transitions),
        list(CaseState),
        CaseState.intake,
        committee_workflow.CASE.check,
    ),
    "committee certificate": (
        dict(committee_workflow.CERTIFICATE.transitions),
        list(CertificateStatus),
        CertificateStatus.valid,
        committee_workflow.CERTIFICATE.check,
    ),
}
TERMINAL = {
    "catalog service": {ServiceStatus.withdrawn, ServiceStatus.expired, ServiceStatus.revoked},
    "catalog version": {ServiceVersionState.superseded, ServiceVersionState.refused},
    "contract": {ContractStatus.completed, ContractStatus.terminated, ContractStatus.cancelled},
    "contract version": {VersionState.declined, VersionState.withdrawn, VersionState.superseded},
    "invoice": {InvoiceStatus.paid, InvoiceStatus.void},
    "committee case": {CaseState.returned, CaseState.approved, CaseState.refused},
    "committee certificate": {CertificateStatus.revoked, CertificateStatus.renewed},
}


def walk(name: str, start: str, targets: list[str]) -> list[str]:
    """Apply `targets` in turn from `start`, checking each step; the states visited."""
    table, _states, _initial, check = MACHINES[name]
    state, visited = start, [start]
    for target in targets:
        if (state, target) in table:
            assert check(state, target) == table[(state, target)]
            state = target
        else:
            before = state
            with pytest.raises(Conflict) as refused:
                check(state, target)
            assert refused.value.status_code == 409
            assert state == before
        visited.append(state)
    return visited


@st.composite
def walks(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    name = draw(st.sampled_from(sorted(MACHINES)))
    _table, states, _initial, _check = MACHINES[name]
    start = draw(st.sampled_from(states))
    targets = draw(st.lists(st.sampled_from(states), max_size=30))
    return name, start, targets


@settings(max_examples=500, deadline=None, database=None)
@given(walks())
def test_random_walks_follow_the_table(case: tuple[str, str, list[str]]) -> None:
    name, start, targets = case
    table, states, _initial, _check = MACHINES[name]
    visited = walk(name, start, targets)
    for before, after in itertools.pairwise(visited):
        assert before == after or (before, after) in table
        assert after in states


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from(sorted(MACHINES)), st.data())
def test_walks_from_the_start_only_reach_table_states(name: str, data: st.DataObject) -> None:
    """From where a life starts, following only allowed steps never leaves the table, and a terminal state
    once reached is kept whatever is asked next."""
    _table, states, initial, _check = MACHINES[name]
    state = initial
    for _ in range(data.draw(st.integers(min_value=0, max_value=20))):
        target = data.draw(st.sampled_from(states))
        was_terminal = state in TERMINAL[name]
        state = walk(name, state, [target])[-1]
        if was_terminal:
            assert state in TERMINAL[name]
            assert walk(name, state, [target])[-1] == state


@pytest.mark.parametrize("name", sorted(MACHINES))
def test_tables_name_only_known_states_and_terminal_states_have_no_way_out(name: str) -> None:
    table, states, initial, check = MACHINES[name]
    assert {state for pair in table for state in pair} <= set(states)
    for state in TERMINAL[name]:
        assert not [pair for pair in table if pair[0] == state], f"{name}: {state} has a way out"
        for target in states:
            with pytest.raises(Conflict):
                check(state, target)
    # Every state of the enumeration can be reached from where the life starts (no dead rows).
    reached, frontier = {initial}, [initial]
    while frontier:
        current = frontier.pop()
        for source, target in table:
            if source == current and target not in reached:
                reached.add(target)
                frontier.append(target)
    assert reached == set(states)


def test_a_refused_contract_change_names_both_states_by_their_labels() -> None:
    with pytest.raises(Conflict) as refused:
        contract_workflow.CONTRACT.check(ContractStatus.sent, ContractStatus.completed)
    assert refused.value.detail == "A contract that is sent for signature cannot become completed."
    with pytest.raises(Conflict) as refused:
        contract_workflow.VERSION.check(VersionState.signed, VersionState.declined)
    assert refused.value.detail == "A version of the contract that is signed by both parties cannot become declined."


def test_no_table_has_a_step_to_the_same_state() -> None:
    for name, (table, *_rest) in MACHINES.items():
        assert not [pair for pair in table if pair[0] == pair[1]], name


def test_the_committee_named_sets_split_the_case_states() -> None:
    """A case is open or decided, never both; a decided case moves only by a session's override of its outcome."""
    case = committee_workflow.CASE
    assert case.states == committee_workflow.OPEN | committee_workflow.DECIDED
    assert not committee_workflow.OPEN & committee_workflow.DECIDED
    for (source, _target), name in case.transitions.items():
        assert (source in committee_workflow.DECIDED) == (name == "override")
        assert source in committee_workflow.OPEN or source in committee_workflow.SESSION_OUTCOMES
    # Only a live certificate can be suspended or revoked.
    certificate = committee_workflow.CERTIFICATE
    for status in certificate.states:
        assert certificate.allows(status, CertificateStatus.revoked) == (status in committee_workflow.LIVE)


# --- the committee's decision rule ------------------------------------------------------------------

CRITERIA = [
    {"code": "SEC", "name": "Security", "mandatory": True},
    {"code": "AVL", "name": "Availability", "mandatory": False},
]


@st.composite
def reviews(draw: st.DrawFn) -> list[dict[str, Any]]:
    items = []
    for index in range(draw(st.integers(min_value=0, max_value=7))):
        passed = {code: draw(st.booleans()) for code in ("SEC", "AVL")}
        items.append(
            {
                "review_id": index + 1,
                "answers": {
                    code: {"passed": ok, "comment": "" if ok else f"{code} gap {index}"} for code, ok in passed.items()
                },
                "weighted_score": draw(st.none() | st.integers(min_value=0, max_value=100)),
                "passes_mandatory": passed["SEC"],
            }
        )
    return items


@settings(max_examples=300, deadline=None, database=None)
@given(reviews(), st.integers(min_value=0, max_value=100))
def test_decision_certifies_exactly_on_majority_and_threshold(items: list[dict[str, Any]], threshold: int) -> None:
    outcome = rules.decide(CRITERIA, threshold, items)
    passing = sum(1 for item in items if item["passes_mandatory"])
    scores = [item["weighted_score"] for item in items if item["weighted_score"] is not None]
    reaches = not scores or sum(scores) / len(scores) >= threshold - 0.005  # the mean is rounded to 2 places
    expected = "certified" if items and passing * 2 > len(items) and reaches else "rejected"
    assert outcome.outcome == expected
    assert outcome.result["reviews"] == len(items)
    assert outcome.result["passing_mandatory"] == passing
    assert (outcome.reason == "") == (expected == "certified")
    # Every failed criterion is named with every comment given against it, and no reviewer's identity.
    failed = {item["code"]: item["comments"] for item in outcome.result["failed_criteria"]}
    for criterion in ("SEC", "AVL"):
        comments = [item["answers"][criterion]["comment"] for item in items if not item["answers"][criterion]["passed"]]
        assert failed.get(criterion, []) == comments


@settings(database=None)
@given(reviews(), st.integers(min_value=0, max_value=100))
def test_decision_is_the_same_in_any_order(items: list[dict[str, Any]], threshold: int) -> None:
    forwards, backwards = rules.decide(CRITERIA, threshold, items), rules.decide(CRITERIA, threshold, items[::-1])
    assert forwards.outcome == backwards.outcome
    assert forwards.result["mean_score"] == backwards.result["mean_score"]
