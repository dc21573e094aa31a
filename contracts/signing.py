"""Signing a sent version: exactly once per side, on exactly the stored document.

The signer confirms they read the document, types their name, names the fingerprint of the document they were
shown, and proves who they are by one of three methods:

- a passkey (`webauthn`) or a registered Ed25519 key (`ed25519`): the signer first asks for a signing request
  (`signing_request`), whose canonical payload names the contract, the version, the side, the document's SHA-256
  and a single-use nonce; the passkey signs SHA-256 of that payload as its WebAuthn challenge, the Ed25519 key the
  payload's bytes. The payload and everything that checks the signature are kept with it (`contracts.evidence`
  hands them out as a bundle that `contracts/verify_signature.py` checks with no database);
- the password again (`password`), where the organisation's administrator still allows it. A wrong password
  counts towards the sign-in throttle and is audited; that record is kept although the answer is an error
  (`SigningRefused`: the controller commits it before answering).

The contract row is locked first The contract row is locked first (on PostgreSQL; SQLite's
write lock is the transaction itself), so two signatures arriving together are taken one after the other:
the second of the same side finds the first and gets 409; the unique (version, side) constraint backs this
up across processes. When both sides have signed, the version binds: the contract is signed (or active from
its start date), or an amendment replaces the text in force.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from contracts import documents, lifecycle, workflow
from contracts.authority import check_signing_authority
from contracts.models import Contract, ContractStatus, ContractVersion, Signature, VersionKind, VersionState
from contracts.schemas import SignInput
from contracts.verify_signature import canonical
from contracts.views import get_contract, side_of, version_of
from market import audit, clock, signing_keys
from market.auth import Principal, check_login_allowed, record_login_failure
from market.database import row_id, utcnow
from market.errors import Conflict, Forbidden, Invalid, NotFound
from market.formatting import day
from market.i18n import _
from market.models import Organisation, SigningKey, SigningKeyKind, User
from market.security import verify_password
from market.settings import Settings, configured

C, V = ContractStatus, VersionState


def _names_match(typed: str, name: str) -> bool:
    return " ".join(typed.split()).casefold() == " ".join(name.split()).casefold()


class SigningRefused(Invalid):
    """The signer's proof failed. Its record (an audit event, a counted sign-in failure) is kept: the controller
    commits before answering, since an error answer rolls the request's transaction back."""


@dataclass(frozen=True)
class Proof:
    method: str
    payload: str = ""
    key: SigningKey | None = None
    evidence: dict[str, Any] | None = None


def signing_payload(contract: Contract, version: ContractVersion, side: str, signer: str, nonce: str) -> str:
    """The exact text a key signs: compact, sorted JSON of what is signed and a single-use nonce."""
    return canonical(
        {
            "purpose": "contract-signature",
            "contract_id": contract.id,
            "contract_number": contract.number,
            "version": version.number,
            "side": side,
            "document_sha256": version.document_sha256,
            "signer": signer,
            "nonce": nonce,
        }
    ).decode("ascii")


def challenge_of(payload: str) -> bytes:
    """A passkey's WebAuthn challenge: SHA-256 of the payload."""
    return hashlib.sha256(payload.encode("utf-8")).digest()


async def _signable(
    session: AsyncSession, actor: Principal, contract_id: int, version_number: int, today: date, *, for_update: bool
) -> tuple[Contract, ContractVersion, str]:
    """The contract, its version waiting for this side's signature, and the side; refused otherwise."""
    contract = await get_contract(session, actor, contract_id, for_update=for_update)
    side = side_of(actor, contract)
    assert side is not None  # get_contract admits only the contract's parties
    version = await version_of(session, contract, version_number)
    if version.id != contract.current_version_id or version.state == V.superseded:
        raise Conflict(
            _("Version %(n)s has been replaced by a later version; it can no longer be signed.", n=version.number)
        )
    if version.state != V.sent:
        raise Conflict(
            _(
                "Version %(n)s is not waiting for signatures (it is %(state)s).",
                n=version.number,
                state=workflow.VERSION.label(version.state).lower(),
            )
        )
    if version.ends_on < today:  # binding it now would start and end the contract in the same moment
        raise Conflict(
            _(
                "The term of version %(n)s ended on %(date)s: it can no longer be signed. The agency can withdraw it and send it again with new dates.",
                n=version.number,
                date=day(version.ends_on),
            )
        )
    if version.kind == VersionKind.amendment and contract.status not in workflow.IN_FORCE:
        raise Conflict(
            _(
                "The contract is no longer in force (it is %(status)s): its amendment cannot be signed.",
                status=workflow.CONTRACT.label(contract.status).lower(),
            )
        )
    await check_signing_authority(session, actor, contract, version)
    if await session.scalar(
        sa.select(col(Signature.id)).where(col(Signature.version_id) == version.id, col(Signature.side) == side)
    ):
        raise Conflict(_("Your organisation has already signed version %(n)s.", n=version.number))
    return contract, version, side


