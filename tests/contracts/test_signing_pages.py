"""The pages of passkeys and signing keys: the account page registers and removes them, the sign page signs with a
passkey (its script's requests made here as the script makes them), the contract page shows each signature's
verdict and offers its evidence, the organisation page holds the signing rule."""

from __future__ import annotations

import json

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from contracts import verify_signature
from contracts.models import Contract, ContractVersion, Signature
from market import signing_keys
from market.models import LoginFailure, SigningKey
from tests.contracts.factories import contract_parties, sent_contract
from tests.helpers import PASSWORD, audit_actions, count
from tests.softauthn import SoftAuthenticator


async def _version(sessions, contract_id: int) -> ContractVersion:
    async with sessions() as session:
        contract = await session.get(Contract, contract_id)
        return await session.get(ContractVersion, contract.current_version_id)


async def script_post(web, path: str, page: str):
    """What passkeys.js does: POST with the page's CSRF token in the X-CSRFToken header."""
    token = await web.csrf(page)
    return await web.client.post(path, headers={"X-CSRFToken": token, "Accept": "application/json"})


async def register_on_page(web, settings, authenticator: SoftAuthenticator, name: str = "Office laptop"):
    options = await script_post(web, "/account/passkeys/options", "/account")
    assert options.status_code == 201, options.text
    body = options.json()
    credential = authenticator.register(body["publicKey"], signing_keys.origin(settings))
    return await web.submit(
        "/account/passkeys",
        {"passkey_name": name, "nonce": body["nonce"], "credential": json.dumps(credential)},
        form_page="/account",
    )


async def test_a_passkey_is_registered_listed_and_removed_on_the_account_page(web, sessions, settings):
    parties = await contract_parties(sessions)
    await web.login(parties.provider_user.email)
    page = await web.client.get("/account")
    assert (
        "You have no passkeys." in page.text
        and 'src="/static/passkeys.js"' in page.text
        and "<script>" not in page.text
    )
    registered = await register_on_page(web, settings, SoftAuthenticator())
    assert registered.status_code == 303, registered.text
    page = await web.client.get("/account")
    assert "Office laptop" in page.text and "Never" in page.text
    async with sessions() as session:
        key = await session.scalar(sa.select(SigningKey))
    assert key.kind == "passkey" and key.user_id == parties.provider_user.id
    # a form whose passkey answer is missing re-renders with the field's error
    options = (await script_post(web, "/account/passkeys/options", "/account")).json()
    broken = await web.submit(
        "/account/passkeys",
        {"passkey_name": "Phone", "nonce": options["nonce"], "credential": "{}"},
        form_page="/account",
    )
    assert broken.status_code == 422 and 'id="error-credential"' in broken.text
    confirm = await web.client.get(f"/account/signing-keys/{key.id}/remove")
    assert confirm.status_code == 200 and "Office laptop" in confirm.text
    removed = await web.submit(
        f"/account/signing-keys/{key.id}/remove", form_page=f"/account/signing-keys/{key.id}/remove"
    )
    assert removed.status_code == 303
    assert "You have no passkeys." in (await web.client.get("/account")).text
    assert (await audit_actions(sessions)).count(
        "signing_key.register"
    ) == 1 and "signing_key.remove" in await audit_actions(sessions)


async def test_an_ed25519_key_is_registered_on_the_account_page_and_a_bad_one_re_renders(web, sessions, settings):
    parties = await contract_parties(sessions)
    await web.login(parties.agency_user.email)
    bad = await web.submit("/account/signing-keys", {"key_name": "System", "public_key": "hello"}, form_page="/account")
    assert bad.status_code == 422 and 'id="error-public_key"' in bad.text and "hello" in bad.text
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    good = await web.submit("/account/signing-keys", {"key_name": "System", "public_key": pem}, form_page="/account")
    assert good.status_code == 303
    assert "System" in (await web.client.get("/account")).text
    assert await count(sessions, SigningKey) == 1


