"""Signing with a passkey or an API signing key: the signature binds the exact document and anyone can check it.

A software authenticator (tests/softauthn.py) stands in for the browser and the passkey; an Ed25519 private key
made here stands in for a program's.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from contracts import verify_signature
from contracts.models import Contract, ContractVersion, Signature
from market import clock, signing_keys
from market.models import AuditEvent, LoginFailure, Organisation, SigningKey, SigningNonce
from tests.contracts.factories import bearer, contract_parties, sent_contract
from tests.helpers import PASSWORD, audit_actions, count
from tests.processes import MARKET
from tests.softauthn import SoftAuthenticator

ROOT = Path(__file__).resolve().parents[2]


async def _version(sessions, contract_id: int) -> ContractVersion:
    async with sessions() as session:
        contract = await session.get(Contract, contract_id)
        return await session.get(ContractVersion, contract.current_version_id)


async def register_passkey(
    client, headers: dict[str, str], settings, authenticator: SoftAuthenticator, name: str = "Laptop"
) -> dict[str, Any]:
    options = (await client.post("/api/passkeys/options", headers=headers)).json()
    credential = authenticator.register(options["publicKey"], signing_keys.origin(settings))
    answer = await client.post(
        "/api/passkeys", headers=headers, json={"name": name, "nonce": options["nonce"], "credential": credential}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def ed25519_key() -> tuple[ed25519.Ed25519PrivateKey, str]:
    private = ed25519.Ed25519PrivateKey.generate()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, pem


async def signing_request(client, headers: dict[str, str], contract_id: int, number: int = 1) -> dict[str, Any]:
    answer = await client.post(f"/api/contracts/{contract_id}/versions/{number}/signing-requests", headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


def passkey_body(
    request: dict[str, Any], authenticator: SoftAuthenticator, settings, name: str, sha256: str
) -> dict[str, Any]:
    credential = authenticator.assert_(
        request["challenge"], signing_keys.origin(settings), signing_keys.rp_id(settings)
    )
    return {
        "method": "webauthn",
        "nonce": request["nonce"],
        "credential": credential,
        "confirm_read": True,
        "signer_name": name,
        "document_sha256": sha256,
    }


def ed25519_body(
    request: dict[str, Any], private: ed25519.Ed25519PrivateKey, key_id: int, name: str, sha256: str
) -> dict[str, Any]:
    signature = base64.b64encode(private.sign(request["payload"].encode())).decode()
    return {
        "method": "ed25519",
        "nonce": request["nonce"],
        "key_id": key_id,
        "signature": signature,
        "confirm_read": True,
        "signer_name": name,
        "document_sha256": sha256,
    }


async def _evidence(client, headers, contract_id: int) -> dict[str, Any]:
    contract = (await client.get(f"/api/contracts/{contract_id}", headers=headers)).json()
    signature_id = contract["signatures"][-1]["id"]
    answer = await client.get(f"/api/contracts/{contract_id}/signatures/{signature_id}/evidence.json", headers=headers)
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    return answer.json()


async def test_a_passkey_signature_binds_the_document_and_its_bundle_verifies_anywhere(
    client, sessions, settings, tmp_path
):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.provider_user)
    authenticator = SoftAuthenticator()
    key = await register_passkey(client, headers, settings, authenticator, "Office laptop")
    assert (key["kind"], key["name"], key["algorithm"], key["last_used_at"]) == ("passkey", "Office laptop", -7, None)

    request = await signing_request(client, headers, contract_id)
    payload = json.loads(request["payload"])
    assert payload == {
        "purpose": "contract-signature",
        "contract_id": contract_id,
        "contract_number": payload["contract_number"],
        "version": 1,
        "side": "provider",
        "document_sha256": version.document_sha256,
        "signer": parties.provider_user.email,
        "nonce": request["nonce"],
    }
    assert request["payload"] == verify_signature.canonical(payload).decode()
    assert request["publicKey"]["allowCredentials"][0]["id"] == authenticator.id
    signed = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=headers,
        json=passkey_body(request, authenticator, settings, "Seller Park", version.document_sha256),
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["signatures"][0]["method"] == "webauthn"
    async with sessions() as session:
        stored = await session.scalar(sa.select(SigningKey))
        signature = await session.scalar(sa.select(Signature))
    assert stored.sign_count == 1 and stored.last_used_at is not None and signature.signing_key_id == stored.id
    assert signature.payload == request["payload"]
    async with sessions() as session:
        event = await session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "contract.sign"))
    assert json.loads(event.summary)["method"] == "webauthn"

    bundle = await _evidence(client, headers, contract_id)
    assert (
        bundle["method"] == "webauthn"
        and bundle["origin"] == signing_keys.origin(settings)
        and bundle["rp_id"] == "127.0.0.1"
    )
    verdict = verify_signature.verify(bundle)
    assert verdict.ok, verdict.problems
    document = (settings.data_dir / "contracts" / version.document_key[:2] / version.document_key).read_bytes()
    assert verify_signature.verify(bundle, document).ok
    assert not verify_signature.verify(bundle, document + b" ").ok
    # the one standalone file, as anyone runs it: no project import, no database
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    done = subprocess.run(
        [sys.executable, "-I", str(ROOT / "contracts" / "verify_signature.py"), str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and done.stdout.startswith("VERIFIED"), done.stdout + done.stderr


async def test_an_ed25519_key_signs_through_the_api_and_its_bundle_verifies(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.agency_user)
    private, pem = ed25519_key()
    created = await client.post(
        "/api/signing-keys", headers=headers, json={"name": "Procurement system", "public_key": pem}
    )
    assert created.status_code == 201, created.text
    key = created.json()
    request = await signing_request(client, headers, contract_id)
    signed = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=headers,
        json=ed25519_body(request, private, key["id"], "Buyer Kim", version.document_sha256),
    )
    assert signed.status_code == 201, signed.text
    bundle = await _evidence(client, headers, contract_id)
    assert bundle["method"] == "ed25519" and bundle["algorithm"] == -8
    assert verify_signature.verify(bundle).ok
    listed = (await client.get("/api/signing-keys", headers=headers)).json()
    assert listed[0]["last_used_at"] is not None


async def test_an_ed25519_key_may_be_given_as_raw_base64_and_bad_keys_answer_422(client, sessions, settings):
    parties = await contract_parties(sessions)
    headers = await bearer(sessions, parties.agency_user)
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    created = await client.post(
        "/api/signing-keys", headers=headers, json={"name": "Raw", "public_key": base64.b64encode(raw).decode()}
    )
    assert created.status_code == 201
    again = await client.post(
        "/api/signing-keys", headers=headers, json={"name": "Raw again", "public_key": base64.b64encode(raw).decode()}
    )
    assert again.status_code == 409
    for bad in (
        "not a key",
        base64.b64encode(b"x" * 31).decode(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ):
        answer = await client.post("/api/signing-keys", headers=headers, json={"name": "Bad", "public_key": bad})
        assert answer.status_code == 422 and "public_key" in answer.json()["errors"], answer.text
    assert await count(sessions, SigningKey) == 1


async def test_a_replayed_nonce_is_refused(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.provider_user)
    authenticator = SoftAuthenticator()
    await register_passkey(client, headers, settings, authenticator)
    request = await signing_request(client, headers, contract_id)
    body = passkey_body(request, authenticator, settings, "Seller Park", version.document_sha256)
    first = await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body)
    assert first.status_code == 201
    async with sessions() as session, session.begin():
        await session.execute(sa.delete(Signature))  # the signature gone: only the used nonce stands in the way
    replay = await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body)
    assert replay.status_code == 409 and "used already" in replay.json()["detail"], replay.text
    fresh_answer = passkey_body(request, authenticator, settings, "Seller Park", version.document_sha256)
    again = await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=fresh_answer)
    assert again.status_code == 409
    assert await count(sessions, Signature) == 0


async def test_an_expired_nonce_is_refused(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.agency_user)
    private, pem = ed25519_key()
    key = (await client.post("/api/signing-keys", headers=headers, json={"name": "System", "public_key": pem})).json()
    request = await signing_request(client, headers, contract_id)
    with clock.travel(clock.now() + signing_keys.NONCE_VALIDITY + timedelta(seconds=1)):
        late = await client.post(
            f"/api/contracts/{contract_id}/versions/1/signatures",
            headers=headers,
            json=ed25519_body(request, private, key["id"], "Buyer Kim", version.document_sha256),
        )
    assert late.status_code == 409 and "expired" in late.json()["detail"]
    assert await count(sessions, Signature) == 0


async def test_a_signing_request_for_another_document_is_refused(client, sessions, settings):
    parties = await contract_parties(sessions)
    first_id = await sent_contract(sessions, settings, parties)
    second_id = await sent_contract(sessions, settings, parties, quantity=3)
    first, second = await _version(sessions, first_id), await _version(sessions, second_id)
    assert first.document_sha256 != second.document_sha256
    headers = await bearer(sessions, parties.agency_user)
    private, pem = ed25519_key()
    key = (await client.post("/api/signing-keys", headers=headers, json={"name": "System", "public_key": pem})).json()
    request = await signing_request(client, headers, first_id)
    wrong = await client.post(
        f"/api/contracts/{second_id}/versions/1/signatures",
        headers=headers,
        json=ed25519_body(request, private, key["id"], "Buyer Kim", second.document_sha256),
    )
    assert wrong.status_code == 409 and "another document" in wrong.json()["detail"], wrong.text
    # a payload the client rewrote to name the other document does not carry the server's signature request
    forged = json.loads(request["payload"]) | {"document_sha256": second.document_sha256}
    request2 = await signing_request(client, headers, second_id)
    body = ed25519_body(
        {**request2, "payload": verify_signature.canonical(forged).decode()},
        private,
        key["id"],
        "Buyer Kim",
        second.document_sha256,
    )
    refused = await client.post(f"/api/contracts/{second_id}/versions/1/signatures", headers=headers, json=body)
    assert refused.status_code == 422 and "does not verify" in refused.json()["detail"]
    assert await count(sessions, Signature) == 0


async def test_a_removed_passkey_cannot_sign(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.provider_user)
    authenticator = SoftAuthenticator("EdDSA")
    key = await register_passkey(client, headers, settings, authenticator)
    assert key["algorithm"] == -8
    removed = await client.delete(f"/api/signing-keys/{key['id']}", headers=headers)
    assert removed.status_code == 204
    request = await signing_request(client, headers, contract_id)
    assert request["publicKey"]["allowCredentials"] == []
    refused = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=headers,
        json=passkey_body(request, authenticator, settings, "Seller Park", version.document_sha256),
    )
    assert refused.status_code == 422 and "removed" in refused.json()["detail"], refused.text
    assert await count(sessions, Signature) == 0
    assert "security.signing_failed" in await audit_actions(sessions)  # kept although the answer was an error
    assert (await client.delete(f"/api/signing-keys/{key['id']}", headers=headers)).status_code == 409


async def test_a_removed_ed25519_key_cannot_sign(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.agency_user)
    private, pem = ed25519_key()
    key = (await client.post("/api/signing-keys", headers=headers, json={"name": "System", "public_key": pem})).json()
    assert (await client.delete(f"/api/signing-keys/{key['id']}", headers=headers)).status_code == 204
    request = await signing_request(client, headers, contract_id)
    refused = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=headers,
        json=ed25519_body(request, private, key["id"], "Buyer Kim", version.document_sha256),
    )
    assert refused.status_code == 422 and "removed" in refused.json()["detail"]
    assert await count(sessions, Signature) == 0


async def test_another_users_key_cannot_sign_and_cannot_be_removed(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    provider_headers, agency_headers = (
        await bearer(sessions, parties.provider_user),
        await bearer(sessions, parties.agency_user),
    )
    private, pem = ed25519_key()
    key = (
        await client.post(
            "/api/signing-keys", headers=provider_headers, json={"name": "Seller system", "public_key": pem}
        )
    ).json()
    assert (await client.delete(f"/api/signing-keys/{key['id']}", headers=agency_headers)).status_code == 404
    request = await signing_request(client, agency_headers, contract_id)
    refused = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=agency_headers,
        json=ed25519_body(request, private, key["id"], "Buyer Kim", version.document_sha256),
    )
    assert refused.status_code == 422 and "not registered on your account" in refused.json()["detail"]


async def test_a_sign_count_that_does_not_grow_is_refused(client, sessions, settings):
    parties = await contract_parties(sessions)
    first_id = await sent_contract(sessions, settings, parties)
    second_id = await sent_contract(sessions, settings, parties, quantity=4)
    headers = await bearer(sessions, parties.provider_user)
    authenticator = SoftAuthenticator()
    await register_passkey(client, headers, settings, authenticator)
    for contract_id in (first_id,):
        request = await signing_request(client, headers, contract_id)
        sha = (await _version(sessions, contract_id)).document_sha256
        assert (
            await client.post(
                f"/api/contracts/{contract_id}/versions/1/signatures",
                headers=headers,
                json=passkey_body(request, authenticator, settings, "Seller Park", sha),
            )
        ).status_code == 201
    authenticator.sign_count = 0  # a clone of the passkey: its counter starts again
    request = await signing_request(client, headers, second_id)
    sha = (await _version(sessions, second_id)).document_sha256
    cloned = await client.post(
        f"/api/contracts/{second_id}/versions/1/signatures",
        headers=headers,
        json=passkey_body(request, authenticator, settings, "Seller Park", sha),
    )
    assert cloned.status_code == 422 and "sign count" in cloned.json()["detail"], cloned.text


async def test_an_answer_from_another_origin_is_refused(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.provider_user)
    authenticator = SoftAuthenticator()
    await register_passkey(client, headers, settings, authenticator)
    request = await signing_request(client, headers, contract_id)
    credential = authenticator.assert_(request["challenge"], "https://phishing.example", signing_keys.rp_id(settings))
    body = {
        "method": "webauthn",
        "nonce": request["nonce"],
        "credential": credential,
        "confirm_read": True,
        "signer_name": "Seller Park",
        "document_sha256": version.document_sha256,
    }
    refused = await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body)
    assert refused.status_code == 422 and "origin" in refused.json()["detail"]


async def test_a_registration_answering_another_challenge_is_refused(client, sessions, settings):
    parties = await contract_parties(sessions)
    headers = await bearer(sessions, parties.provider_user)
    options = (await client.post("/api/passkeys/options", headers=headers)).json()
    other = (await client.post("/api/passkeys/options", headers=headers)).json()
    credential = SoftAuthenticator().register(other["publicKey"], signing_keys.origin(settings))
    refused = await client.post(
        "/api/passkeys", headers=headers, json={"name": "Laptop", "nonce": options["nonce"], "credential": credential}
    )
    assert refused.status_code == 422 and "credential" in refused.json()["errors"]
    garbage = await client.post(
        "/api/passkeys", headers=headers, json={"name": "Laptop", "nonce": other["nonce"], "credential": {"id": "x"}}
    )
    assert garbage.status_code == 422
    assert await count(sessions, SigningKey) == 0


# --- the password, where the organisation allows it -----------------------------------------------------


async def test_wrong_passwords_at_signing_are_throttled_and_audited(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.provider_user)
    body = {
        "password": "not-the-password",
        "confirm_read": True,
        "signer_name": "Seller Park",
        "document_sha256": version.document_sha256,
    }
    statuses = [
        (
            await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body)
        ).status_code
        for _ in range(25)
    ]
    assert statuses[:5] == [422] * 5 and set(statuses[5:]) == {429}, statuses
    assert await count(sessions, LoginFailure, LoginFailure.account_key == parties.provider_user.email) == 5
    assert (await audit_actions(sessions)).count("security.signing_failed") == 5
    async with sessions() as session:
        event = await session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "security.signing_failed"))
    assert json.loads(event.summary)["email"] == parties.provider_user.email and json.loads(event.summary)["address"]
    # the right password is refused too while throttled, and so is signing in
    right = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json={**body, "password": PASSWORD}
    )
    assert right.status_code == 429
    assert await count(sessions, Signature) == 0


async def test_an_organisation_that_forbids_passwords_signs_only_with_keys_and_the_change_is_audited(
    client, sessions, settings
):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.agency_user)
    assert (await client.get("/api/organisation", headers=headers)).json()["password_signing"] is True
    changed = await client.put("/api/organisation/signing-policy", headers=headers, json={"password_signing": False})
    assert changed.status_code == 200 and changed.json() == {"password_signing": False}
    assert (await audit_actions(sessions)).count("organisation.signing_policy") == 1
    body = {
        "password": PASSWORD,
        "confirm_read": True,
        "signer_name": "Buyer Kim",
        "document_sha256": version.document_sha256,
    }
    refused = await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body)
    assert refused.status_code == 403 and "passkey" in refused.json()["detail"]
    request = await signing_request(client, headers, contract_id)
    assert request["password_allowed"] is False
    # the other party's organisation still allows it
    seller = await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=await bearer(sessions, parties.provider_user),
        json={**body, "signer_name": "Seller Park"},
    )
    assert seller.status_code == 201
    async with sessions() as session:
        assert (await session.get(Organisation, parties.agency.id)).password_signing is False


async def test_a_password_signature_bundle_says_it_carries_no_proof(client, sessions, settings, tmp_path):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.agency_user)
    body = {
        "password": PASSWORD,
        "confirm_read": True,
        "signer_name": "Buyer Kim",
        "document_sha256": version.document_sha256,
    }
    assert (
        await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body)
    ).status_code == 201
    bundle = await _evidence(client, headers, contract_id)
    assert bundle["method"] == "password"
    verdict = verify_signature.verify(bundle)
    assert verdict.status == verify_signature.NO_PROOF and "NO CRYPTOGRAPHIC PROOF" in verdict.summary()
    path = tmp_path / "password.json"
    path.write_text(json.dumps(bundle))
    assert verify_signature.main([str(path)]) == 2


async def test_an_other_organisation_cannot_read_a_signatures_evidence(client, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.agency_user)
    body = {
        "password": PASSWORD,
        "confirm_read": True,
        "signer_name": "Buyer Kim",
        "document_sha256": version.document_sha256,
    }
    signed = await client.post(f"/api/contracts/{contract_id}/versions/1/signatures", headers=headers, json=body)
    signature_id = signed.json()["signatures"][0]["id"]
    outsiders = await contract_parties(sessions)
    answer = await client.get(
        f"/api/contracts/{contract_id}/signatures/{signature_id}/evidence.json",
        headers=await bearer(sessions, outsiders.agency_user),
    )
    assert answer.status_code == 404
    other_contract = await sent_contract(sessions, settings, parties, quantity=2)
    mismatched = await client.get(
        f"/api/contracts/{other_contract}/signatures/{signature_id}/evidence.json", headers=headers
    )
    assert mismatched.status_code == 404


async def test_the_nonce_is_taken_once_even_by_two_takers(sessions):
    parties = await contract_parties(sessions)
    async with sessions() as session, session.begin():
        row = await signing_keys.issue_nonce(
            session, parties.agency_user.id, signing_keys.SIGN, lambda nonce: f"payload {nonce}"
        )
    async with sessions() as session, session.begin():
        taken = await signing_keys.take_nonce(session, parties.agency_user.id, signing_keys.SIGN, row.nonce)
        assert taken.payload == f"payload {row.nonce}"
    from market.errors import Conflict, NotFound

    async with sessions() as session, session.begin():
        with pytest.raises(Conflict):
            await signing_keys.take_nonce(session, parties.agency_user.id, signing_keys.SIGN, row.nonce)
    async with sessions() as session, session.begin():
        with pytest.raises(NotFound):  # another user's nonce is unknown to this one
            await signing_keys.take_nonce(session, parties.provider_user.id, signing_keys.SIGN, row.nonce)
    assert await count(sessions, SigningNonce, SigningNonce.used_at.is_not(None)) == 1


async def test_market_contracts_verify_signature_checks_a_bundle_with_no_database(client, sessions, settings, tmp_path):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    headers = await bearer(sessions, parties.agency_user)
    private, pem = ed25519_key()
    key = (await client.post("/api/signing-keys", headers=headers, json={"name": "System", "public_key": pem})).json()
    request = await signing_request(client, headers, contract_id)
    await client.post(
        f"/api/contracts/{contract_id}/versions/1/signatures",
        headers=headers,
        json=ed25519_body(request, private, key["id"], "Buyer Kim", version.document_sha256),
    )
    bundle = await _evidence(client, headers, contract_id)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(bundle))
    bad.write_text(json.dumps({**bundle, "document_sha256": "0" * 64}))
    # no database reachable, no data folder: the command needs neither
    environment = {
        "PATH": "/usr/bin:/bin",
        "MARKET_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
        "MARKET_DATA_DIR": str(tmp_path / "absent"),
    }
    verified = subprocess.run(
        [str(MARKET), "contracts", "verify-signature", str(good)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0 and "VERIFIED" in verified.stdout, verified.stdout + verified.stderr
    refused = subprocess.run(
        [str(MARKET), "contracts", "verify-signature", str(bad)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "DOES NOT VERIFY" in refused.stdout and "document_sha256" in refused.stdout
    assert not (tmp_path / "absent").exists()