async def password_allowed(session: AsyncSession, organisation_id: int) -> bool:
    organisation = await session.get(Organisation, organisation_id)
    return bool(organisation and organisation.password_signing)


async def signing_request(
    session: AsyncSession,
    actor: Principal,
    settings: Settings,
    contract_id: int,
    version_number: int,
    *,
    today: date | None = None,
) -> dict[str, Any]:
    """A single-use payload for the actor to sign this version with, and the options a browser's passkey needs."""
    contract, version, side = await _signable(
        session, actor, contract_id, version_number, today or clock.today(), for_update=False
    )
    row = await signing_keys.issue_nonce(
        session,
        actor.user_id,
        signing_keys.SIGN,
        lambda nonce: signing_payload(contract, version, side, actor.email, nonce),
    )
    keys = await signing_keys.list_keys(session, actor.user_id)
    challenge = challenge_of(row.payload)
    return {
        "nonce": row.nonce,
        "payload": row.payload,
        "expires_at": row.expires_at.isoformat(),
        "challenge": signing_keys.b64url(challenge),
        "password_allowed": await password_allowed(session, actor.organisation_id),
        "passkeys": sum(1 for key in keys if key.kind == SigningKeyKind.passkey),
        "signing_keys": [{"id": key.id, "name": key.name} for key in keys if key.kind == SigningKeyKind.ed25519],
        "publicKey": signing_keys.authentication_options(settings, challenge, keys),
    }


async def sign(
    session: AsyncSession,
    actor: Principal,
    store: documents.DocumentStore,
    contract_id: int,
    version_number: int,
    data: SignInput,
    *,
    settings: Settings | None = None,
    address: str = "",
    user_agent: str = "",
    today: date | None = None,
) -> Signature:
    settings = (
        settings or configured()
    )  # the process's settings (demo loader, tests): its base URL is the relying party
    today = today or clock.today()
    contract, version, side = await _signable(session, actor, contract_id, version_number, today, for_update=True)

    user = await session.get(User, actor.user_id)
    if user is None:
        raise NotFound(_("No such user."))
    missing = data.missing_proof()
    if missing:
        raise Invalid(
            _("Please correct: %(fields)s.", fields=", ".join(missing)),
            errors={name: _("This field is required.") for name in missing},
        )
    if not _names_match(data.signer_name, user.name):
        raise Invalid(
            _("Please correct: %(fields)s.", fields="signer_name"),
            errors={"signer_name": _("Type your name as it is on your account: %(name)s.", name=user.name)},
        )
    if data.document_sha256 != version.document_sha256:
        raise Conflict(
            _("The document you were shown is not the document of this version; read it again before signing.")
        )
    stored = await documents.check(store, version.document_key or "", version.document_sha256 or "")
    if not stored.intact:
        raise Conflict(
            _("The stored document no longer matches its fingerprint; it cannot be signed. The operator has been told.")
        )
    proof = await _proof(session, settings, actor, user, contract, version, side, data, address)
    signature = Signature(
        contract_id=row_id(contract),
        version_id=row_id(version),
        side=side,
        user_id=actor.user_id,
        organisation_id=actor.organisation_id,
        signer_name=data.signer_name,
        signer_role=user.role,
        document_sha256=version.document_sha256,
        address=address[:64],
        user_agent=user_agent[:500],
        signed_at=utcnow(),
        method=proof.method,
        signing_key_id=proof.key.id if proof.key else None,
        payload=proof.payload,
        evidence=proof.evidence,
    )
    try:
        async with session.begin_nested():
            session.add(signature)
            await session.flush()
    except IntegrityError:
        raise Conflict(_("Your organisation has already signed version %(n)s.", n=version.number)) from None
    await audit.record(
        session,
        actor,
        "contract.sign",
        "contract",
        contract.id,
        {
            "version": version.number,
            "side": side,
            "document_sha256": version.document_sha256,
            "signer_name": data.signer_name,
            "method": proof.method,
            **({"signing_key_id": proof.key.id} if proof.key else {}),
        },
    )
    sides = set(
        (await session.scalars(sa.select(col(Signature.side)).where(col(Signature.version_id) == version.id))).all()
    )
    if sides == {"agency", "provider"}:
        await lifecycle.signed_by_both(session, actor, contract, version, today)
    return signature


