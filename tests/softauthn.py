"""A software authenticator: what a browser and a passkey answer, made with `cryptography` (attestation "none").

    authenticator = SoftAuthenticator()              # ES256 (P-256); SoftAuthenticator("EdDSA") for Ed25519
    credential = authenticator.register(options["publicKey"], origin)   # for POST /api/passkeys
    answer = authenticator.assert_(challenge_b64url, origin, rp_id)     # for a signature with method "webauthn"

The sign count grows by one at every assertion, as a hardware authenticator's does; `sign_count` may be set back
to play a cloned authenticator.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    def __init__(self, algorithm: str = "ES256") -> None:
        self.algorithm = algorithm
        self.key: Any = (
            ec.generate_private_key(ec.SECP256R1()) if algorithm == "ES256" else ed25519.Ed25519PrivateKey.generate()
        )
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def cose_key(self) -> bytes:
        public = self.key.public_key()
        if self.algorithm == "ES256":
            numbers = public.public_numbers()
            return cbor2.dumps(
                {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
            )
        from cryptography.hazmat.primitives import serialization

        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cbor2.dumps({1: 1, 3: -8, -1: 6, -2: raw})

    def _sign(self, data: bytes) -> bytes:
        if self.algorithm == "ES256":
            return self.key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self.key.sign(data)

    def register(self, options: dict[str, Any], origin: str) -> dict[str, Any]:
        """The answer of `navigator.credentials.create` to the server's options."""
        rp_id = options["rp"]["id"]
        client_data = json.dumps(
            {"type": "webauthn.create", "challenge": options["challenge"], "origin": origin, "crossOrigin": False}
        ).encode()
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id + self.cose_key()
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([UP | UV | AT])
            + self.sign_count.to_bytes(4, "big")
            + attested
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
        }

    def assert_(
        self, challenge: str, origin: str, rp_id: str, *, flags: int = UP | UV, client_type: str = "webauthn.get"
    ) -> dict[str, Any]:
        """The answer of `navigator.credentials.get`: `challenge` (base64url) signed with this passkey."""
        self.sign_count += 1
        client_data = json.dumps(
            {"type": client_type, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + self.sign_count.to_bytes(4, "big")
        signature = self._sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": None,
            },
        }
