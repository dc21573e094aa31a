"""Two app processes on one database behave as one.

Two `market serve` processes (worker off) run on the run's database for the whole module. Each test loads
its data through its own sessions, then makes the same concurrent HTTP calls twice, on fresh data of the same
shape: once with every call sent twice to one process, once with every call sent to each of the two processes,
all at the same moment. Signatures, reviews and Stripe webhooks end the same both ways: each recorded or
applied once, the duplicates refused with 409 (never a 5xx) or acknowledged as duplicate events, each
contract bound once, each case decided once.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from committee.models import Case, Certificate, Decision, Review
from contracts import sweep
from contracts.models import Contract, ContractVersion, Invoice, Payment, Signature, StripeEvent
from market import audit, clock, outbox
from market.models import AuditEvent
from tests.committee.factories import PASSING, case_in_review, failing, world
from tests.contracts.factories import active_contract, bearer, contract_parties, sent_contract
from tests.contracts.stripe_standin import WEBHOOK_SECRET, deliver, standin, stripe_settings  # noqa: F401 (fixtures)
from tests.helpers import PASSWORD
from tests.processes import MARKET, ROOT, cli_env, free_port, wait_until_healthy

ONE, TWO = "one process", "two processes"
SHUFFLE = random.Random(2026)


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


@pytest.fixture(scope="module")
def servers(
    migrated_database: str, base_settings: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    """Two `market serve` processes on the run's database, sharing its data folder and secret key."""
    folder = tmp_path_factory.mktemp("two-processes")
    started: list[tuple[subprocess.Popen[bytes], Server]] = []
    try:
        for name in ("a", "b"):
            port = free_port()
            server = Server(f"http://127.0.0.1:{port}", folder / f"server-{name}.log")
            env = cli_env(
                migrated_database,
                base_settings.data_dir,
                worker="off",
                secret_key=base_settings.secret_key,
                base_url=server.url,
                default_language="en",
                stripe_webhook_secret=WEBHOOK_SECRET,
                api_requests_per_minute="1000000",
            )
            with server.log.open("wb") as output:
                process = subprocess.Popen(
                    [str(MARKET), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, server))
        for process, server in started:
            wait_until_healthy(process, server.url, server.log)
        yield [server for _process, server in started]
    finally:
        for process, _server in started:
            process.terminate()
        for process, _server in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@asynccontextmanager
async def clients(servers: list[Server]) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=60)) for server in servers
        ]


@dataclass(frozen=True)
class Call:
    """One request, sent once to each process of the leg (twice to the one process)."""

    key: tuple[Any, ...]  # what it is, to group the answers
    path: str
    headers: dict[str, str] | None = None
    body: Any = None
    event: dict[str, Any] | None = None  # a Stripe event, delivered signed


async def at_once(servers: list[Server], calls: list[Call]) -> dict[tuple[Any, ...], list[httpx.Response]]:
    """Every call twice, all at the same moment in a shuffled order; the answers grouped by the calls' keys."""
    async with clients(servers) as http:
        sends = [(call, http[copy % len(http)]) for call in calls for copy in range(2)]
        SHUFFLE.shuffle(sends)

        async def send(call: Call, client: httpx.AsyncClient) -> httpx.Response:
            if call.event is not None:
                return await deliver(client, call.event)
            return await client.post(call.path, headers=call.headers, json=call.body)

        answers = await asyncio.gather(*(send(call, client) for call, client in sends))
    failed = [
        f"{answer.status_code} {answer.request.url}: {answer.text[:300]}"
        for answer in answers
        if answer.status_code >= 500
    ]
    assert not failed, "\n".join(failed) + "".join(
        f"\n--- {server.log.name}:\n{server.log.read_text()[-4000:]}" for server in servers
    )
    grouped: dict[tuple[Any, ...], list[httpx.Response]] = {}
    for (call, _client), answer in zip(sends, answers, strict=True):
        grouped.setdefault(call.key, []).append(answer)
    return grouped


def statuses(answers: list[httpx.Response]) -> list[int]:
    return sorted(answer.status_code for answer in answers)


async def audit_chain_holds(sessions: Any) -> None:
    async with sessions() as session:
        verified = await audit.verify(session)
    assert verified.ok, verified.reason


async def audited(sessions: Any, object_type: str, object_id: int) -> Counter[str]:
    async with sessions() as session:
        actions = (
            await session.scalars(
                sa.select(AuditEvent.action).where(
                    AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id)
                )
            )
        ).all()
    return Counter(actions)


# --- signing ----------------------------------------------------------------------------------------------

CONTRACTS = 8


