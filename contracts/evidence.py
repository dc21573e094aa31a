"""A signature's evidence as one JSON bundle, checked by `contracts/verify_signature.py` (no database needed).

The bundle states in the open what was signed (contract, version, side, the document's SHA-256) beside the
canonical payload that the key actually signed, and what checks it: the method, the public key (PEM) and its
algorithm, the signature, and for a passkey the authenticator data, the client data, the relying party id and
the origin. The verifier refuses a bundle whose open statement differs from the signed payload.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from contracts import verify_signature
from contracts.models import Contract, ContractVersion, Signature
from contracts.views import get_contract
from market.auth import Principal
from market.errors import NotFound
from market.i18n import _

FORMAT = "market-signature-evidence/1"


def bundle(contract: Contract, version: ContractVersion, signature: Signature) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "method": signature.method,
        "signature_id": signature.id,
        "contract_id": contract.id,
        "contract_number": contract.number,
        "version": version.number,
        "side": signature.side,
        "document_sha256": signature.document_sha256,
        "signer_name": signature.signer_name,
        "signer_role": signature.signer_role,
        "organisation_id": signature.organisation_id,
        "signed_at": signature.signed_at.isoformat(),
        "payload": signature.payload,
        **(signature.evidence or {}),
    }


def verdicts(
    contract: Contract, versions: list[ContractVersion], signatures: list[Signature]
) -> dict[int, verify_signature.Verdict]:
    """Each signature's verdict by its id, as the verifier gives it on its bundle."""
    by_id = {version.id: version for version in versions}
    return {
        signature.id: verify_signature.verify(bundle(contract, by_id[signature.version_id], signature))  # type: ignore[misc]
        for signature in signatures
        if signature.version_id in by_id
    }


async def signature_bundle(
    session: AsyncSession, actor: Principal, contract_id: int, signature_id: int
) -> dict[str, Any]:
    """The bundle of one signature on a contract the actor's organisation is party to."""
    contract = await get_contract(session, actor, contract_id)
    signature = await session.get(Signature, signature_id)
    if signature is None or signature.contract_id != contract.id:
        raise NotFound(_("No such signature on this contract."))
    version = await session.get(ContractVersion, signature.version_id)
    assert version is not None  # a signature's version exists (foreign key)
    return bundle(contract, version, signature)
