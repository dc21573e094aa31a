"""Contracts made through the contracts' own service functions, for any test that needs one.

`contract_parties` lists a service (directly, as tests/catalog/listed.py does) and makes an agency and a
provider with one admin user each (the agency's admin holds a signing limit above any contract here, as another
administrator would give it); `draft_contract`, `sent_contract` and `signed_contract` take a contract
as far as asked through `contracts.drafting` and `contracts.signing` (the agency drafts and sends, the
provider signs, then the agency signs). A contract whose start date is today or earlier is active once
signed; a later start leaves it `signed` until `advance_contracts` runs on that date.

    parties = await contract_parties(sessions)
    contract_id = await signed_contract(sessions, settings, parties, quantity=5, billing_period="quarterly")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import budgets, documents, drafting, signing
from contracts.models import Contract, ContractVersion
from contracts.schemas import BudgetInput, DraftInput, SignInput
from market.auth import Principal
from market.models import Organisation, User
from market.settings import Settings
from tests.catalog.listed import list_service, plan
from tests.helpers import PASSWORD, YEAR, make_organisation, make_user


def principal(user: User, organisation: Organisation) -> Principal:
    return Principal(
        user_id=user.id,
        email=user.email,
        name=user.name,
        organisation_id=organisation.id,  # type: ignore[arg-type]
        organisation_kind=organisation.kind,
        organisation_name=organisation.name,
        role=user.role,
        language=None,
        ip="127.0.0.1",
    )


SIGNING_LIMIT = 10**12  # won: the factory agency administrator's, above any contract the tests draft


@dataclass
class Parties:
    agency: Organisation
    agency_user: User
    provider: Organisation
    provider_user: User
    service_id: int
    plan_id: int

    @property
    def buyer(self) -> Principal:
        return principal(self.agency_user, self.agency)

    @property
    def seller(self) -> Principal:
        return principal(self.provider_user, self.provider)


async def contract_parties(
    sessions: async_sessionmaker[AsyncSession],
    *,
    unit: str = "user_month",
    unit_price: int = 10_000,
    vat_included: bool = False,
    minimum_term_months: int = 0,
    agency: Organisation | None = None,
    agency_user: User | None = None,
) -> Parties:
    """An agency and a provider (one admin each; the agency's may sign up to ₩1,000,000,000,000) and a listed service
    with one plan priced as given."""
    agency = agency or await make_organisation(sessions, "agency")
    agency_user = agency_user or await make_user(sessions, agency, name="Buyer Kim", signing_limit=SIGNING_LIMIT)
    provider = await make_organisation(sessions, "provider")
    provider_user = await make_user(sessions, provider, name="Seller Park")
    listed = await list_service(
        sessions,
        provider,
        "Cloud Drive",
        plans=[
            plan("Standard", unit, unit_price, vat_included=vat_included, minimum_term_months=minimum_term_months),
        ],
    )
    async with sessions() as session:
        offer = await drafting.listed_offer(session, listed.id)  # type: ignore[arg-type]
    return Parties(agency, agency_user, provider, provider_user, listed.id, offer.plans[0].id)  # type: ignore[arg-type]


def terms(parties: Parties, **overrides: Any) -> DraftInput:
    values: dict[str, Any] = {
        "service_id": parties.service_id,
        "plan_id": parties.plan_id,
        "quantity": 10,
        "starts_on": date(2027, 1, 1),
        "ends_on": date(2027, 12, 31),
        "billing_period": "monthly",
        "budget_reference": "2027-IT-001",
        "route": "direct",
        "special_terms": "",
    }
    values.update(overrides)
    return DraftInput(**values)


async def set_budget(sessions: async_sessionmaker[AsyncSession], parties: Parties, year: int, amount: int) -> None:
    async with sessions() as session, session.begin():
        await budgets.set_budget(session, parties.buyer, BudgetInput(year=year, amount=amount))


async def draft_contract(sessions: async_sessionmaker[AsyncSession], parties: Parties, **overrides: Any) -> int:
    """A draft (terms as in `terms`, overridable); returns the contract id."""
    async with sessions() as session, session.begin():
        contract = await drafting.draft(session, parties.buyer, terms(parties, **overrides))
        return contract.id  # type: ignore[return-value]


async def sent_contract(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, parties: Parties, **overrides: Any
) -> int:
    contract_id = await draft_contract(sessions, parties, **overrides)
    async with sessions() as session, session.begin():
        await drafting.send(session, parties.buyer, documents.store_for(settings), contract_id)
    return contract_id


async def sign_as(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    who: Principal,
    contract_id: int,
    *,
    today: date | None = None,
) -> None:
    """`who` signs the contract's current version, as the signing form would."""
    async with sessions() as session, session.begin():
        contract = await session.get(Contract, contract_id)
        version = await session.get(ContractVersion, contract.current_version_id)  # type: ignore[union-attr]
        await signing.sign(
            session,
            who,
            documents.store_for(settings),
            contract_id,
            version.number,  # type: ignore[union-attr]
            SignInput(
                password=PASSWORD, confirm_read=True, signer_name=who.name, document_sha256=version.document_sha256
            ),  # type: ignore[union-attr, arg-type]
            settings=settings,
            address="127.0.0.1",
            user_agent="tests",
            today=today,
        )


async def signed_contract(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    parties: Parties | None = None,
    *,
    today: date | None = None,
    **overrides: Any,
) -> int:
    """A contract signed by both sides (provider first). Active if it starts on or before `today` (default: the real
    today; the default term is all of 2027), else signed. Returns the contract id."""
    parties = parties or await contract_parties(sessions)
    contract_id = await sent_contract(sessions, settings, parties, **overrides)
    await sign_as(sessions, settings, parties.seller, contract_id, today=today)
    await sign_as(sessions, settings, parties.buyer, contract_id, today=today)
    return contract_id


async def active_contract(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, parties: Parties | None = None, **overrides: Any
) -> int:
    """A signed contract that is active now: its term starts on its start date, signed as of that date."""
    values = {"starts_on": date(YEAR, 1, 1), "ends_on": date(YEAR, 12, 31), **overrides}
    return await signed_contract(sessions, settings, parties, today=values["starts_on"], **values)


async def bearer(sessions: async_sessionmaker[AsyncSession], user: User) -> dict[str, str]:
    """Authorization headers with a fresh API token of `user`, marked as just used (so a GET does not write)."""
    from market.database import utcnow
    from market.models import ApiToken
    from market.security import new_token, token_hash

    raw = new_token("mkt_")
    async with sessions() as session, session.begin():
        session.add(
            ApiToken(user_id=user.id, name="tests", token_hash=token_hash(raw), prefix=raw[:8], last_used_at=utcnow())
        )  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {raw}"}
