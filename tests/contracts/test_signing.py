"""Signing: exactly once per side, on exactly the stored document; both signatures bind the contract."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa

from contracts import documents
from contracts.models import Contract, ContractVersion, Signature
from market import clock
from market.parts import Parts
from tests.contracts.factories import bearer, contract_parties, sent_contract, signed_contract
from tests.helpers import PASSWORD, audit_actions, count


@pytest.fixture
def announced(monkeypatch: pytest.MonkeyPatch, parts: Parts) -> list[tuple[str, dict[str, Any]]]:
    """The contracts' domain events, in order (other packages' subscribers stay registered)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(parts, "subscribers", {name: list(functions) for name, functions in parts.subscribers.items()})
    for event in (
        "contract.sent",
        "contract.signed",
        "contract.started",
        "contract.amended",
        "contract.cancelled",
        "contract.terminated",
        "contract.completed",
    ):

        async def record(session: Any, *, _event: str = event, **data: Any) -> None:
            seen.append((_event, data))

        parts.subscribe(event, record)
    return seen


async def _version(sessions, contract_id: int) -> ContractVersion:
    async with sessions() as session:
        contract = await session.get(Contract, contract_id)
        return await session.get(ContractVersion, contract.current_version_id)


def _sign_body(version: ContractVersion, name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "password": PASSWORD,
        "confirm_read": True,
        "signer_name": name,
        "document_sha256": version.document_sha256,
        **overrides,
    }


async def test_signer_sees_the_stored_document_and_signs_through_the_pages(web, sessions, settings, announced):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(
        sessions, settings, parties, starts_on=date(2026, 1, 1), ends_on=date(2027, 12, 31)
    )
    version = await _version(sessions, contract_id)
    stored = (settings.data_dir / "contracts" / version.document_key[:2] / version.document_key).read_bytes()
    assert documents.sha256(stored) == version.document_sha256

    await web.login(parties.provider_user.email)
    page = await web.client.get(f"/contracts/{contract_id}/versions/1/sign")
    assert page.status_code == 200 and version.document_sha256 in page.text and "<iframe" in page.text
    shown = await web.client.get(f"/contracts/{contract_id}/versions/1/document")
    assert shown.content == stored and shown.headers["x-document-sha256"] == version.document_sha256
    missing_read = await web.submit(
        f"/contracts/{contract_id}/versions/1/sign",
        {"signer_name": "Seller Park", "password": PASSWORD, "document_sha256": version.document_sha256},
    )
    assert missing_read.status_code == 422 and 'id="error-confirm_read"' in missing_read.text
    wrong_password = await web.submit(
        f"/contracts/{contract_id}/versions/1/sign",
        {
            "confirm_read": "yes",
            "signer_name": "Seller Park",
            "password": "not-it-at-all",
            "document_sha256": version.document_sha256,
        },
    )
    assert wrong_password.status_code == 422 and 'id="error-password"' in wrong_password.text
    wrong_name = await web.submit(
        f"/contracts/{contract_id}/versions/1/sign",
        {
            "confirm_read": "yes",
            "signer_name": "Someone Else",
            "password": PASSWORD,
            "document_sha256": version.document_sha256,
        },
    )
    assert wrong_name.status_code == 422 and 'id="error-signer_name"' in wrong_name.text
    assert await count(sessions, Signature) == 0
    signed = await web.submit(
        f"/contracts/{contract_id}/versions/1/sign",
        {
            "confirm_read": "yes",
            "signer_name": "seller  park",
            "password": PASSWORD,
            "document_sha256": version.document_sha256,
        },
        form_page=f"/contracts/{contract_id}/versions/1/sign",
    )
    assert signed.status_code == 303, signed.text
    async with sessions() as session:
        signature = await session.scalar(sa.select(Signature))
        assert signature.contract_id == contract_id
    assert (signature.side, signature.user_id, signature.organisation_id, signature.signer_role) == (
        "provider",
        parties.provider_user.id,
        parties.provider.id,
        "admin",
    )
    assert signature.document_sha256 == version.document_sha256 and signature.address and signature.user_agent
    assert signature.signed_at.tzinfo is not None
    assert (await _contract(sessions, contract_id)).status == "sent"

    await web.logout()
    await web.login(parties.agency_user.email)
    done = await web.submit(
        f"/contracts/{contract_id}/versions/1/sign",
        {
            "confirm_read": "yes",
            "signer_name": "Buyer Kim",
            "password": PASSWORD,
            "document_sha256": version.document_sha256,
        },
    )
    assert done.status_code == 303
    contract = await _contract(sessions, contract_id)
    assert contract.status == "active" and contract.signed_version_id == version.id
    assert [name for name, _data in announced] == ["contract.sent", "contract.signed", "contract.started"]
    assert announced[1][1] == {"contract_id": contract_id, "version_id": version.id}
    assert (await audit_actions(sessions)).count("contract.sign") == 2
    detail = await web.client.get(f"/contracts/{contract_id}")
    assert "The stored document matches its fingerprint." in detail.text and "Buyer Kim" in detail.text