async def _refuse(
    session: AsyncSession,
    actor: Principal,
    contract: Contract,
    version: ContractVersion,
    method: str,
    address: str,
    error: Invalid,
) -> SigningRefused:
    """The audit record of a failed proof, and the error to raise (its controller keeps the record)."""
    await audit.record(
        session,
        actor,
        "security.signing_failed",
        "contract",
        contract.id,
        {
            "version": version.number,
            "method": method,
            "email": actor.email,
            "address": address,
            "reason": error.detail[:300],
        },
    )
    return SigningRefused(error.detail, errors=error.errors)


async def _proof(
    session: AsyncSession,
    settings: Settings,
    actor: Principal,
    user: User,
    contract: Contract,
    version: ContractVersion,
    side: str,
    data: SignInput,
    address: str,
) -> Proof:
    if data.method == "password":
        if not await password_allowed(session, actor.organisation_id):
            raise Forbidden(
                _(
                    "Your organisation's administrator requires a passkey or a signing key to sign; the password is not accepted."
                )
            )
        await check_login_allowed(session, settings, user.email, address)
        # argon2 in a worker thread (it releases the GIL): on the event loop it would stall every other request of
        # this process for its whole cost, a transaction holding the audit chain's lock among them
        if not await asyncio.to_thread(verify_password, user.password_hash, data.password):
            await record_login_failure(session, user.email, address)
            raise await _refuse(
                session,
                actor,
                contract,
                version,
                "password",
                address,
                Invalid(
                    _("Please correct: %(fields)s.", fields="password"),
                    errors={"password": _("The password is not correct.")},
                ),
            )
        return Proof("password")
    row = await signing_keys.take_nonce(session, actor.user_id, signing_keys.SIGN, data.nonce)
    expected = signing_payload(contract, version, side, actor.email, row.nonce)
    if row.payload != expected:
        raise Conflict(_("This signing request was made for another document, version or side; ask for a new one."))
    try:
        if data.method == "webauthn":
            answer = signing_keys.credential_json(data.credential)
            key = await signing_keys.usable_key(
                session, actor.user_id, kind=SigningKeyKind.passkey, credential_id=str(answer.get("id", ""))[:1400]
            )
            key.sign_count = signing_keys.verify_assertion(settings, key, answer, challenge_of(row.payload))
            response = answer.get("response")
            if not isinstance(response, dict):
                response = {}
            evidence: dict[str, Any] = {
                "authenticator_data": str(response.get("authenticatorData", "")),
                "client_data_json": str(response.get("clientDataJSON", "")),
                "signature": str(response.get("signature", "")),
                "rp_id": signing_keys.rp_id(settings),
                "origin": signing_keys.origin(settings),
            }
        else:
            key = await signing_keys.usable_key(session, actor.user_id, kind=SigningKeyKind.ed25519, key_id=data.key_id)
            signature = _signature_bytes(data.signature)
            try:
                signing_keys.public_key_object(key).verify(signature, row.payload.encode("utf-8"))
            except InvalidSignature:
                raise Invalid(
                    _("The signature does not verify with the key “%(name)s”.", name=key.name),
                    errors={"signature": _("The signature does not verify.")},
                ) from None
            evidence = {"signature": signing_keys.b64url(signature)}
    except Invalid as exc:
        raise await _refuse(session, actor, contract, version, data.method, address, exc) from None
    key.last_used_at = utcnow()
    evidence.update(
        credential_id=key.credential_id, algorithm=key.algorithm, public_key=signing_keys.public_key_pem(key)
    )
    return Proof(data.method, row.payload, key, evidence)


def _signature_bytes(text: str) -> bytes:
    try:
        value = base64.urlsafe_b64decode(
            text.replace("+", "-").replace("/", "_").strip() + "=" * (-len(text.strip()) % 4)
        )
    except (ValueError, binascii.Error):
        value = b""
    if len(value) != 64:
        raise Invalid(
            _("Please correct: %(fields)s.", fields="signature"),
            errors={"signature": _("An Ed25519 signature is 64 bytes, in base64.")},
        )
    return value


async def signer_page_data(
    session: AsyncSession, actor: Principal, contract_id: int, version_number: int
) -> tuple[object, ContractVersion]:
    contract = await get_contract(session, actor, contract_id)
    version = await version_of(session, contract, version_number)
    if version.document_key is None:
        raise NotFound(_("This version has no document yet: it has not been sent."))
    return contract, version
