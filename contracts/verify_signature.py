"""Check a contract signature's evidence bundle, with no database and no network.

    python contracts/verify_signature.py bundle.json [--document contract.html]

A bundle (the contract page's "Evidence (JSON)" link) holds what the signer's key signed (`payload`: compact,
sorted JSON naming the contract, the version, the side, the document's SHA-256 and a single-use nonce), the
public key (PEM) and the signature. This file is the whole check: the Python standard library and the
`cryptography` package, nothing else, so anyone can read it and run it.

- method "webauthn" (a passkey): the browser's client data must say `webauthn.get`, carry the challenge
  base64url(SHA-256(payload)) and the bundle's origin; the authenticator data must start with SHA-256 of the
  relying party id and have the user-present flag; the signature must verify over
  authenticatorData || SHA-256(clientDataJSON) with the public key (ES256, EdDSA or RS256).
- method "ed25519" (a program's registered key): the signature must verify over the payload's bytes.
- method "password": the signer re-entered a password; nothing here can be checked afterwards.

Exit status: 0 verified, 1 does not verify, 2 no cryptographic proof (password).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

VERIFIED, FAILED, NO_PROOF = "verified", "failed", "no-proof"
ES256, EDDSA, RS256 = -7, -8, -257  # COSE algorithm numbers
USER_PRESENT = 0x01
# The payload's fields that the bundle also states in the open: they must be the ones that were signed.
BOUND_FIELDS = ("contract_id", "contract_number", "version", "side", "document_sha256")


@dataclass
class Verdict:
    status: str
    method: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == VERIFIED

    @property
    def unproven(self) -> bool:
        """Signed by re-entering a password: there is nothing to check."""
        return self.status == NO_PROOF

    def summary(self) -> str:
        if self.status == VERIFIED:
            return f"VERIFIED: the {self.method} signature is valid for the payload it carries."
        if self.status == NO_PROOF:
            return "NO CRYPTOGRAPHIC PROOF: this signature was made by re-entering a password; nothing in it can be checked."
        return "DOES NOT VERIFY: " + "; ".join(self.problems)


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_text(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def canonical(payload: dict[str, Any]) -> bytes:
    """The one byte form of a payload: compact JSON with sorted keys, ASCII only."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def check_key_signature(public_key: Any, algorithm: int, signature: bytes, data: bytes) -> None:
    """Raises InvalidSignature (or ValueError for a key that does not fit the algorithm)."""
    if (
        algorithm == ES256
        and isinstance(public_key, ec.EllipticCurvePublicKey)
        and public_key.curve.name == "secp256r1"
    ):
        public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif algorithm == EDDSA and isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, data)
    elif algorithm == RS256 and isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"the key does not fit algorithm {algorithm}")


def verify(bundle: dict[str, Any], document: bytes | None = None) -> Verdict:
    """The verdict on one bundle; `document`, when given, must be the document that was signed."""
    if not isinstance(bundle, dict):
        return Verdict(FAILED, "", ["the bundle is not a JSON object"])
    method = str(bundle.get("method", ""))
    if method == "password":
        return Verdict(NO_PROOF, method)
    if method not in ("webauthn", "ed25519"):
        return Verdict(FAILED, method, [f"unknown method {method!r}"])
    problems: list[str] = []
    try:
        payload_text = str(bundle["payload"])
        payload = json.loads(payload_text)
        signed = payload_text.encode("utf-8")
        if canonical(payload) != signed:
            problems.append("the payload is not in canonical form")
        for name in BOUND_FIELDS:
            if bundle.get(name) != payload.get(name):
                problems.append(f"the bundle's {name} is not the signed one")
        if document is not None and hashlib.sha256(document).hexdigest() != payload.get("document_sha256"):
            problems.append("the document given is not the signed document")
        public_key = serialization.load_pem_public_key(str(bundle["public_key"]).encode("ascii"))
        algorithm = int(bundle["algorithm"])
        signature = b64url(bundle["signature"])
        if method == "ed25519":
            data = signed
        else:
            client_data_json = b64url(bundle["client_data_json"])
            authenticator_data = b64url(bundle["authenticator_data"])
            client_data = json.loads(client_data_json)
            if client_data.get("type") != "webauthn.get":
                problems.append("the client data is not of an assertion (webauthn.get)")
            if client_data.get("challenge") != b64url_text(hashlib.sha256(signed).digest()):
                problems.append("the challenge is not SHA-256 of the payload")
            if client_data.get("origin") != bundle.get("origin"):
                problems.append("the origin is not the bundle's origin")
            rp_id = str(bundle.get("rp_id", ""))
            host = urlsplit(str(bundle.get("origin", ""))).hostname or ""
            if not rp_id or not (host == rp_id or host.endswith("." + rp_id)):
                problems.append("the relying party id does not belong to the origin")
            if authenticator_data[:32] != hashlib.sha256(rp_id.encode("utf-8")).digest():
                problems.append("the authenticator data is for another relying party")
            if len(authenticator_data) < 37 or not authenticator_data[32] & USER_PRESENT:
                problems.append("the authenticator did not see the user present")
            data = authenticator_data + hashlib.sha256(client_data_json).digest()
        check_key_signature(public_key, algorithm, signature, data)
    except InvalidSignature:
        problems.append("the signature does not verify with the public key")
    except (
        KeyError,
        TypeError,
        ValueError,
        UnicodeError,
        AttributeError,
    ) as exc:  # a bundle with a part missing or malformed
        problems.append(f"the bundle cannot be read ({type(exc).__name__}: {exc})")
    return Verdict(FAILED if problems else VERIFIED, method, problems)


def exit_code(verdict: Verdict) -> int:
    return {VERIFIED: 0, FAILED: 1, NO_PROOF: 2}[verdict.status]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a contract signature's evidence bundle.")
    parser.add_argument("bundle", help="the evidence bundle (JSON)")
    parser.add_argument("--document", help="the signed document, to check it is the one the signature names")
    arguments = parser.parse_args(argv)
    with open(arguments.bundle, "rb") as handle:
        bundle = json.load(handle)
    document = None
    if arguments.document:
        with open(arguments.document, "rb") as handle:
            document = handle.read()
    verdict = verify(bundle, document)
    print(verdict.summary())
    return exit_code(verdict)


if __name__ == "__main__":
    sys.exit(main())
