"""The standalone verifier (contracts/verify_signature.py) over many bundles: every honest bundle verifies, and a
change to any byte that was signed, or to what the bundle states in the open, makes it fail."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import verify_signature
from tests.softauthn import SoftAuthenticator, b64url, from_b64url

ORIGIN, RP_ID = "https://market.example.go.kr", "market.example.go.kr"
AUTHENTICATORS = {"ES256": SoftAuthenticator("ES256"), "EdDSA": SoftAuthenticator("EdDSA")}
PROGRAM_KEY = ed25519.Ed25519PrivateKey.generate()
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

facts = st.fixed_dictionaries(
    {
        "contract_id": st.integers(1, 10**9),
        "contract_number": st.from_regex(r"CT-20[0-9]{2}-[0-9]{5}", fullmatch=True),
        "version": st.integers(1, 500),
        "side": st.sampled_from(["agency", "provider"]),
        "document_sha256": st.binary(min_size=32, max_size=32).map(lambda data: data.hex()),
        "signer": st.emails(),
        "nonce": st.binary(min_size=32, max_size=32).map(b64url),
    }
)


def pem(private: Any) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def passkey_bundle(fact: dict[str, Any], algorithm: str) -> dict[str, Any]:
    authenticator = AUTHENTICATORS[algorithm]
    payload = verify_signature.canonical({"purpose": "contract-signature", **fact}).decode()
    answer = authenticator.assert_(b64url(hashlib.sha256(payload.encode()).digest()), ORIGIN, RP_ID)
    response = answer["response"]
    return {
        "method": "webauthn",
        **{key: fact[key] for key in verify_signature.BOUND_FIELDS},
        "payload": payload,
        "public_key": pem(authenticator.key),
        "algorithm": -7 if algorithm == "ES256" else -8,
        "credential_id": authenticator.id,
        "authenticator_data": response["authenticatorData"],
        "client_data_json": response["clientDataJSON"],
        "signature": response["signature"],
        "rp_id": RP_ID,
        "origin": ORIGIN,
    }


def program_bundle(fact: dict[str, Any]) -> dict[str, Any]:
    payload = verify_signature.canonical({"purpose": "contract-signature", **fact}).decode()
    return {
        "method": "ed25519",
        **{key: fact[key] for key in verify_signature.BOUND_FIELDS},
        "payload": payload,
        "public_key": pem(PROGRAM_KEY),
        "algorithm": -8,
        "signature": b64url(PROGRAM_KEY.sign(payload.encode())),
    }


def flip(text: str, position: int, bit: int) -> str:
    """`text` (base64url) with one bit of its bytes flipped."""
    data = bytearray(from_b64url(text))
    data[position % len(data)] ^= 1 << bit
    return b64url(bytes(data))


bundles = st.one_of(
    st.builds(passkey_bundle, facts, st.sampled_from(["ES256", "EdDSA"])),
    st.builds(program_bundle, facts),
)
quick = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@quick
@given(bundles)
def test_an_honest_bundle_verifies(bundle: dict[str, Any]) -> None:
    verdict = verify_signature.verify(json.loads(json.dumps(bundle)))
    assert verdict.ok, verdict.problems


@quick
@given(
    bundles,
    st.sampled_from(["signature", "authenticator_data", "client_data_json"]),
    st.integers(0, 10_000),
    st.integers(0, 7),
)
def test_a_flipped_bit_anywhere_that_was_signed_fails(
    bundle: dict[str, Any], part: str, position: int, bit: int
) -> None:
    if part not in bundle:
        part = "signature"
    tampered = {**bundle, part: flip(bundle[part], position, bit)}
    assert verify_signature.verify(tampered).status == verify_signature.FAILED


@quick
@given(bundles, st.integers(0, 10_000), st.characters(min_codepoint=32, max_codepoint=126))
def test_a_changed_payload_fails(bundle: dict[str, Any], position: int, character: str) -> None:
    payload = bundle["payload"]
    index = position % len(payload)
    if payload[index] == character:
        return
    tampered = {**bundle, "payload": payload[:index] + character + payload[index + 1 :]}
    assert verify_signature.verify(tampered).status == verify_signature.FAILED


@quick
@given(bundles, st.sampled_from(verify_signature.BOUND_FIELDS), facts)
def test_a_bundle_that_states_other_facts_than_it_signed_fails(
    bundle: dict[str, Any], name: str, other: dict[str, Any]
) -> None:
    if other[name] == bundle[name]:
        return
    assert verify_signature.verify({**bundle, name: other[name]}).status == verify_signature.FAILED


@quick
@given(facts)
def test_another_key_origin_or_relying_party_fails(fact: dict[str, Any]) -> None:
    bundle = passkey_bundle(fact, "ES256")
    assert not verify_signature.verify({**bundle, "public_key": pem(AUTHENTICATORS["EdDSA"].key), "algorithm": -8}).ok
    assert not verify_signature.verify({**bundle, "public_key": pem(SoftAuthenticator().key)}).ok
    assert not verify_signature.verify({**bundle, "origin": "https://phishing.example"}).ok
    assert not verify_signature.verify({**bundle, "rp_id": "phishing.example"}).ok


def test_an_assertion_without_the_user_present_or_of_a_registration_fails() -> None:
    authenticator = SoftAuthenticator()
    fact = {
        "contract_id": 1,
        "contract_number": "CT-2026-00001",
        "version": 1,
        "side": "agency",
        "document_sha256": "a" * 64,
        "signer": "a@b.kr",
        "nonce": "n",
    }
    payload = verify_signature.canonical({"purpose": "contract-signature", **fact}).decode()
    challenge = b64url(hashlib.sha256(payload.encode()).digest())
    base = {
        "method": "webauthn",
        **{key: fact[key] for key in verify_signature.BOUND_FIELDS},
        "payload": payload,
        "public_key": pem(authenticator.key),
        "algorithm": -7,
        "rp_id": RP_ID,
        "origin": ORIGIN,
    }

    def bundle(answer: dict[str, Any]) -> dict[str, Any]:
        response = answer["response"]
        return {
            **base,
            "authenticator_data": response["authenticatorData"],
            "client_data_json": response["clientDataJSON"],
            "signature": response["signature"],
        }

    assert verify_signature.verify(bundle(authenticator.assert_(challenge, ORIGIN, RP_ID))).ok
    absent = verify_signature.verify(bundle(authenticator.assert_(challenge, ORIGIN, RP_ID, flags=0)))
    assert not absent.ok and any("present" in problem for problem in absent.problems)
    created = verify_signature.verify(
        bundle(authenticator.assert_(challenge, ORIGIN, RP_ID, client_type="webauthn.create"))
    )
    assert not created.ok and any("webauthn.get" in problem for problem in created.problems)


def test_rs256_keys_verify_too_and_garbage_is_refused_not_raised() -> None:
    data = b"authenticator data and client data hash"
    signature = RSA_KEY.sign(data, padding.PKCS1v15(), hashes.SHA256())
    verify_signature.check_key_signature(RSA_KEY.public_key(), verify_signature.RS256, signature, data)
    for garbage in (
        [],
        "text",
        {},
        {"method": "webauthn"},
        {"method": "ed25519", "payload": "{", "public_key": "x"},
        {"method": "quantum"},
    ):
        assert verify_signature.verify(garbage).status == verify_signature.FAILED  # type: ignore[arg-type]
