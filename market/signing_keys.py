"""The keys a user signs contracts with, and the single-use nonces their signatures answer.

A passkey is registered in the browser (WebAuthn: `passkey_options`, then `register_passkey` with what
`navigator.credentials.create` answered); an Ed25519 public key is registered by a program's owner
(`register_ed25519`). The relying party is the marketplace's public address: its host is the RP id,
`MARKET_BASE_URL` the origin. A nonce is issued for one user and one purpose, expires after
`NONCE_VALIDITY`, and is taken exactly once (`take_nonce`), so a signature cannot be replayed.

Every change writes its audit event in the caller's transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import decode_credential_public_key, decoded_public_key_to_cryptography
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from market import audit
from market.auth import Principal
from market.database import changed_rows, utcnow
from market.errors import Conflict, Invalid, NotFound
from market.i18n import _
from market.models import SigningKey, SigningKeyKind, SigningNonce, User
from market.settings import Settings

NONCE_VALIDITY = timedelta(minutes=5)
REGISTER, SIGN = "passkey-register", "contract-sign"
ES256, EDDSA, RS256 = -7, -8, -257
ALGORITHMS = [COSEAlgorithmIdentifier(ES256), COSEAlgorithmIdentifier(EDDSA), COSEAlgorithmIdentifier(RS256)]
RP_NAME = "Cloud Service Marketplace"
# What a malformed answer from a browser (or a hostile client) raises while it is parsed and checked.
MALFORMED = (WebAuthnException, ValueError, KeyError, TypeError, AttributeError, IndexError, OverflowError)
MAX_CREDENTIAL_BYTES = 1000  # a passkey's whole registration or assertion, base64url and JSON, stays far below


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rp_id(settings: Settings) -> str:
    return urlsplit(settings.base_url).hostname or "localhost"


def origin(settings: Settings) -> str:
    parts = urlsplit(settings.base_url)
    return f"{parts.scheme}://{parts.netloc}"


# --- nonces -------------------------------------------------------------------------------------------


async def issue_nonce(
    session: AsyncSession, user_id: int, purpose: str, payload: Callable[[str], str] = lambda _nonce: ""
) -> SigningNonce:
    """A fresh nonce for `user_id`; `payload(nonce)` is the text to be signed, stored beside it."""
    nonce = secrets.token_urlsafe(32)
    row = SigningNonce(
        nonce=nonce, user_id=user_id, purpose=purpose, payload=payload(nonce), expires_at=utcnow() + NONCE_VALIDITY
    )
    session.add(row)
    await session.flush()
    return row


async def take_nonce(session: AsyncSession, user_id: int, purpose: str, nonce: str) -> SigningNonce:
    """The user's unexpired, unused nonce, now used; a second taker (even at the same moment) is refused."""
    row = await session.scalar(sa.select(SigningNonce).where(col(SigningNonce.nonce) == nonce[:64]))
    if row is None or row.user_id != user_id or row.purpose != purpose:
        raise NotFound(_("This signing request is unknown; ask for a new one."))
    now = utcnow()
    if row.used_at is not None:
        raise Conflict(_("This signing request was used already; a signature cannot be replayed. Ask for a new one."))
    if row.expires_at <= now:
        raise Conflict(_("This signing request has expired; ask for a new one."))
    taken = await changed_rows(
        session,
        sa.update(SigningNonce)
        .where(col(SigningNonce.id) == row.id, col(SigningNonce.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False),
    )
    if taken != 1:
        raise Conflict(_("This signing request was used already; a signature cannot be replayed. Ask for a new one."))
    row.used_at = now
    return row


# --- reading keys ---------------------------------------------------------------------------------------


async def list_keys(session: AsyncSession, user_id: int, *, include_removed: bool = False) -> list[SigningKey]:
    query = sa.select(SigningKey).where(col(SigningKey.user_id) == user_id)
    if not include_removed:
        query = query.where(col(SigningKey.removed_at).is_(None))
    return list(
        (await session.scalars(query.order_by(col(SigningKey.created_at).desc(), col(SigningKey.id).desc()))).all()
    )


async def own_key(session: AsyncSession, principal: Principal, key_id: int) -> SigningKey:
    key = await session.get(SigningKey, key_id)
    if key is None or key.user_id != principal.user_id:
        raise NotFound(_("No such signing key."))
    return key


def public_key_object(key: SigningKey) -> Any:
    """The key as a `cryptography` public key."""
    raw = from_b64url(key.public_key)
    if key.kind == SigningKeyKind.ed25519:
        return ed25519.Ed25519PublicKey.from_public_bytes(raw)
    return decoded_public_key_to_cryptography(decode_credential_public_key(raw))


def public_key_pem(key: SigningKey) -> str:
    return (
        public_key_object(key)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


# --- registering and removing -------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise Invalid(_("Please correct: %(fields)s.", fields="name"), errors={"name": _("This field is required.")})
    if len(name) > 80:
        raise Invalid(
            _("Please correct: %(fields)s.", fields="name"), errors={"name": _("At most %(n)s characters.", n=80)}
        )
    return name


async def _refuse_duplicate(session: AsyncSession, credential_id: str) -> None:
    if await session.scalar(
        sa.select(col(SigningKey.id)).where(
            col(SigningKey.credential_id) == credential_id, col(SigningKey.removed_at).is_(None)
        )
    ):
        raise Conflict(
            _("This key is registered already."), errors={"credential": _("This key is registered already.")}
        )


async def passkey_options(session: AsyncSession, settings: Settings, principal: Principal) -> dict[str, Any]:
    """What the browser passes to `navigator.credentials.create`, and the nonce that registration answers."""
    user = await session.get(User, principal.user_id)
    assert user is not None  # the signed-in user
    row = await issue_nonce(session, principal.user_id, REGISTER)
    existing = [key for key in await list_keys(session, principal.user_id) if key.kind == SigningKeyKind.passkey]
    options = generate_registration_options(
        rp_id=rp_id(settings),
        rp_name=RP_NAME,
        user_name=user.email,
        user_display_name=user.name,
        user_id=f"market-user-{user.id}".encode(),
        challenge=row.nonce.encode("ascii"),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=from_b64url(key.credential_id)) for key in existing],
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        supported_pub_key_algs=ALGORITHMS,
    )
    return {"nonce": row.nonce, "publicKey": json.loads(options_to_json(options))}


