"""Signing a sent version: exactly once per side, on exactly the stored document.

The signer re-enters their password, confirms they read the document, types their name, and names the
fingerprint of the document they were shown. The contract row is locked first (on PostgreSQL; SQLite's
write lock is the transaction itself), so two signatures arriving together are taken one after the other:
the second of the same side finds the first and gets 409; the unique (version, side) constraint backs this
up across processes. When both sides have signed, the version binds: the contract is signed (or active from
its start date), or an amendment replaces the text in force.
"""

from __future__ import annotations

import asyncio
from datetime import date

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import documents, workflow
from contracts.authority import check_signing_authority
from contracts.models import ContractStatus, ContractVersion, Signature, VersionKind, VersionState
from contracts.schemas import SignInput
from contracts.service import get_contract, side_of, version_of
from market import clock
from market import audit, hooks
from market.auth import Principal
from market.database import utcnow
from market.errors import Conflict, Invalid, NotFound
from market.i18n import _
from market.models import User
from market.security import verify_password

C, V = ContractStatus, VersionState


def _names_match(typed: str, name: str) -> bool:
    return " ".join(typed.split()).casefold() == " ".join(name.split()).casefold()


async def sign(
    session: AsyncSession, actor: Principal, store: documents.DocumentStore, contract_id: int, version_number: int,
    data: SignInput, *, address: str = "", user_agent: str = "", today: date | None = None,
) -> Signature:
    today = today or clock.today()
    contract = await get_contract(session, actor, contract_id, for_update=True)
    side = side_of(actor, contract)
    version = await version_of(session, contract, version_number)
    if version.id != contract.current_version_id or version.state == V.superseded:
        raise Conflict(_("Version %(n)s has been replaced by a later version; it can no longer be signed.", n=version.number))
    if version.state != V.sent:
        raise Conflict(_("Version %(n)s is not waiting for signatures (it is %(state)s).", n=version.number, state=version.state))
    if version.ends_on < today:  # binding it now would start and end the contract in the same moment
        raise Conflict(_("The term of version %(n)s ended on %(date)s: it can no longer be signed. The agency can withdraw it and send it again with new dates.",
                         n=version.number, date=version.ends_on.isoformat()))
    if version.kind == VersionKind.amendment and contract.status not in workflow.IN_FORCE:
        raise Conflict(_("The contract is no longer in force (it is %(status)s): its amendment cannot be signed.", status=contract.status))
    await check_signing_authority(session, actor, contract, version)
    user = await session.get(User, actor.user_id)
    # argon2 in a worker thread (it releases the GIL): on the event loop it would stall every other request of
    # this process for its whole cost, a transaction holding the audit chain's lock among them
    if user is None or not await asyncio.to_thread(verify_password, user.password_hash, data.password):
        raise Invalid(_("Please correct: %(fields)s.", fields="password"), errors={"password": _("The password is not correct.")})
    if not _names_match(data.signer_name, user.name):
        raise Invalid(_("Please correct: %(fields)s.", fields="signer_name"),
                      errors={"signer_name": _("Type your name as it is on your account: %(name)s.", name=user.name)})
    if data.document_sha256 != version.document_sha256:
        raise Conflict(_("The document you were shown is not the document of this version; read it again before signing."))
    stored = await documents.check(store, version.document_key or "", version.document_sha256 or "")
    if not stored.intact:
        raise Conflict(_("The stored document no longer matches its fingerprint; it cannot be signed. The operator has been told."))
    if await session.scalar(sa.select(Signature.id).where(Signature.version_id == version.id, Signature.side == side)):
        raise Conflict(_("Your organisation has already signed version %(n)s.", n=version.number))
    signature = Signature(
        contract_id=contract.id, version_id=version.id, side=side, user_id=actor.user_id, organisation_id=actor.organisation_id,  # type: ignore[arg-type]
        signer_name=data.signer_name, signer_role=user.role, document_sha256=version.document_sha256,  # type: ignore[arg-type]
        address=address[:64], user_agent=user_agent[:500], signed_at=utcnow(),
    )
    try:
        async with session.begin_nested():
            session.add(signature)
            await session.flush()
    except IntegrityError:
        raise Conflict(_("Your organisation has already signed version %(n)s.", n=version.number)) from None
    await audit.record(session, actor, "contract.sign", "contract", contract.id,
                       {"version": version.number, "side": side, "document_sha256": version.document_sha256, "signer_name": data.signer_name})
    sides = set((await session.scalars(sa.select(Signature.side).where(Signature.version_id == version.id))).all())
    if sides == {"agency", "provider"}:
        await _binding(session, actor, contract, version, today)
    return signature


async def _binding(session: AsyncSession, actor: Principal, contract, version: ContractVersion, today: date) -> None:  # type: ignore[no-untyped-def]
    """Both signatures are on the version: it is the text in force from now."""
    workflow.check(workflow.VERSION_TRANSITIONS, version.state, V.signed, _("The version"))
    version.state = V.signed
    version.signed_at = utcnow()
    previous_id = contract.signed_version_id
    if previous_id is not None:
        previous = await session.get(ContractVersion, previous_id)
        if previous is not None:
            workflow.check(workflow.VERSION_TRANSITIONS, previous.state, V.superseded, _("The version"))
            previous.state = V.superseded
    contract.signed_version_id = version.id
    contract.updated_at = utcnow()
    if version.kind == VersionKind.amendment:
        await session.flush()
        await audit.record(session, actor, "contract.amendment_signed", "contract", contract.id, {"version": version.number})
        await hooks.emit("contract.amended", session, contract_id=contract.id, version_id=version.id)
        return
    target = C.active if version.starts_on <= today else C.signed
    workflow.check(workflow.CONTRACT_TRANSITIONS, contract.status, target, _("The contract"))
    contract.status = target
    await session.flush()
    await audit.record(session, actor, "contract.signed", "contract", contract.id, {"version": version.number, "status": target})
    await hooks.emit("contract.signed", session, contract_id=contract.id, version_id=version.id)
    if target == C.active:
        await hooks.emit("contract.started", session, contract_id=contract.id)


async def signer_page_data(session: AsyncSession, actor: Principal, contract_id: int, version_number: int) -> tuple[object, ContractVersion]:
    contract = await get_contract(session, actor, contract_id)
    version = await version_of(session, contract, version_number)
    if version.document_key is None:
        raise NotFound(_("This version has no document yet: it has not been sent."))
    return contract, version