async def test_both_sides_signing_on_both_processes_at_once_bind_each_contract_once_as_on_one_process(
    servers, sessions, settings
):
    parties = await contract_parties(sessions)
    signers = {
        "agency": (await bearer(sessions, parties.agency_user), "Buyer Kim"),
        "provider": (await bearer(sessions, parties.provider_user), "Seller Park"),
    }
    starts_on = clock.today() - timedelta(days=30)
    outcomes = {}
    for leg, used in ((ONE, servers[:1]), (TWO, servers)):
        contract_ids = [
            await sent_contract(
                sessions, settings, parties, starts_on=starts_on, ends_on=starts_on + timedelta(days=364)
            )
            for _ in range(CONTRACTS)
        ]
        async with sessions() as session:
            fingerprints = dict(
                (
                    await session.execute(
                        sa.select(Contract.id, ContractVersion.document_sha256)
                        .join(ContractVersion, ContractVersion.id == Contract.current_version_id)
                        .where(Contract.id.in_(contract_ids))
                    )
                ).all()
            )
        calls = [
            Call(
                (index, side),
                f"/api/contracts/{contract_id}/versions/1/signatures",
                headers,
                {
                    "password": PASSWORD,
                    "confirm_read": True,
                    "signer_name": name,
                    "document_sha256": fingerprints[contract_id],
                },
            )
            for index, contract_id in enumerate(contract_ids)
            for side, (headers, name) in signers.items()
        ]
        answers = await at_once(used, calls)
        outcome = []
        for index, contract_id in enumerate(contract_ids):
            async with sessions() as session:
                contract = await session.get(Contract, contract_id)
                sides = sorted(
                    (await session.scalars(sa.select(Signature.side).where(Signature.contract_id == contract_id))).all()
                )
            actions = await audited(sessions, "contract", contract_id)
            outcome.append(
                {
                    "answers": {side: statuses(answers[(index, side)]) for side in signers},
                    "status": contract.status,
                    "signatures": sides,
                    "signed once": actions["contract.sign"],
                    "bound": actions["contract.signed"],
                }
            )
        outcomes[leg] = outcome
    assert (
        outcomes[ONE]
        == [
            {
                "answers": {"agency": [201, 409], "provider": [201, 409]},
                "status": "active",
                "signatures": ["agency", "provider"],
                "signed once": 2,
                "bound": 1,
            }
        ]
        * CONTRACTS
    )
    assert outcomes[TWO] == outcomes[ONE]
    await audit_chain_holds(sessions)


# --- reviewing ----------------------------------------------------------------------------------------------

CASES = 4


async def test_members_reviewing_on_both_processes_at_once_decide_each_case_once_as_on_one_process(servers, sessions):
    w = await world(sessions)
    reviewers = w.members[:3]
    outcomes = {}
    for leg, used in ((ONE, servers[:1]), (TWO, servers)):
        case_ids = [(await case_in_review(w, members=reviewers))[1] for _ in range(CASES)]
        calls = []
        for index, case_id in enumerate(case_ids):
            for number, member in enumerate(
                reviewers
            ):  # every second case: two members find a mandatory criterion failed
                answers = failing("sanctions", "Debarment record found") if index % 2 and number < 2 else PASSING
                calls.append(
                    Call(
                        (index, number),
                        f"/api/committee/cases/{case_id}/review",
                        w.bearer(member),
                        {"answers": answers},
                    )
                )
        answers = await at_once(used, calls)
        outcome = []
        for index, case_id in enumerate(case_ids):
            async with sessions() as session:
                case = await session.get(Case, case_id)
                decisions = (
                    await session.scalars(sa.select(Decision.outcome).where(Decision.case_id == case_id))
                ).all()
                reviewed = Counter(
                    (await session.scalars(sa.select(Review.member_id).where(Review.case_id == case_id))).all()
                )
                certificates = await session.scalar(
                    sa.select(sa.func.count()).select_from(Certificate).where(Certificate.case_id == case_id)
                )
            accepted = [
                answer.json()["case_state"]
                for number in range(3)
                for answer in answers[(index, number)]
                if answer.status_code == 201
            ]
            outcome.append(
                {
                    "answers": [statuses(answers[(index, number)]) for number in range(3)],
                    "states answered": sorted(accepted),
                    "state": case.state,
                    "decisions": list(decisions),
                    "reviews per member": sorted(reviewed.values()),
                    "certificates": certificates,
                    "decided once": (await audited(sessions, "case", case_id))["committee.case_decided"],
                }
            )
        outcomes[leg] = outcome
    certified = {
        "state": "certified",
        "decisions": ["certified"],
        "certificates": 1,
        "states answered": ["certified", "review", "review"],
    }
    rejected = {
        "state": "rejected",
        "decisions": ["rejected"],
        "certificates": 0,
        "states answered": ["rejected", "review", "review"],
    }
    for index, outcome in enumerate(outcomes[ONE]):
        assert outcome == {
            "answers": [[201, 409]] * 3,
            "reviews per member": [1, 1, 1],
            "decided once": 1,
            **(rejected if index % 2 else certified),
        }
    assert outcomes[TWO] == outcomes[ONE]
    await audit_chain_holds(sessions)


