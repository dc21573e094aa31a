"""Property: whatever the agency and the provider do to one contract, in any order and on any date, it only ever
moves along the transition tables, a refused action is a 4xx that changes nothing (rows and audit trail), and no
side signs a version twice.

Each example makes its own parties and contract through the real services on the test database (SQLite, or
PostgreSQL with MARKET_TEST_DATABASE_URL); the database is emptied once per test, not per example, which is fine
because every example writes new rows and looks only at its own.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import documents, drafting, lifecycle, signing, workflow
from contracts.models import Contract, ContractStatus, ContractVersion, Signature, VersionKind, VersionState
from contracts.schemas import AmendInput, SignInput, TerminateInput
from market.assembly import assemble
from market.auth import Principal
from market.database import create_engine
from market.errors import DomainError
from market.models import AuditEvent
from market.settings import Settings
from tests.contracts.factories import Parties, contract_parties, draft_contract, principal
from tests.helpers import PASSWORD, count, make_organisation, make_user

C, V = ContractStatus, VersionState
STARTS_ON, ENDS_ON = date(2027, 3, 1), date(2027, 8, 31)
# Dates the actions happen on: before the term, its first day, within it, its last day, after it.
DAYS = [date(2027, 2, 1), STARTS_ON, date(2027, 6, 15), ENDS_ON, date(2027, 9, 1)]
# Sending and signing are listed more than once so that walks often get past the first signature.
NAMES = [
    "send",
    "send",
    "sign",
    "sign",
    "sign",
    "withdraw",
    "decline",
    "revise",
    "cancel",
    "terminate",
    "amend",
    "advance",
]
TERMINAL = {C.completed, C.terminated, C.cancelled}

# "outsider" is an agency that is not party to the contract: everything it tries must be refused.
actions = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from(["agency", "agency", "provider", "provider", "outsider"]),
    st.sampled_from(DAYS),
)
Action = tuple[str, str, date]
Snapshot = dict[str, Any]


async def snapshot(sessions: async_sessionmaker[AsyncSession], contract_id: int) -> Snapshot:
    async with sessions() as session:
        contract = await session.get(Contract, contract_id)
        versions = (
            await session.scalars(
                sa.select(ContractVersion)
                .where(ContractVersion.contract_id == contract_id)
                .order_by(ContractVersion.number)
            )
        ).all()
        signatures = (
            await session.scalars(
                sa.select(Signature).where(Signature.contract_id == contract_id).order_by(Signature.id)
            )
        ).all()
        return {
            "contract": contract.model_dump(),  # type: ignore[union-attr]
            "versions": {version.id: version.model_dump() for version in versions},
            "signatures": [signature.model_dump() for signature in signatures],
        }


async def apply(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    parties: Parties,
    outsider: Principal,
    contract_id: int,
    action: Action,
) -> None:
    name, side, day = action
    actor = {"agency": parties.buyer, "provider": parties.seller, "outsider": outsider}[side]
    store = documents.store_for(settings)
    async with sessions() as session, session.begin():
        if name == "send":
            await drafting.send(session, actor, store, contract_id)
        elif name == "withdraw":
            await drafting.withdraw(session, actor, contract_id, "Taken back")
        elif name == "decline":
            await lifecycle.decline(session, actor, contract_id, "Not these terms")
        elif name == "revise":
            await drafting.revise(session, actor, contract_id)
        elif name == "cancel":
            await lifecycle.cancel(session, actor, contract_id, "No longer needed")
        elif name == "terminate":
            await lifecycle.terminate(
                session, actor, contract_id, TerminateInput(reason="Ending early", effective_on=day), today=day
            )
        elif name == "amend":
            contract = await session.get(Contract, contract_id)
            terms = await session.get(ContractVersion, contract.signed_version_id or contract.current_version_id)  # type: ignore[union-attr]
            data = AmendInput(amendment_reason="volume_change", rationale="More users", quantity=terms.quantity + 1)  # type: ignore[union-attr]
            await lifecycle.amend(session, actor, store, contract_id, data)
        elif name == "sign":
            contract = await session.get(Contract, contract_id)
            version = await session.get(ContractVersion, contract.current_version_id)  # type: ignore[union-attr]
            data = SignInput(
                password=PASSWORD,
                confirm_read=True,
                signer_name=actor.name,
                document_sha256=version.document_sha256 or "0" * 64,
            )  # type: ignore[union-attr]
            await signing.sign(
                session,
                actor,
                store,
                contract_id,
                version.number,
                data,
                address="127.0.0.1",  # type: ignore[union-attr]
                user_agent="tests",
                today=day,
            )
        elif name == "advance":
            await lifecycle.advance_contracts(session, day)
        else:  # pragma: no cover - the strategy names only the actions above
            raise AssertionError(name)


def steps(table: dict[tuple[str, str], str], before: str, after: str, most: int) -> bool:
    """Whether `after` is `before` or reachable from it in at most `most` steps of `table`."""
    reached = {before}
    for _ in range(most):
        reached |= {target for (source, target) in table if source in reached}
    return after in reached


def check_moves(before: Snapshot, after: Snapshot, action: Action) -> None:
    """Every change of the contract's status and of its versions' states is a step the tables allow."""
    most = 2 if action[0] == "advance" else 1  # advancing past the end starts and completes a contract in one run
    old, new = before["contract"]["status"], after["contract"]["status"]
    assert steps(workflow.CONTRACT.transitions, old, new, most), f"{action}: contract {old} -> {new}"
    for version_id, version in after["versions"].items():
        previous = before["versions"].get(version_id, {"state": V.draft})  # a new version starts as a draft
        assert steps(workflow.VERSION.transitions, previous["state"], version["state"], 1), (
            f"{action}: version {version['number']} {previous['state']} -> {version['state']}"
        )
    assert set(before["versions"]) <= set(after["versions"]), "a version disappeared"
    if old in TERMINAL:
        assert after == before, f"{action} changed a contract that is {old}"


def check_consistent(state: Snapshot) -> None:
    """The contract's status and its versions' states are a pair the tables allow, and signatures are sound."""
    contract, versions = state["contract"], state["versions"]
    status = contract["status"]
    assert status in set(ContractStatus)
    assert all(version["state"] in set(VersionState) for version in versions.values())
    current = versions[contract["current_version_id"]]
    signed = versions.get(contract["signed_version_id"]) if contract["signed_version_id"] else None
    pending = [version for version in versions.values() if version["state"] in (V.draft, V.sent)]
    assert len(pending) <= 1, "two versions open at once"
    assert [version for version in versions.values() if version["state"] == V.signed] == ([signed] if signed else [])
    if status in (C.draft, C.sent, C.declined):
        assert signed is None
        assert current["state"] == {C.draft: V.draft, C.sent: V.sent, C.declined: V.declined}[status]
        assert current["kind"] == VersionKind.original
    elif status in (C.signed, C.active):
        assert signed is not None and signed["state"] == V.signed
        assert current is signed or (current["kind"] == VersionKind.amendment and current["state"] == V.sent)
    elif status in (C.completed, C.terminated):
        assert not pending, f"a {status} contract still has version {pending[0]['number']} {pending[0]['state']}"
        assert signed is not None and signed["state"] == V.signed
        assert current is signed
    else:
        assert status == C.cancelled and signed is None
        assert not pending
    sides = [(signature["version_id"], signature["side"]) for signature in state["signatures"]]
    assert len(sides) == len(set(sides)), "a side signed a version twice"
    for signature in state["signatures"]:
        version = versions[signature["version_id"]]
        assert version["state"] != V.draft
        assert signature["document_sha256"] == version["document_sha256"]
    for version_id, version in versions.items():
        if version["state"] == V.signed:
            assert {side for signed_id, side in sides if signed_id == version_id} == {"agency", "provider"}


async def run(database_url: str, settings: Settings, actions_taken: list[Action]) -> None:
    engine = create_engine(database_url, pooled=False)
    sessions = assemble().sessions(engine)
    try:
        parties = await contract_parties(sessions)
        other_agency = await make_organisation(sessions, "agency")
        outsider = principal(await make_user(sessions, other_agency, name="Other Lee"), other_agency)
        contract_id = await draft_contract(sessions, parties, starts_on=STARTS_ON, ends_on=ENDS_ON)
        state = await snapshot(sessions, contract_id)
        check_consistent(state)
        for action in actions_taken:
            events = await count(sessions, AuditEvent)
            try:
                await apply(sessions, settings, parties, outsider, contract_id, action)
            except DomainError as error:
                assert 400 <= error.status_code < 500, f"{action}: {error.status_code} {error.detail}"
                if action[1] == "outsider" and action[0] != "advance":
                    assert error.status_code == 404, f"{action}: an outsider was told {error.status_code}, not 404"
                assert await snapshot(sessions, contract_id) == state, f"refused {action} changed rows"
                assert await count(sessions, AuditEvent) == events, f"refused {action} wrote to the audit trail"
                continue
            assert action[1] != "outsider" or action[0] == "advance", f"{action} was allowed to an outsider"
            after = await snapshot(sessions, contract_id)
            check_moves(state, after, action)
            check_consistent(after)
            if after != state:
                assert await count(sessions, AuditEvent) > events, (
                    f"{action} changed the contract without an audit event"
                )
            state = after
    finally:
        await engine.dispose()


@hypothesis_settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(actions, min_size=1, max_size=10))
def test_any_sequence_of_actions_keeps_the_contract_within_its_tables(
    database_url: str,
    settings: Settings,
    actions_taken: list[Action],
) -> None:
    asyncio.run(run(database_url, settings, actions_taken))


def test_completion_closes_a_pending_amendment(database_url: str, settings: Settings) -> None:
    """Found by the property above: completion left an amendment open, which both sides could still sign."""
    sequence: list[Action] = [
        ("send", "agency", STARTS_ON),
        ("sign", "provider", STARTS_ON),
        ("sign", "agency", STARTS_ON),
        ("amend", "agency", STARTS_ON),
        ("advance", "agency", date(2027, 9, 1)),
        ("sign", "provider", STARTS_ON),
        ("sign", "agency", STARTS_ON),
    ]
    asyncio.run(run(database_url, settings, sequence))


def test_revise_is_only_for_a_declined_contract(database_url: str, settings: Settings) -> None:
    """Found by the property above: a sent contract could be "revised", leaving two open versions."""
    asyncio.run(run(database_url, settings, [("send", "agency", STARTS_ON), ("revise", "agency", STARTS_ON)]))