async def _contract(sessions, contract_id: int) -> Contract:
    async with sessions() as session:
        return await session.get(Contract, contract_id)


async def test_agency_may_sign_first_and_a_future_start_leaves_it_signed(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(
        sessions, settings, parties, starts_on=date(2030, 1, 1), ends_on=date(2030, 12, 31)
    )
    version = await _version(sessions, contract_id)
    first = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=await bearer(sessions, parties.agency_user),
        json=_sign_body(version, "Buyer Kim"),
    )
    assert first.status_code == 201 and first.json()["status"] == "sent"
    second = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=await bearer(sessions, parties.provider_user),
        json=_sign_body(version, "Seller Park"),
    )
    assert second.status_code == 201 and second.json()["status"] == "signed"
    assert {item["side"] for item in second.json()["signatures"]} == {"agency", "provider"}


async def test_a_double_submit_makes_one_signature_and_a_409(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = [await bearer(sessions, parties.provider_user), await bearer(sessions, parties.provider_user)]
    url = f"/api/contracts/{contract_id}/versions/1/signatures"
    answers = await asyncio.gather(
        *(client.post(url, headers=h, json=_sign_body(version, "Seller Park")) for h in headers)
    )
    assert sorted(answer.status_code for answer in answers) == [201, 409], [answer.text for answer in answers]
    conflict = next(answer for answer in answers if answer.status_code == 409)
    assert (
        conflict.headers["content-type"].startswith("application/problem+json")
        and "already signed" in conflict.json()["detail"]
    )
    assert await count(sessions, Signature) == 1


async def test_both_sides_signing_at_once_bind_the_contract_once(client, sessions, settings, announced):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties, starts_on=date(2026, 1, 1))
    version = await _version(sessions, contract_id)
    url = f"/api/contracts/{contract_id}/versions/1/signatures"
    requests = [
        client.post(url, headers=await bearer(sessions, parties.agency_user), json=_sign_body(version, "Buyer Kim")),
        client.post(
            url, headers=await bearer(sessions, parties.provider_user), json=_sign_body(version, "Seller Park")
        ),
    ]
    answers = await asyncio.gather(*requests)
    assert [answer.status_code for answer in answers] == [201, 201]
    assert (await _contract(sessions, contract_id)).status == "active"
    assert [name for name, _data in announced].count("contract.signed") == 1


async def test_a_superseded_version_cannot_be_signed_and_signatures_do_not_carry_over(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    old = await _version(sessions, contract_id)
    agency = await bearer(sessions, parties.agency_user)
    provider = await bearer(sessions, parties.provider_user)
    assert (
        await client.post(
            f"/api/contracts/{contract_id}/versions/1/signatures", headers=agency, json=_sign_body(old, "Buyer Kim")
        )
    ).status_code == 201
    withdrawn = await client.post(
        f"/api/contracts/{contract_id}/withdraw", headers=agency, json={"reason": "Wrong quantity"}
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "draft"
    assert [v["state"] for v in withdrawn.json()["versions"]] == ["withdrawn", "draft"]
    late = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures", headers=provider, json=_sign_body(old, "Seller Park")
    )
    assert late.status_code == 409 and "replaced" in late.json()["detail"]
    sent = await client.post(f"/api/contracts/{contract_id}/send", headers=agency)
    assert sent.status_code == 200
    new = await _version(sessions, contract_id)
    assert new.number == 2 and new.document_sha256 and new.document_key != old.document_key
    provider_signs = await client.post(
        f"/api/contracts/{contract_id}/versions/2/signatures", headers=provider, json=_sign_body(new, "Seller Park")
    )
    assert (
        provider_signs.status_code == 201 and provider_signs.json()["status"] == "sent"
    )  # the agency's old signature did not carry over


async def test_a_changed_stored_document_is_detected_and_cannot_be_signed(client, web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.provider_user)
    check = await client.get(f"/api/contracts/{contract_id}/versions/1/check", headers=headers)
    assert check.json()["intact"] is True and check.json()["stored_sha256"] == version.document_sha256
    path = settings.data_dir / "contracts" / version.document_key[:2] / version.document_key
    path.chmod(0o640)
    path.write_bytes(path.read_bytes().replace(b"Cloud Drive", b"Cloud Drives"))
    check = await client.get(f"/api/contracts/{contract_id}/versions/1/check", headers=headers)
    assert check.json()["intact"] is False and check.json()["stored_sha256"] != version.document_sha256
    refused = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=_sign_body(version, "Seller Park")
    )
    assert refused.status_code == 409 and "fingerprint" in refused.json()["detail"]
    await web.login(parties.agency_user.email)
    assert "does NOT match its fingerprint" in (await web.client.get(f"/contracts/{contract_id}")).text
    assert await count(sessions, Signature) == 0


