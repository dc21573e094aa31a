"""Contract signing (`python -m bench --only signing`): contracts ready to sign are generated (seeded) directly in
PostgreSQL, each with its frozen document in the store; 16 clients (8 agency users and 8 provider users, two
of each organisation) sign them end to end over HTTP (`POST /api/contracts/{id}/versions/1/signatures`, an API
token each) against `market serve --workers 2`. One contract in four is also sent to the other user of the
same organisation, so that two signatures of one side race: exactly one may win (201), the other must be
refused (409). Afterwards: duplicates (a second signature of one side, must be 0), every contract with both
signatures bound, and `market audit verify` over the whole chain.

The floor: the same transaction through the driver (asyncpg), statement for statement as the application
runs it (`SIGN_STATEMENTS` below, taken from the application's own SQL), with the same 16 concurrent
connections, on contracts of its own; its audit events join the same chain, which is verified afterwards too.

Signing checks the signer's password again (argon2id at the library's parameters: 64 MiB, 3 passes, 4 lanes)
by design; that alone costs more CPU than the rest of the request. The figures are measured twice: with the
accounts' real hashes, and with hashes made at argon2's lightest parameters (`light`), which shows what the
rest of the path costs. A third run (`passkey`) signs with passkeys instead of the password: each client
registers a software authenticator's passkey (tests/softauthn.py) first, then per signature asks for a signing
request (`POST .../signing-requests`) and posts the authenticator's answer (`method: "webauthn"`); its latency
covers both requests. Target: at least 800 signatures per second, p95 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from argon2 import PasswordHasher

from bench import load
from bench.server import DATA_DIR, MARKET, Profile, Server, machine, percentile, postgres_url, save
from market import clock

TARGET_PER_SECOND = 800
TARGET_P95_MS = 50.0
PASSWORD = "bench-signing-password-2026"
ORGANISATIONS = 4  # per side; two users each: 16 clients
RACE_EVERY = 8  # of every 8 contracts, 2 (one of each user's) are also sent to the other user: one in four


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("signing")
    group.add_argument(
        "--contracts", type=int, default=1500, help="contracts generated for each signing run (default 1500)"
    )
    group.add_argument(
        "--signing-seconds",
        type=int,
        default=20,
        help="how long the clients sign (default 20; they stop sooner when all is signed)",
    )
    group.add_argument(
        "--signing-hash",
        default="real,light,passkey",
        help="the runs: the accounts' password hashes real or light, and passkey (signing with passkeys; default real,light,passkey)",
    )
    group.add_argument(
        "--clients", type=int, default=16, help="signing clients, and the floor's connections (default 16)"
    )


@dataclass
class Party:
    kind: str  # agency or provider
    organisation_id: int
    users: list[tuple[int, str, str]] = field(default_factory=list)  # (user id, name, API token)


@dataclass
class Prepared:
    parties: list[Party]
    http_contracts: list[tuple[int, int, str, int, int]]  # (contract id, version id, sha256, agency org, provider org)
    floor_contracts: list[tuple[int, int, str, int, int]]


BENCH_ORIGIN = "https://market.bench.example"  # MARKET_BASE_URL of the passkey run's server: the passkeys' origin


def _hasher(kind: str) -> PasswordHasher:
    # "light": argon2's lightest parameters, to show the path without the password's deliberate cost (and "passkey",
    # whose accounts never use their password)
    return PasswordHasher() if kind == "real" else PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


async def register_passkeys(url: str, prepared: Prepared) -> dict[str, Any]:
    """A software authenticator's passkey for every client, registered through the API (before the clock runs)."""
    from tests.softauthn import SoftAuthenticator

    authenticators: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for party in prepared.parties:
            for _user_id, _name, token in party.users:
                headers = {"Authorization": f"Bearer {token}"}
                options = (await client.post("/api/passkeys/options", headers=headers)).json()
                authenticator = SoftAuthenticator()
                answer = await client.post(
                    "/api/passkeys",
                    headers=headers,
                    json={
                        "name": "bench",
                        "nonce": options["nonce"],
                        "credential": authenticator.register(options["publicKey"], BENCH_ORIGIN),
                    },
                )
                answer.raise_for_status()
                authenticators[token] = authenticator
    return authenticators