async def test_the_sign_page_signs_with_a_passkey_and_the_contract_page_shows_the_verdict(web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    await web.login(parties.provider_user.email)
    authenticator = SoftAuthenticator()
    assert (await register_on_page(web, settings, authenticator)).status_code == 303
    sign_page = f"/contracts/{contract_id}/versions/1/sign"
    page = await web.client.get(sign_page)
    assert 'id="sign-with-passkey"' in page.text and 'name="password"' in page.text
    request = await script_post(web, f"/contracts/{contract_id}/versions/1/signing-request", sign_page)
    assert request.status_code == 201, request.text
    body = request.json()
    credential = authenticator.assert_(body["challenge"], signing_keys.origin(settings), signing_keys.rp_id(settings))
    signed = await web.submit(
        sign_page,
        {
            "method": "webauthn",
            "nonce": body["nonce"],
            "credential": json.dumps(credential),
            "confirm_read": "yes",
            "signer_name": "Seller Park",
            "document_sha256": version.document_sha256,
            "password": "",
        },
    )
    assert signed.status_code == 303, signed.text
    detail = await web.client.get(f"/contracts/{contract_id}")
    assert "Signed with a passkey: the signature verifies." in detail.text
    async with sessions() as session:
        signature = await session.scalar(sa.select(Signature))
    evidence = await web.client.get(f"/contracts/{contract_id}/signatures/{signature.id}/evidence.json")
    assert evidence.status_code == 200 and verify_signature.verify(evidence.json()).ok

    # evidence altered in the database no longer verifies, and the page says so
    tampered = dict(signature.evidence)
    tampered["signature"] = tampered["signature"][:-4] + (
        "AAAA" if not tampered["signature"].endswith("AAAA") else "BBBB"
    )
    async with sessions() as session, session.begin():
        await session.execute(sa.update(Signature).where(Signature.id == signature.id).values(evidence=tampered))
    detail = await web.client.get(f"/contracts/{contract_id}")
    assert "does NOT verify" in detail.text


async def test_a_password_signature_shows_it_carries_no_proof(web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    await web.login(parties.agency_user.email)
    signed = await web.submit(
        f"/contracts/{contract_id}/versions/1/sign",
        {
            "confirm_read": "yes",
            "signer_name": "Buyer Kim",
            "password": PASSWORD,
            "document_sha256": version.document_sha256,
        },
    )
    assert signed.status_code == 303
    assert (
        "Signed with the password: no cryptographic proof." in (await web.client.get(f"/contracts/{contract_id}")).text
    )


async def test_a_wrong_password_on_the_sign_page_is_counted_although_the_page_answers_422(web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    version = await _version(sessions, contract_id)
    await web.login(parties.agency_user.email)
    wrong = await web.submit(
        f"/contracts/{contract_id}/versions/1/sign",
        {
            "confirm_read": "yes",
            "signer_name": "Buyer Kim",
            "password": "wrong-wrong",
            "document_sha256": version.document_sha256,
        },
    )
    assert wrong.status_code == 422 and 'id="error-password"' in wrong.text
    assert await count(sessions, LoginFailure) == 1
    assert "security.signing_failed" in await audit_actions(sessions)


async def test_an_administrator_turns_password_signing_off_on_the_organisation_page(web, sessions, settings):
    parties = await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties)
    await web.login(parties.agency_user.email)
    page = await web.client.get("/organisation")
    assert 'name="password_signing"' in page.text and "checked" in page.text
    off = await web.submit("/organisation/signing-policy", {}, form_page="/organisation")  # the box unticked
    assert off.status_code == 303
    assert "only with a passkey or a signing key" in (await web.client.get("/organisation")).text
    sign_page = await web.client.get(f"/contracts/{contract_id}/versions/1/sign")
    assert 'name="password"' not in sign_page.text and "passkeys or signing keys only" in sign_page.text
    assert (await audit_actions(sessions)).count("organisation.signing_policy") == 1
    on = await web.submit("/organisation/signing-policy", {"password_signing": "yes"}, form_page="/organisation")
    assert on.status_code == 303 and (await audit_actions(sessions)).count("organisation.signing_policy") == 2


async def test_a_member_cannot_change_the_signing_rule(web, sessions, settings):
    parties = await contract_parties(sessions)
    member = await web.login_as("agency", role="member", organisation=parties.agency)
    assert member.role == "buyer"  # an agency's plain member
    page = await web.client.get("/organisation")
    assert 'action="/organisation/signing-policy"' not in page.text
    refused = await web.submit("/organisation/signing-policy", {}, form_page="/organisation")
    assert refused.status_code == 403
    assert "organisation.signing_policy" not in await audit_actions(sessions)