def credential_json(value: Any) -> dict[str, Any]:
    """A credential as JSON text (a form field) or an object (the API)."""
    if isinstance(value, str):
        if len(value) > 20 * MAX_CREDENTIAL_BYTES:
            raise Invalid(
                _("Please correct: %(fields)s.", fields="credential"),
                errors={"credential": _("The passkey's answer is too long.")},
            )
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        raise Invalid(
            _("Please correct: %(fields)s.", fields="credential"),
            errors={"credential": _("The passkey's answer is missing or unreadable.")},
        )
    return value


async def register_passkey(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    *,
    name: str,
    nonce: str,
    credential: Any,
) -> SigningKey:
    name = _check_name(name)
    answer = credential_json(credential)
    row = await take_nonce(session, principal.user_id, REGISTER, nonce)
    try:
        verified = verify_registration_response(
            credential=answer,
            expected_challenge=row.nonce.encode("ascii"),
            expected_rp_id=rp_id(settings),
            expected_origin=origin(settings),
            supported_pub_key_algs=ALGORITHMS,
        )
        algorithm = int(decode_credential_public_key(verified.credential_public_key).alg)
    except MALFORMED as exc:
        raise Invalid(
            _("The passkey could not be registered: %(reason)s", reason=str(exc)[:200]),
            errors={"credential": _("The passkey's answer does not verify.")},
        ) from None
    credential_id = b64url(verified.credential_id)
    await _refuse_duplicate(session, credential_id)
    key = SigningKey(
        user_id=principal.user_id,
        kind=SigningKeyKind.passkey,
        name=name,
        credential_id=credential_id,
        public_key=b64url(verified.credential_public_key),
        algorithm=algorithm,
        sign_count=verified.sign_count,
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session, principal, "signing_key.register", "signing_key", key.id, {"kind": key.kind, "name": name}
    )
    return key