# --- webhook delivery ---------------------------------------------------------------------------------------

# What Stripe reports about each invoice, oldest first, as Stripe moves an invoice (a finalised invoice is
# reported but changes nothing here). In every order of delivery the last report decides: an older one than
# the one applied is ignored, and paid or void follow uncollectible.
HISTORIES = [
    (["invoice.paid"], "paid"),
    (["invoice.marked_uncollectible", "invoice.paid"], "paid"),
    (["invoice.finalized", "invoice.marked_uncollectible", "invoice.paid"], "paid"),
    (["invoice.voided"], "void"),
    (["invoice.marked_uncollectible", "invoice.voided"], "void"),
    (["invoice.marked_uncollectible"], "uncollectible"),
]
REPORTED = {
    "invoice.finalized": "open",
    "invoice.paid": "paid",
    "invoice.voided": "void",
    "invoice.marked_uncollectible": "uncollectible",
}


async def test_stripe_events_delivered_to_both_processes_in_any_order_are_applied_once_as_on_one_process(
    servers,
    sessions,
    stripe_settings,
    standin,
):
    parties = await contract_parties(sessions)
    contract_ids = [await active_contract(sessions, stripe_settings, parties) for _ in range(2 * len(HISTORIES))]
    async with sessions() as session, session.begin():
        await sweep.sweep(session, stripe_settings, date(2026, 1, 5))
    while await outbox.run_once(sessions, stripe_settings):
        pass
    async with sessions() as session:
        invoices = {invoice.contract_id: invoice for invoice in (await session.scalars(sa.select(Invoice))).all()}
    assert all(invoices[contract_id].stripe_invoice_id in standin.invoices for contract_id in contract_ids)
    now = int(time.time())
    outcomes = {}
    for leg, used, legs_contracts in (
        (ONE, servers[:1], contract_ids[: len(HISTORIES)]),
        (TWO, servers, contract_ids[len(HISTORIES) :]),
    ):
        events: dict[tuple[int, int], dict[str, Any]] = {}
        for index, (contract_id, (history, _final)) in enumerate(zip(legs_contracts, HISTORIES, strict=True)):
            remote = standin.invoices[invoices[contract_id].stripe_invoice_id]
            for step, kind in enumerate(history):
                reported = {**remote, "status": REPORTED[kind]}
                if kind == "invoice.paid":
                    reported.update(amount_paid=remote["amount_due"], amount_remaining=0, paid=True)
                events[index, step] = standin.event(kind, reported, created=now - 60 * (len(history) - step))
        answers = await at_once(used, [Call(key, "/webhooks/stripe", event=event) for key, event in events.items()])
        outcome = []
        for index, (contract_id, (history, _final)) in enumerate(zip(legs_contracts, HISTORIES, strict=True)):
            invoice_id = invoices[contract_id].id
            steps = range(len(history))
            async with sessions() as session:
                invoice = await session.get(Invoice, invoice_id)
                paid = (await session.scalars(sa.select(Payment.amount).where(Payment.invoice_id == invoice_id))).all()
                stored = await session.scalar(
                    sa.select(sa.func.count())
                    .select_from(StripeEvent)
                    .where(StripeEvent.event_id.in_([events[index, step]["id"] for step in steps]))
                )
            outcome.append(
                {
                    "answers": [statuses(answers[index, step]) for step in steps],
                    "duplicates": [
                        sorted(answer.json().get("duplicate") for answer in answers[index, step]) for step in steps
                    ],
                    "status": invoice.status,
                    "status at": invoice.stripe_status_at - now,
                    "events stored": stored,
                    "payments": [amount == invoice.amount_total for amount in paid],
                    "paid once": (await audited(sessions, "invoice", invoice_id))["contracts.invoice_paid"],
                }
            )
        outcomes[leg] = outcome
    assert outcomes[ONE] == [
        {
            "answers": [[200, 200]] * len(history),
            "duplicates": [[False, True]] * len(history),
            "status": final,
            "status at": -60,
            "events stored": len(history),
            "payments": [True] if final == "paid" else [],
            "paid once": int(final == "paid"),
        }
        for history, final in HISTORIES
    ]
    assert outcomes[TWO] == outcomes[ONE]
    await audit_chain_holds(sessions)