async def prepare(
    database_url: str, seed: int, contracts: int, floor_contracts: int, hash_kind: str, run_label: str
) -> Prepared:
    """Organisations, users with API tokens, and `contracts + floor_contracts` sent contracts, each version's
    document in the store: written directly, as the application would have left them after sending."""
    from contracts.documents import DocumentStore

    rng = random.Random(f"{seed}-{run_label}")
    password_hash = _hasher(hash_kind).hash(PASSWORD)
    store = DocumentStore(DATA_DIR / "contracts")
    now = datetime.now(UTC)
    starts = clock.today() + timedelta(days=30)
    connection = await asyncpg.connect(load.asyncpg_dsn(database_url))
    try:
        async with connection.transaction():
            providers = [
                row[0]
                for row in await connection.fetch(
                    "SELECT DISTINCT provider_id FROM catalog_service WHERE status = 'listed' AND provider_id IN "
                    "(SELECT id FROM organisation WHERE kind = 'provider' AND active) ORDER BY provider_id LIMIT $1",
                    ORGANISATIONS,
                )
            ]
            services = {
                p: [
                    tuple(row)
                    for row in await connection.fetch(
                        "SELECT s.id, s.listed_version_id, p.id, p.name, p.unit, p.unit_price, p.vat_included FROM catalog_service s "
                        "JOIN catalog_plan p ON p.version_id = s.listed_version_id WHERE s.provider_id = $1 AND s.status = 'listed' "
                        "ORDER BY s.id LIMIT 20",
                        p,
                    )
                ]
                for p in providers
            }
            parties: list[Party] = []
            for number in range(ORGANISATIONS):
                agency_id = await connection.fetchval(
                    "INSERT INTO organisation (kind, name, registration_number, contact_email, contact_phone, address, website, is_sme, active, created_at) "
                    "VALUES ('agency', $1, $2, $3, '', '', '', false, true, $4) RETURNING id",
                    f"Bench Agency {run_label} {number + 1}",
                    f"B{rng.randrange(10**9):09d}",
                    f"agency{number}@bench.example.go.kr",
                    now,
                )
                parties.append(Party("agency", agency_id))
            parties += [Party("provider", provider_id) for provider_id in providers]
            for party in parties:
                for seat in (1, 2):
                    email = f"{run_label}-{party.kind}{party.organisation_id}-{seat}@bench.example.kr"
                    name = f"Bench Signer {party.organisation_id}-{seat}"
                    user_id = await connection.fetchval(
                        "INSERT INTO user_account (email, name, password_hash, organisation_id, role, active, password_changed_at, created_at) "
                        "VALUES ($1, $2, $3, $4, 'admin', true, $5, $5) RETURNING id",
                        email,
                        name,
                        password_hash,
                        party.organisation_id,
                        now,
                    )
                    token = f"bench-{run_label}-{user_id}-{rng.randrange(10**12)}"
                    await connection.execute(
                        "INSERT INTO api_token (user_id, name, token_hash, prefix, created_at) VALUES ($1, 'bench', $2, $3, $4)",
                        user_id,
                        hashlib.sha256(token.encode()).hexdigest(),
                        token[:8],
                        now,
                    )
                    party.users.append((user_id, name, token))
            agencies = [party for party in parties if party.kind == "agency"]
            made: list[tuple[int, int, str, int, int]] = []
            for index in range(contracts + floor_contracts):
                agency = agencies[index % ORGANISATIONS]
                provider_id = providers[(index // ORGANISATIONS) % len(providers)]
                service_id, version_id, plan_id, plan_name, unit, unit_price, vat_included = rng.choice(
                    services[provider_id]
                )
                quantity = max(
                    1, min(rng.randrange(1, 50), 1_500_000_000 // max(1, unit_price * 12))
                )  # amounts are 32-bit
                net = unit_price * quantity * 12
                vat = net // 10
                contract_number = f"BN-{run_label}-{index:06d}"
                document = (
                    f'<!doctype html><html lang="ko"><head><meta charset="utf-8"><title>{contract_number}</title></head><body>'
                    f"<h1>Contract {contract_number}</h1><p>Agency {agency.organisation_id}, provider {provider_id}, service {service_id}, "
                    f"plan {plan_name}: {quantity} x {unit_price} KRW per {unit}, 12 months from {starts.isoformat()}; "
                    f"net {net} KRW, VAT {vat} KRW.</p></body></html>"
                ).encode()
                key = await store.put(document)
                sha256 = hashlib.sha256(document).hexdigest()
                contract_id = await connection.fetchval(
                    "INSERT INTO contracts_contract (number, agency_id, provider_id, service_id, status, end_reason, created_by_id, created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, 'sent', '', $5, $6, $6) RETURNING id",
                    contract_number,
                    agency.organisation_id,
                    provider_id,
                    service_id,
                    agency.users[0][0],
                    now,
                )
                version = await connection.fetchval(
                    "INSERT INTO contracts_contract_version (contract_id, number, kind, state, service_version_id, plan_id, plan, quantity, "
                    "starts_on, ends_on, billing_period, budget_reference, route, special_terms, vat_rate_bp, periods, amount_net, amount_vat, "
                    "amount_total, amendment_rationale, lock_version, document_key, document_sha256, decline_reason, created_by_id, created_at, sent_at) "
                    "VALUES ($1, 1, 'original', 'sent', $2, $3, $4, $5, $6, $7, 'monthly', '', 'direct', '', 1000, 12, $8, $9, $10, '', 1, $11, $12, '', $13, $14, $14) "
                    "RETURNING id",
                    contract_id,
                    version_id,
                    plan_id,
                    json.dumps(
                        {"name": plan_name, "unit": unit, "unit_price": unit_price, "vat_included": vat_included}
                    ),
                    quantity,
                    starts,
                    starts + timedelta(days=364),
                    net,
                    vat,
                    net + vat,
                    key,
                    sha256,
                    agency.users[0][0],
                    now,
                )
                await connection.execute(
                    "UPDATE contracts_contract SET current_version_id = $1 WHERE id = $2", version, contract_id
                )
                made.append((contract_id, version, sha256, agency.organisation_id, provider_id))
    finally:
        await connection.close()
    return Prepared(parties, made[:contracts], made[contracts:])


# --- over HTTP -------------------------------------------------------------------------------------


def _work_lists(prepared: Prepared, seed: int) -> list[tuple[str, str, list[tuple[int, str]]]]:
    """Per client (token, name, [(contract id, sha256)]): its own side of its organisation's contracts, split
    between the two users, plus one in four of the other user's, shuffled."""
    rng = random.Random(seed)
    lists = []
    for party in prepared.parties:
        mine = [c for c in prepared.http_contracts if c[3 if party.kind == "agency" else 4] == party.organisation_id]
        for seat, (_user_id, name, token) in enumerate(party.users):
            own = [(c[0], c[2]) for i, c in enumerate(mine) if i % 2 == seat]
            raced = [(c[0], c[2]) for i, c in enumerate(mine) if i % 2 != seat and i % RACE_EVERY in (0, 1)]
            work = own + raced
            rng.shuffle(work)
            lists.append((token, name, work))
    return lists


async def sign_over_http(
    url: str, prepared: Prepared, seed: int, seconds: float, passkeys: dict[str, Any] | None = None
) -> dict[str, Any]:
    lists = _work_lists(prepared, seed)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    won: Counter[tuple[int, str]] = Counter()
    limits = httpx.Limits(max_connections=len(lists), max_keepalive_connections=len(lists))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def one(token: str, name: str, work: list[tuple[int, str]]) -> None:
            headers = {"Authorization": f"Bearer {token}", "User-Agent": "bench-signing"}
            for contract_id, sha256 in work:
                if time.perf_counter() >= deadline:
                    return
                before = time.perf_counter()
                body: dict[str, Any] = {
                    "password": PASSWORD,
                    "confirm_read": True,
                    "signer_name": name,
                    "document_sha256": sha256,
                }
                if passkeys is not None:
                    request = await client.post(
                        f"/api/contracts/{contract_id}/versions/1/signing-requests", headers=headers
                    )
                    if request.status_code != 201:
                        statuses[request.status_code] += 1
                        continue
                    asked = request.json()
                    credential = passkeys[token].assert_(asked["challenge"], BENCH_ORIGIN, asked["publicKey"]["rpId"])
                    body = {
                        "method": "webauthn",
                        "nonce": asked["nonce"],
                        "credential": credential,
                        "confirm_read": True,
                        "signer_name": name,
                        "document_sha256": sha256,
                    }
                response = await client.post(
                    f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body
                )
                elapsed = (time.perf_counter() - before) * 1000
                statuses[response.status_code] += 1
                if response.status_code == 201:
                    latencies.append(elapsed)
                    won[(contract_id, name.rsplit("-", 1)[0])] += 1

        await asyncio.gather(*(one(*work) for work in lists))
        elapsed = time.perf_counter() - started
    return {
        "clients": len(lists),
        "seconds": round(elapsed, 2),
        "signatures": len(latencies),
        "signatures_per_second": round(len(latencies) / elapsed, 1),
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "won_twice_by_one_side": sum(1 for count in won.values() if count > 1),
    }


# --- the floor: the same transaction through the driver ---------------------------------------------

AUDIT_LOCK = 7_201_001


async def _audit(
    connection: asyncpg.Connection, actor: tuple[int, str, int], action: str, object_id: int, summary: dict[str, Any]
) -> None:
    """market.audit.record, statement for statement."""
    from market.audit import chain_hash
    from market.models import AuditEvent

    await connection.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
    last = await connection.fetchrow("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
    event = AuditEvent(
        seq=(last["seq"] + 1) if last else 1,
        at=datetime.now(UTC),
        actor_id=actor[0],
        actor_email=actor[1],
        organisation_id=actor[2],
        action=action,
        object_type="contract",
        object_id=str(object_id),
        summary=json.dumps(summary, sort_keys=True, ensure_ascii=False, default=str),
        ip="127.0.0.1",
        prev_hash=last["hash"] if last else "0" * 64,
        hash="",
    )
    event.hash = chain_hash(event.prev_hash, event)
    await connection.execute(
        "INSERT INTO audit_event (seq, at, actor_id, actor_email, organisation_id, action, object_type, object_id, summary, ip, prev_hash, hash) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        event.seq,
        event.at,
        event.actor_id,
        event.actor_email,
        event.organisation_id,
        event.action,
        event.object_type,
        event.object_id,
        event.summary,
        event.ip,
        event.prev_hash,
        event.hash,
    )


async def _sign_once(
    connection: asyncpg.Connection,
    user: tuple[int, str, str, int, str],
    token: str,
    contract_id: int,
    sha256: str,
    store_root: Path,
) -> bool:
    """One signature as `POST /api/.../signatures` runs it against the database, statement for statement (the
    application's SQL, captured): the token and its user, the contract read then locked, version, signer,
    duplicate check, the signature in a savepoint, its audit event; when both sides are in, the binding, its
    audit event and the open register's release (the release's JSON here is a short stand-in for the OCDS
    document the application builds); then the answer's reads. The stored document's fingerprint is checked
    as the application does (reading the file)."""
    user_id, name, email, organisation_id, kind = user
    async with connection.transaction():
        token_row = await connection.fetchrow(
            "SELECT * FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL",
            hashlib.sha256(token.encode()).hexdigest(),
        )
        await connection.fetchrow("SELECT * FROM user_account WHERE id = $1", token_row["user_id"])
        if token_row["last_used_at"] is None or datetime.now(UTC) - token_row["last_used_at"] > timedelta(minutes=1):
            await connection.execute(
                "UPDATE api_token SET last_used_at = $1 WHERE id = $2", datetime.now(UTC), token_row["id"]
            )
        await connection.fetchrow("SELECT * FROM contracts_contract WHERE id = $1", contract_id)
        contract = await connection.fetchrow("SELECT * FROM contracts_contract WHERE id = $1 FOR UPDATE", contract_id)
        version = await connection.fetchrow(
            "SELECT * FROM contracts_contract_version WHERE contract_id = $1 AND number = $2", contract_id, 1
        )
        if version["id"] != contract["current_version_id"] or version["state"] != "sent":
            return False
        await connection.fetchrow("SELECT * FROM user_account WHERE id = $1", user_id)
        if version["document_sha256"] != sha256:
            return False
        key = version["document_key"]
        if hashlib.sha256((store_root / key[:2] / key).read_bytes()).hexdigest() != sha256:
            return False
        side = "agency" if kind == "agency" else "provider"
        if await connection.fetchval(
            "SELECT id FROM contracts_signature WHERE version_id = $1 AND side = $2", version["id"], side
        ):
            return False
        async with connection.transaction():  # the savepoint around the insert
            await connection.execute(
                "INSERT INTO contracts_signature (contract_id, version_id, side, user_id, organisation_id, signer_name, signer_role, "
                "document_sha256, address, user_agent, signed_at) VALUES ($1, $2, $3, $4, $5, $6, 'admin', $7, '127.0.0.1', 'bench-signing', $8)",
                contract_id,
                version["id"],
                side,
                user_id,
                organisation_id,
                name,
                sha256,
                datetime.now(UTC),
            )
        actor = (user_id, email, organisation_id)
        await _audit(
            connection,
            actor,
            "contract.sign",
            contract_id,
            {"version": 1, "side": side, "document_sha256": sha256, "signer_name": name},
        )
        sides = {
            row[0]
            for row in await connection.fetch(
                "SELECT side FROM contracts_signature WHERE version_id = $1", version["id"]
            )
        }
        if sides == {"agency", "provider"}:
            now = datetime.now(UTC)
            await connection.execute(
                "UPDATE contracts_contract SET status = 'signed', signed_version_id = $1, updated_at = $2 WHERE id = $3",
                version["id"],
                now,
                contract_id,
            )
            await connection.execute(
                "UPDATE contracts_contract_version SET state = 'signed', signed_at = $1 WHERE id = $2",
                now,
                version["id"],
            )
            await _audit(connection, actor, "contract.signed", contract_id, {"version": 1, "status": "signed"})
            # the open register's release (contracts.ocds, on "contract.signed")
            await connection.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
            release_id = f"ocds-bench-{contract['number']}-contract-{contract_id}"
            await connection.fetchval("SELECT id FROM contracts_ocds_release WHERE release_id = $1", release_id)
            await connection.fetch(
                "SELECT * FROM contracts_contract_version WHERE contract_id = $1 ORDER BY number", contract_id
            )
            await connection.fetchrow("SELECT * FROM organisation WHERE id = $1", contract["agency_id"])
            await connection.fetchrow("SELECT * FROM organisation WHERE id = $1", contract["provider_id"])
            await connection.fetchrow(
                "SELECT * FROM catalog_service_version WHERE id = $1", version["service_version_id"]
            )
            await connection.fetch(
                "SELECT p.* FROM contracts_payment p JOIN contracts_invoice i ON i.id = p.invoice_id WHERE i.contract_id = $1",
                contract_id,
            )
            await connection.fetch(
                "SELECT * FROM committee_certificate WHERE service_id = $1 AND version_number = $2",
                contract["service_id"],
                1,
            )
            await connection.fetchval(
                "INSERT INTO contracts_ocds_release (contract_id, ocid, release_id, tags, released_at, data) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                contract_id,
                f"ocds-bench-{contract['number']}",
                release_id,
                json.dumps(["award", "contract"]),
                now,
                json.dumps(
                    {"ocid": f"ocds-bench-{contract['number']}", "id": release_id, "tag": ["award", "contract"]}
                ),
            )
        # the answer: the contract with its versions and signatures
        await connection.fetchrow("SELECT * FROM contracts_contract WHERE id = $1", contract_id)
        await connection.fetch(
            "SELECT * FROM contracts_contract_version WHERE contract_id = $1 ORDER BY number", contract_id
        )
        await connection.fetch("SELECT * FROM contracts_contract WHERE id = $1", contract_id)
        await connection.fetch(
            "SELECT * FROM contracts_contract WHERE renewal_of_id = $1 LIMIT 1 OFFSET $2", contract_id, 0
        )
        await connection.fetch(
            "SELECT * FROM contracts_signature WHERE contract_id = $1 ORDER BY signed_at, id", contract_id
        )
        await connection.fetchval("SELECT organisation_id FROM user_account WHERE id = $1", user_id)
        await connection.fetchval(
            "SELECT coalesce(sum(p.amount), 0) FROM contracts_payment p JOIN contracts_invoice i ON i.id = p.invoice_id "
            "WHERE i.contract_id = $1",
            contract_id,
        )
    return True


async def sign_through_driver(
    database_url: str, prepared: Prepared, seed: int, seconds: float, clients: int
) -> dict[str, Any]:
    dsn = load.asyncpg_dsn(database_url)
    users: list[tuple[tuple[int, str, str, int, str], str, list[tuple[int, str]]]] = []
    rng = random.Random(seed)
    for party in prepared.parties:
        mine = [c for c in prepared.floor_contracts if c[3 if party.kind == "agency" else 4] == party.organisation_id]
        for seat, (user_id, name, token) in enumerate(party.users):
            work = [(c[0], c[2]) for i, c in enumerate(mine) if i % 2 == seat]
            rng.shuffle(work)
            users.append(((user_id, name, f"user{user_id}@bench", party.organisation_id, party.kind), token, work))
    users = users[:clients]
    pool = [await asyncpg.connect(dsn) for _ in users]
    latencies: list[float] = []
    store_root = DATA_DIR / "contracts"
    try:
        started = time.perf_counter()
        deadline = started + seconds

        async def one(connection: asyncpg.Connection, user: Any, token: str, work: list[tuple[int, str]]) -> None:
            for contract_id, sha256 in work:
                if time.perf_counter() >= deadline:
                    return
                before = time.perf_counter()
                if await _sign_once(connection, user, token, contract_id, sha256, store_root):
                    latencies.append((time.perf_counter() - before) * 1000)

        await asyncio.gather(*(one(connection, *entry) for connection, entry in zip(pool, users, strict=True)))
        elapsed = time.perf_counter() - started
    finally:
        for connection in pool:
            await connection.close()
    return {
        "clients": len(users),
        "seconds": round(elapsed, 2),
        "signatures": len(latencies),
        "signatures_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
    }


# --- afterwards ------------------------------------------------------------------------------------


async def check_contracts(database_url: str, prepared: Prepared) -> dict[str, Any]:
    ids = [c[0] for c in prepared.http_contracts + prepared.floor_contracts]
    connection = await asyncpg.connect(load.asyncpg_dsn(database_url))
    try:
        duplicates = await connection.fetchval(
            "SELECT count(*) FROM (SELECT version_id, side FROM contracts_signature GROUP BY version_id, side HAVING count(*) > 1) d"
        )
        unbound = await connection.fetchval(
            "SELECT count(*) FROM contracts_contract c WHERE c.id = ANY($1) AND c.status <> 'signed' AND "
            "(SELECT count(DISTINCT side) FROM contracts_signature s WHERE s.contract_id = c.id) = 2",
            ids,
        )
        bound = await connection.fetchval(
            "SELECT count(*) FROM contracts_contract WHERE id = ANY($1) AND status = 'signed'", ids
        )
    finally:
        await connection.close()
    return {"duplicate_signatures": duplicates, "both_signed_but_not_bound": unbound, "contracts_bound": bound}


def verify_audit(database_url: str) -> dict[str, Any]:
    started = time.perf_counter()
    env = {
        **os.environ,
        "MARKET_DATABASE_URL": database_url,
        "MARKET_DATA_DIR": str(DATA_DIR),
        "MARKET_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run([str(MARKET), "audit", "verify"], env=env, capture_output=True, text=True)
    return {
        "ok": done.returncode == 0,
        "output": (done.stdout + done.stderr).strip(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def argon2_verify_ms(kind: str) -> float:
    hasher = _hasher(kind)
    stored = hasher.hash(PASSWORD)
    started = time.perf_counter()
    for _ in range(5):
        hasher.verify(stored, PASSWORD)
    return round((time.perf_counter() - started) * 1000 / 5, 2)


def run(args: argparse.Namespace) -> Path:
    started = datetime.now(UTC)
    database_url = postgres_url()
    report: dict[str, Any] = {
        "benchmark": "contract signing",
        "started_at": started.isoformat(timespec="seconds"),
        "seed": args.seed,
        "contracts": args.contracts,
        "server_workers": args.workers,
        "machine": machine(),
        "target_per_second": TARGET_PER_SECOND,
        "target_p95_ms": TARGET_P95_MS,
        "runs": [],
    }
    for kind in [k.strip() for k in args.signing_hash.split(",") if k.strip()]:
        label = f"{started.strftime('%H%M%S')}{kind[0]}"
        prepared = asyncio.run(prepare(database_url, args.seed, args.contracts, args.contracts, kind, label))
        entry: dict[str, Any] = {"hash": kind, "argon2_verify_ms": argon2_verify_ms(kind)}
        server = Server(database_url, args.workers, env={"MARKET_BASE_URL": BENCH_ORIGIN})
        try:
            server.wait()
            passkeys = asyncio.run(register_passkeys(server.url, prepared)) if kind == "passkey" else None
            before = server.cpu_seconds()
            with Profile(args.profile, server, f"signing-{kind}", args.signing_seconds):
                entry["http"] = asyncio.run(
                    sign_over_http(server.url, prepared, args.seed, args.signing_seconds, passkeys)
                )
            answered = sum(entry["http"]["statuses"].values())
            entry["http"]["server_cpu_ms_per_request"] = round(
                (server.cpu_seconds() - before) * 1000 / max(answered, 1), 1
            )
        finally:
            server.stop()
        print(
            f"  signing ({kind}) http  : {entry['http']['signatures_per_second']:7.1f}/s p95 {entry['http']['p95_ms']:7.1f} ms, "
            f"server CPU {entry['http']['server_cpu_ms_per_request']} ms a request",
            flush=True,
        )
        entry["driver"] = asyncio.run(
            sign_through_driver(database_url, prepared, args.seed, args.signing_seconds, args.clients)
        )
        print(
            f"  signing ({kind}) driver: {entry['driver']['signatures_per_second']:7.1f}/s p95 {entry['driver']['p95_ms']:7.1f} ms",
            flush=True,
        )
        entry["checks"] = asyncio.run(check_contracts(database_url, prepared))
        entry["checks"]["won_twice_by_one_side"] = entry["http"]["won_twice_by_one_side"]
        entry["ratio_to_driver"] = round(
            entry["http"]["signatures_per_second"] / max(entry["driver"]["signatures_per_second"], 0.1), 4
        )
        entry["target_met"] = (
            entry["http"]["signatures_per_second"] >= TARGET_PER_SECOND and entry["http"]["p95_ms"] < TARGET_P95_MS
        )
        report["runs"].append(entry)
    report["audit"] = verify_audit(database_url)
    print(f"  audit: {report['audit']['output']}", flush=True)
    target = save("signing", report)
    print(table(report))
    return target


def table(report: dict[str, Any]) -> str:
    lines = [
        f"{'contract signing':30} {'sig/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'signed':>7}  other answers"
    ]
    for entry in report["runs"]:
        for mode, label in (("http", "HTTP, 2 workers"), ("driver", "same transaction, asyncpg")):
            row = entry[mode]
            other = {k: v for k, v in row.get("statuses", {}).items() if k != "201"}
            lines.append(
                f"{entry['hash'] + ', ' + label:30} {row['signatures_per_second']:7.1f} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} "
                f"{row['p99_ms']:8.1f} {row['signatures']:>7}  {other if other else ''}"
            )
        checks = entry["checks"]
        verdict = "met" if entry["target_met"] else "MISSED"
        lines.append(
            f"  {entry['hash']}: argon2 verify {entry['argon2_verify_ms']} ms; server CPU {entry['http']['server_cpu_ms_per_request']} ms a request; duplicates {checks['duplicate_signatures']} "
            f"(won twice {checks['won_twice_by_one_side']}); both signed but not bound {checks['both_signed_but_not_bound']}; "
            f"ratio to the driver {entry['ratio_to_driver']:.3f}; target >= {TARGET_PER_SECOND}/s and p95 < {TARGET_P95_MS:g} ms: {verdict}"
        )
    lines.append(f"audit chain: {'verified' if report['audit']['ok'] else 'BROKEN'} ({report['audit']['output']})")
    return "\n".join(lines)