def ed25519_raw(text: str) -> bytes:
    """The 32 raw bytes of an Ed25519 public key given as PEM, or base64 of the raw key or of its DER form."""
    text = str(text or "").strip()
    error = Invalid(
        _("Please correct: %(fields)s.", fields="public_key"),
        errors={"public_key": _("Give an Ed25519 public key: PEM, or the 32 raw bytes in base64.")},
    )
    try:
        if "BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            compact = "".join(text.split())
            data = base64.b64decode(
                compact.replace("-", "+").replace("_", "/") + "=" * (-len(compact) % 4), validate=True
            )
            key = (
                ed25519.Ed25519PublicKey.from_public_bytes(data)
                if len(data) == 32
                else serialization.load_der_public_key(data)
            )
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise error from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise error
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


async def register_ed25519(session: AsyncSession, principal: Principal, *, name: str, public_key: str) -> SigningKey:
    name = _check_name(name)
    raw = ed25519_raw(public_key)
    credential_id = b64url(hashlib.sha256(raw).digest())
    await _refuse_duplicate(session, credential_id)
    key = SigningKey(
        user_id=principal.user_id,
        kind=SigningKeyKind.ed25519,
        name=name,
        credential_id=credential_id,
        public_key=b64url(raw),
        algorithm=EDDSA,
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session, principal, "signing_key.register", "signing_key", key.id, {"kind": key.kind, "name": name}
    )
    return key


async def remove_key(session: AsyncSession, principal: Principal, key_id: int) -> SigningKey:
    key = await own_key(session, principal, key_id)
    if key.removed_at is not None:
        raise Conflict(_("The key “%(name)s” was removed already.", name=key.name))
    key.removed_at = utcnow()
    await audit.record(
        session, principal, "signing_key.remove", "signing_key", key.id, {"kind": key.kind, "name": key.name}
    )
    return key


# --- signing ----------------------------------------------------------------------------------------------


def authentication_options(settings: Settings, challenge: bytes, keys: list[SigningKey]) -> dict[str, Any]:
    """What the browser passes to `navigator.credentials.get` to sign `challenge` with one of `keys`."""
    options = generate_authentication_options(
        rp_id=rp_id(settings),
        challenge=challenge,
        user_verification=UserVerificationRequirement.PREFERRED,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=from_b64url(key.credential_id))
            for key in keys
            if key.kind == SigningKeyKind.passkey
        ],
    )
    return json.loads(options_to_json(options))


async def usable_key(
    session: AsyncSession, user_id: int, *, kind: str, credential_id: str | None = None, key_id: int | None = None
) -> SigningKey:
    """One of the user's keys that has not been removed, by credential id (passkeys) or row id (signing keys)."""
    query = sa.select(SigningKey).where(col(SigningKey.user_id) == user_id, col(SigningKey.kind) == kind)
    query = (
        query.where(col(SigningKey.credential_id) == credential_id)
        if credential_id is not None
        else query.where(col(SigningKey.id) == key_id)
    )
    key = (await session.scalars(query.order_by(col(SigningKey.id).desc()))).first()
    if key is None:
        raise Invalid(
            _("This key is not registered on your account."),
            errors={"credential": _("This key is not registered on your account.")},
        )
    if key.removed_at is not None:
        raise Invalid(
            _("The key “%(name)s” was removed from your account; it can no longer sign.", name=key.name),
            errors={"credential": _("This key was removed.")},
        )
    return key


def verify_assertion(settings: Settings, key: SigningKey, answer: dict[str, Any], challenge: bytes) -> int:
    """Check a passkey's answer to `challenge`; its new sign count (which must have grown, when counted)."""
    try:
        verified = verify_authentication_response(
            credential=answer,
            expected_challenge=challenge,
            expected_rp_id=rp_id(settings),
            expected_origin=origin(settings),
            credential_public_key=from_b64url(key.public_key),
            credential_current_sign_count=key.sign_count,
        )
    except MALFORMED as exc:
        raise Invalid(
            _("The passkey's signature does not verify: %(reason)s", reason=str(exc)[:200]),
            errors={"credential": _("The passkey's signature does not verify.")},
        ) from None
    return verified.new_sign_count