async def test_a_signature_names_the_document_it_was_shown(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    response = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=await bearer(sessions, parties.provider_user),
        json=_sign_body(version, "Seller Park", document_sha256="0" * 64),
    )
    assert response.status_code == 409 and await count(sessions, Signature) == 0


async def test_the_pdf_copy_is_stored_with_its_hash(web, sessions, settings):
    pytest.importorskip("reportlab")
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties, special_terms="한국어 특약: 매월 보고서 제출")
    version = await _version(sessions, contract_id)
    await web.login(parties.agency_user.email)
    response = await web.client.get(f"/contracts/{contract_id}/versions/1/document.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert documents.sha256(response.content) == version.pdf_sha256


async def test_the_factory_signs_in_both_orders(sessions, settings):
    contract_id = await signed_contract(sessions, settings, today=date(2027, 1, 1))
    assert (await _contract(sessions, contract_id)).status == "active"
    assert await count(sessions, Signature, Signature.contract_id == contract_id) == 2


async def test_two_app_processes_signing_at_the_same_moment_make_one_signature(sessions, settings):
    """Two `market serve` processes on the same database (as when scaled out): the same side signs on both at once."""
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx

    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = [await bearer(sessions, parties.provider_user), await bearer(sessions, parties.provider_user)]
    market = Path(sys.executable).with_name("market")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("MARKET_") or key == clock.OFFSET_VARIABLE
    }
    env.update(
        MARKET_DATABASE_URL=settings.database_url,
        MARKET_DATA_DIR=str(settings.data_dir),
        MARKET_WORKER="off",
        MARKET_SECRET_KEY=settings.secret_key,
        MARKET_LOG_LEVEL="WARNING",
    )
    processes, urls = [], []
    try:
        for _ in range(2):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            urls.append(f"http://127.0.0.1:{port}")
            processes.append(
                subprocess.Popen(
                    [str(market), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        async with httpx.AsyncClient(timeout=30) as http:
            deadline = time.monotonic() + 90
            for process, url in zip(processes, urls, strict=True):
                while True:
                    assert process.poll() is None, "a server exited"
                    assert time.monotonic() < deadline, "the servers did not start"
                    try:
                        if (await http.get(f"{url}/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)  # poll interval
            path = f"/api/contracts/{contract_id}/versions/1/signatures"
            answers = await asyncio.gather(
                *(
                    http.post(url + path, headers=header, json=_sign_body(version, "Seller Park"))
                    for url, header in zip(urls, headers, strict=True)
                )
            )
        assert sorted(answer.status_code for answer in answers) == [201, 409], [answer.text for answer in answers]
        assert await count(sessions, Signature) == 1
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def test_a_version_whose_term_has_ended_cannot_be_signed(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    async with sessions() as session, session.begin():  # time passes while it waits for signatures
        await session.execute(
            sa.update(ContractVersion)
            .where(ContractVersion.contract_id == contract_id)
            .values(starts_on=date(2025, 1, 1), ends_on=date(2025, 12, 31))
        )
    version = await _version(sessions, contract_id)
    answer = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=await bearer(sessions, parties.agency_user),
        json=_sign_body(version, "Buyer Kim"),
    )
    assert answer.status_code == 409 and "ended on 2025-12-31" in answer.json()["detail"], answer.text
    assert await count(sessions, Signature) == 0
    assert "contract.sign" not in await audit_actions(sessions)
    withdrawn = await client.post(
        f"/api/contracts/{contract_id}/withdraw", headers=await bearer(sessions, parties.agency_user), json={}
    )
    assert withdrawn.status_code == 200, withdrawn.text  # the way on the message offers
