"""The authorisation matrix: every route of the app's route table x every role x own or other organisation.

`RULES` classifies each route (method and path, as `app.routes` lists them): which roles may call it on their own
organisation's object (`who`), which may also act on another organisation's (`anywhere`), which object it acts
on (`target`, built fresh by `Builder`) and the body the owner would send (`body`). A route missing from
`RULES`, or a changing route without a body, fails `test_every_route_is_classified`, naming it: a new route
cannot escape the matrix.

The matrix runs each route for each role twice, with the body the owner sends successfully. First on the copy
owned by a second organisation of the same kind ("other"), then on the role's own organisation's copy ("own"):
accepted (2xx or 303) where the rules allow it; elsewhere 401, 403 or 404 (or a redirect to sign-in), with none
of the object's content (`marker`) in the answer and no row added or removed in any table (the audit log among
them). The refused roles go first and share one object of each side; an accepted change spends its object, so
the next allowed role gets a fresh one, and no call spoils the next.

`ALSO` runs some routes again on objects in other states: what is public once listed, a listed service's
revision in progress (`secret`: shown to its owner only), lists that must show the caller's own objects and
never another organisation's, registers and searches that never show unsigned or unlisted ones (`hidden`).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from catalog import documents as catalog_documents
from catalog import listings, projects
from catalog import schemas as catalog_schemas
from catalog.storage import LocalStorage
from committee import cases, meetings, members, reviews
from committee.models import Certificate
from contracts import documents as contract_documents
from contracts import drafting, invoices, lifecycle
from contracts.models import Contract, ContractVersion, Invoice, Signature
from contracts.schemas import DraftInput
from market import accounts, auth, clock, signing_keys
from market.auth import Principal, SystemActor
from market.database import create_engine, utcnow
from market.models import (
    AgencyDomain,
    ApiToken,
    Appointment,
    EmailVerification,
    Invitation,
    Organisation,
    PasswordReset,
    User,
)
from market.security import new_token, token_hash
from market.settings import Settings
from tests.catalog.listed import list_service, plan
from tests.catalog.listing_factories import PDF, complete_form, complete_json
from tests.committee.factories import PASSING, submitted_service
from tests.conftest import empty_data_dir, empty_database
from tests.contracts.factories import sign_as
from tests.helpers import PASSWORD, TEST_DAY, YEAR, business_number, make_organisation, make_user
from tests.softauthn import SoftAuthenticator

ROLES = (
    "anonymous",
    "agency_buyer",
    "agency_signer",
    "agency_admin",
    "provider_signer",
    "provider_admin",
    "committee_member",
    "committee_chair",
    "operator",
)
KIND_OF = {
    "agency_buyer": "agency",
    "agency_signer": "agency",
    "agency_admin": "agency",
    "provider_signer": "provider",
    "provider_admin": "provider",
    "committee_member": "committee",
    "committee_chair": "committee",
    "operator": "operator",
}
# Each matrix role's role in its organisation; the agency's signer and administrator may sign any contract built here.
ROLE_IN_ORGANISATION = {
    "agency_buyer": "buyer",
    "agency_signer": "signer",
    "agency_admin": "admin",
    "provider_signer": "signer",
    "provider_admin": "admin",
    "committee_member": "member",
    "committee_chair": "admin",
    "operator": "admin",
}
SIGNING_LIMITS = {"agency_signer": 10**12, "agency_admin": 10**12}
PUBLIC = frozenset(ROLES)
SIGNED_IN = PUBLIC - {"anonymous"}
AGENCY = frozenset({"agency_buyer", "agency_signer", "agency_admin"})
PROVIDER = frozenset({"provider_signer", "provider_admin"})
PARTY = AGENCY | PROVIDER
# Within an agency: buyers and administrators draft, change and send; signers and administrators sign (within their
# limits) and approve; administrators set budgets, the approval threshold and signing limits.
DRAFTERS = frozenset({"agency_buyer", "agency_admin"})
APPROVERS = frozenset({"agency_signer", "agency_admin"})
AGENCY_ADMIN = frozenset({"agency_admin"})
SIGNERS = APPROVERS | PROVIDER
AMENDERS = DRAFTERS | PROVIDER
COMMITTEE = frozenset({"committee_member", "committee_chair"})
CHAIR = frozenset({"committee_chair"})
OPERATOR = frozenset({"operator"})
STAFF = CHAIR | OPERATOR
# Administrators of agencies and providers manage their members; the committee's and the secretariat's are the operators'.
ORG_ADMINS = frozenset({"agency_admin", "provider_admin"})
LOGIN_REDIRECT = frozenset({303})  # a public form that ends on the sign-in page
NONE: frozenset[str] = frozenset()

Body = Callable[["World", "Actor", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    """Who may call a route, on what, with which body.

    who: roles that may call it on their own organisation's object (or at all, for a route without one).
    target: the kind of object the route acts on (a `Builder` method), None for none.
    anywhere: roles that may also act on another organisation's object (the secretariat, the chair).
    body: the body the owner sends (form fields for pages, JSON for /api; `files` for uploads).
    ok: the statuses that count as accepted, when not 2xx/303.
    listing: a list route: every role of `who` may call it, but shows the other organisation's object (its
        `secret`) only to the roles of `anywhere`.
    fresh_session: the call changes its caller (signs it out or in anew, renames it, sets a new password): a user of
        its own makes it, so that the world's users stay as they were.
    """

    who: frozenset[str]
    target: str | None = None
    anywhere: frozenset[str] = NONE
    body: Body | None = None
    ok: frozenset[int] = NONE
    fresh_session: bool = False
    listing: bool = False


def fixed(**fields: Any) -> Body:
    """The same body on every call."""
    return lambda _w, _a, _t: dict(fields)


EMPTY: Body = fixed()
_n = itertools.count(1)


def unique() -> int:
    return next(_n)


def from_target(**fields: Callable[[dict[str, Any]], Any] | Any) -> Body:
    """Fields computed from the target (callables) or fixed."""
    return lambda _w, _a, t: {key: value(t) if callable(value) else value for key, value in fields.items()}


# --- bodies --------------------------------------------------------------------------------------------


def token_body(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"matrix {unique()}"}


def invite_body(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"email": f"invitee{unique()}@example.go.kr", "role": "signer"}  # a role of agencies and providers alike


def organisation_body(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "agency", "name": f"Agency {unique()}", "registration_number": f"{2000000 + unique()}"}


def domain_body(w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"domain": f"d{unique()}.example.go.kr", "organisation_id": w.orgs["agency", "A"].id}


def appointment_body(w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    today = clock.today()
    return {
        "email": t["email"],
        "organisation_id": w.orgs["committee", "A"].id,
        "starts_on": str(today + timedelta(days=1000 + unique())),
        "ends_on": str(today + timedelta(days=3000)),
        "is_chair": "no",
    }


def register_provider_body(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    n = unique()
    return {
        "organisation_name": f"Provider Co {n}",
        "registration_number": business_number(50000 + n),
        "contact_email": f"sales@provider{n}.example.kr",
        "contact_phone": "02-123-4567",
        "is_sme": "no",
        "name": "New Provider",
        "email": f"new{n}@provider{n}.example.kr",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }


def register_agency_body(w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "New Buyer",
        "email": f"buyer{unique()}@{w.agency_domain}",
        "password": PASSWORD,
        "password_confirm": PASSWORD,
    }


def listing_form(_w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {
        **complete_form(name=f"Edited {unique()}"),
        **({"lock_version": str(t["lock_version"])} if "lock_version" in t else {}),
    }


def listing_json(_w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {
        **complete_json(name=f"Edited {unique()}"),
        **({"lock_version": t["lock_version"]} if "lock_version" in t else {}),
    }


def upload(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"files": {"file": ("terms.pdf", PDF, "application/pdf")}, "data": {"kind": "terms_of_use"}}


def project_json(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"Project {unique()}", "query": {"q": "cloud"}}


def review_form(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for code, answer in PASSING.items():
        fields[f"{code}.passed"] = "pass"
        if answer["score"] is not None:
            fields[f"{code}.score"] = str(answer["score"])
    return fields


def tie_body(w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {
        "provider_id": w.orgs["provider", "tied"].id,
        "kind": "employment",
        "starts_on": "2020-01-01",
        "note": f"tie {unique()}",
    }


def meeting_body(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"held_on": str(clock.today()), "title": f"Session {unique()}", "quorum": 1}


def bar_body(w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    start = clock.today() + timedelta(days=10 * unique())
    return {
        "provider_id": w.orgs["provider", "B"].id,
        "starts_on": str(start),
        "ends_on": str(start + timedelta(days=5)),
        "reason": "Sanctioned",
    }


CRITERIA_TEXT = "\n".join(
    [
        "management | Management | no | 30 | Management",
        "sanctions | Sanctions | yes | 0 | Sanctions",
        "security | Security | yes | 30 | Security",
        "stability | Stability | no | 20 | Stability",
        "support | Support | no | 20 | Support",
    ]
)
CRITERIA_JSON = [
    {"code": "management", "name": "Management", "mandatory": False, "weight": 30, "description": "Management"},
    {"code": "sanctions", "name": "Sanctions", "mandatory": True, "weight": 0, "description": "Sanctions"},
    {"code": "security", "name": "Security", "mandatory": True, "weight": 30, "description": "Security"},
    {"code": "stability", "name": "Stability", "mandatory": False, "weight": 20, "description": "Stability"},
    {"code": "support", "name": "Support", "mandatory": False, "weight": 20, "description": "Support"},
]
CRITERIA_NUMBERS = {
    "threshold": 70,
    "reviewers_per_case": 3,
    "review_period_days": 30,
    "certificate_years": 3,
    "note": "Matrix",
}


def draft_body(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "service_id": t["service_id"],
        "plan_id": t["plan_id"],
        "quantity": 5,
        "starts_on": "2027-01-01",
        "ends_on": "2027-12-31",
        "billing_period": "monthly",
        "budget_reference": "2027-IT-009",
        "route": "direct",
        "special_terms": "",
    }


def contract_draft_json(_w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return draft_body(t)


def contract_update_json(_w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in draft_body(t).items() if k != "service_id"},
        "quantity": 7,
        "lock_version": t["lock_version"],
    }


def contract_update_form(w: World, a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {key: str(value) for key, value in contract_update_json(w, a, t).items()}


def sign_body(_w: World, a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {
        "password": PASSWORD,
        "confirm_read": True,
        "signer_name": a.user.name if a.user else "Nobody",
        "document_sha256": t["sha256"],
    }


def sign_form(w: World, a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {**sign_body(w, a, t), "confirm_read": "yes"}


def public_key_pem() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def signing_key_form(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"key_name": f"matrix key {unique()}", "public_key": public_key_pem()}


def signing_key_json(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"matrix key {unique()}", "public_key": public_key_pem()}


def passkey_form(_w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {
        "passkey_name": f"matrix passkey {unique()}",
        "nonce": t["nonce"],
        "credential": json.dumps(t["credential"]),
    }


def passkey_json(_w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {"name": f"matrix passkey {unique()}", "nonce": t["nonce"], "credential": t["credential"]}


def amend_json(_w: World, _a: Actor, _t: dict[str, Any]) -> dict[str, Any]:
    return {"amendment_reason": "volume_change", "rationale": "More users", "quantity": 12}


def payment_body(_w: World, _a: Actor, t: dict[str, Any]) -> dict[str, Any]:
    return {"amount": 1000, "paid_on": str(clock.today()), "reference": f"TX-{unique()}"}


# --- the rules -------------------------------------------------------------------------------------------

R = Rule
RULES: dict[tuple[str, str], Rule] = {
    # shell: home, sign-in, registration
    ("GET", "/"): R(PUBLIC),
    ("POST", "/language"): R(PUBLIC, body=fixed(language="en", next="/"), fresh_session=True),
    ("GET", "/healthz"): R(PUBLIC),
    ("GET", "/login"): R(PUBLIC),
    ("POST", "/login"): R(
        PUBLIC,
        body=lambda w, a, _t: {"email": (a.user or w.users["agency_admin", "A"]).email, "password": PASSWORD},
        fresh_session=True,
    ),
    ("POST", "/logout"): R(PUBLIC, body=EMPTY, fresh_session=True),
    ("GET", "/register/provider"): R(PUBLIC),
    ("POST", "/register/provider"): R(PUBLIC, body=register_provider_body, fresh_session=True),
    ("GET", "/register/agency"): R(PUBLIC),
    ("POST", "/register/agency"): R(PUBLIC, body=register_agency_body, fresh_session=True),
    ("GET", "/register/check-mail"): R(PUBLIC),
    ("GET", "/register/confirm/{token:str}"): R(
        PUBLIC, target="email_confirmation", anywhere=PUBLIC, ok=LOGIN_REDIRECT
    ),
    ("GET", "/register/resend"): R(PUBLIC),
    ("POST", "/register/resend"): R(PUBLIC, body=fixed(email="nobody@example.go.kr")),
    ("GET", "/invitations/{token:str}"): R(PUBLIC, target="invitation", anywhere=PUBLIC),
    ("POST", "/invitations/{token:str}"): R(
        PUBLIC,
        target="invitation",
        anywhere=PUBLIC,
        body=fixed(name="Invited Person", password=PASSWORD, password_confirm=PASSWORD),
        ok=LOGIN_REDIRECT,
        fresh_session=True,
    ),
    ("GET", "/password/forgot"): R(PUBLIC),
    ("POST", "/password/forgot"): R(
        PUBLIC, body=from_target(email=lambda _t: "nobody@example.go.kr"), ok=LOGIN_REDIRECT, fresh_session=True
    ),
    ("GET", "/password/reset/{token:str}"): R(PUBLIC, target="password_reset", anywhere=PUBLIC),
    ("POST", "/password/reset/{token:str}"): R(
        PUBLIC,
        target="password_reset",
        anywhere=PUBLIC,
        body=fixed(password="another-horse-battery", password_confirm="another-horse-battery"),
        ok=LOGIN_REDIRECT,
        fresh_session=True,
    ),
    # account: the caller's own user and tokens
    ("GET", "/account"): R(SIGNED_IN),
    ("POST", "/account/profile"): R(SIGNED_IN, body=fixed(name="Renamed User", language="en"), fresh_session=True),
    ("POST", "/account/password"): R(
        SIGNED_IN,
        body=fixed(current_password=PASSWORD, password=PASSWORD + "!", password_confirm=PASSWORD + "!"),
        fresh_session=True,
    ),
    ("POST", "/account/tokens"): R(SIGNED_IN, body=lambda _w, _a, _t: {"token_name": f"matrix {unique()}"}),
    ("GET", "/account/tokens/{token_id:int}/revoke"): R(SIGNED_IN, target="token"),
    ("POST", "/account/tokens/{token_id:int}/revoke"): R(SIGNED_IN, target="token", body=EMPTY),
    ("POST", "/account/passkeys/options"): R(SIGNED_IN, body=EMPTY),
    ("POST", "/account/passkeys"): R(SIGNED_IN, target="passkey_registration", body=passkey_form),
    ("POST", "/account/signing-keys"): R(SIGNED_IN, body=signing_key_form),
    ("GET", "/account/signing-keys/{key_id:int}/remove"): R(SIGNED_IN, target="signing_key"),
    ("POST", "/account/signing-keys/{key_id:int}/remove"): R(SIGNED_IN, target="signing_key", body=EMPTY),
    ("GET", "/api/signing-keys"): R(SIGNED_IN),
    ("POST", "/api/signing-keys"): R(SIGNED_IN, body=signing_key_json),
    ("DELETE", "/api/signing-keys/{key_id:int}"): R(SIGNED_IN, target="signing_key", body=EMPTY),
    ("POST", "/api/passkeys/options"): R(SIGNED_IN, body=EMPTY),
    ("POST", "/api/passkeys"): R(SIGNED_IN, target="passkey_registration", body=passkey_json),
    ("GET", "/api/me"): R(SIGNED_IN),
    ("GET", "/api/tokens"): R(SIGNED_IN),
    ("POST", "/api/tokens"): R(SIGNED_IN, body=token_body),
    ("DELETE", "/api/tokens/{token_id:int}"): R(SIGNED_IN, target="token", body=EMPTY),
    # organisation: members of the caller's organisation, managed by its administrators
    ("GET", "/organisation"): R(SIGNED_IN),
    ("POST", "/organisation/invitations"): R(ORG_ADMINS, body=invite_body),
    ("POST", "/organisation/members/{member_id:int}/disable"): R(ORG_ADMINS, target="member", body=EMPTY),
    ("POST", "/organisation/members/{member_id:int}/enable"): R(ORG_ADMINS, target="disabled_member", body=EMPTY),
    ("POST", "/organisation/members/{member_id:int}/role"): R(ORG_ADMINS, target="member", body=fixed(role="admin")),
    ("GET", "/organisation/members/{member_id:int}/remove"): R(ORG_ADMINS, target="member"),
    ("POST", "/organisation/members/{member_id:int}/remove"): R(ORG_ADMINS, target="member", body=EMPTY),
    # signing limits are an agency's: its administrators set its signers'
    ("POST", "/organisation/members/{member_id:int}/signing-limit"): R(
        AGENCY_ADMIN, target="signer_member", body=fixed(signing_limit="5,000,000")
    ),
    ("POST", "/api/organisation/members/{member_id:int}/role"): R(
        ORG_ADMINS, target="member", body=fixed(role="admin")
    ),
    ("POST", "/api/organisation/members/{member_id:int}/signing-limit"): R(
        AGENCY_ADMIN, target="signer_member", body=fixed(signing_limit=5_000_000)
    ),
    ("POST", "/organisation/signing-policy"): R(ORG_ADMINS, body=fixed(password_signing="yes")),
    ("PUT", "/api/organisation/signing-policy"): R(ORG_ADMINS, body=fixed(password_signing=True)),
    ("GET", "/api/organisation"): R(SIGNED_IN),
    ("POST", "/api/organisation/invitations"): R(ORG_ADMINS, body=invite_body),
    ("POST", "/api/organisation/members/{member_id:int}/disable"): R(ORG_ADMINS, target="member", body=EMPTY),
    ("POST", "/api/organisation/members/{member_id:int}/enable"): R(ORG_ADMINS, target="disabled_member", body=EMPTY),
    ("POST", "/api/organisation/members/{member_id:int}/remove"): R(ORG_ADMINS, target="member", body=EMPTY),
    # the secretariat
    ("GET", "/operator/organisations"): R(OPERATOR),
    ("POST", "/operator/organisations"): R(OPERATOR, body=organisation_body),
    ("GET", "/operator/organisations/new"): R(OPERATOR),
    ("GET", "/operator/organisations/{organisation_id:int}"): R(OPERATOR, target="organisation", anywhere=OPERATOR),
    ("GET", "/operator/organisations/{organisation_id:int}/deactivate"): R(
        OPERATOR, target="organisation", anywhere=OPERATOR
    ),
    ("POST", "/operator/organisations/{organisation_id:int}/deactivate"): R(
        OPERATOR, target="organisation", anywhere=OPERATOR, body=EMPTY
    ),
    ("GET", "/operator/organisations/{organisation_id:int}/activate"): R(
        OPERATOR, target="inactive_organisation", anywhere=OPERATOR
    ),
    ("POST", "/operator/organisations/{organisation_id:int}/activate"): R(
        OPERATOR, target="inactive_organisation", anywhere=OPERATOR, body=EMPTY
    ),
    ("POST", "/operator/users/{user_id:int}/disable"): R(OPERATOR, target="user", anywhere=OPERATOR, body=EMPTY),
    ("POST", "/operator/users/{user_id:int}/enable"): R(
        OPERATOR, target="disabled_user", anywhere=OPERATOR, body=EMPTY
    ),
    ("GET", "/operator/domains"): R(OPERATOR),
    ("POST", "/operator/domains"): R(OPERATOR, body=domain_body),
    ("GET", "/operator/domains/{domain_id:int}/remove"): R(OPERATOR, target="domain", anywhere=OPERATOR),
    ("POST", "/operator/domains/{domain_id:int}/remove"): R(OPERATOR, target="domain", anywhere=OPERATOR, body=EMPTY),
    ("GET", "/operator/appointments"): R(OPERATOR),
    ("POST", "/operator/appointments"): R(OPERATOR, target="committee_user", anywhere=OPERATOR, body=appointment_body),
    ("GET", "/operator/appointments/{appointment_id:int}/end"): R(OPERATOR, target="appointment", anywhere=OPERATOR),
    ("POST", "/operator/appointments/{appointment_id:int}/end"): R(
        OPERATOR, target="appointment", anywhere=OPERATOR, body=EMPTY
    ),
    ("GET", "/operator/audit"): R(OPERATOR),
    ("GET", "/operator/audit.csv"): R(OPERATOR),
    ("GET", "/api/operator/organisations"): R(OPERATOR),
    ("POST", "/api/operator/organisations"): R(OPERATOR, body=organisation_body),
    ("GET", "/api/operator/organisations/{organisation_id:int}"): R(OPERATOR, target="organisation", anywhere=OPERATOR),
    ("POST", "/api/operator/organisations/{organisation_id:int}/deactivate"): R(
        OPERATOR, target="organisation", anywhere=OPERATOR, body=EMPTY
    ),
    ("POST", "/api/operator/organisations/{organisation_id:int}/activate"): R(
        OPERATOR, target="inactive_organisation", anywhere=OPERATOR, body=EMPTY
    ),
    ("POST", "/api/operator/users/{user_id:int}/disable"): R(OPERATOR, target="user", anywhere=OPERATOR, body=EMPTY),
    ("POST", "/api/operator/users/{user_id:int}/enable"): R(
        OPERATOR, target="disabled_user", anywhere=OPERATOR, body=EMPTY
    ),
    ("GET", "/api/operator/domains"): R(OPERATOR),
    ("POST", "/api/operator/domains"): R(OPERATOR, body=domain_body),
    ("DELETE", "/api/operator/domains/{domain_id:int}"): R(OPERATOR, target="domain", anywhere=OPERATOR, body=EMPTY),
    ("GET", "/api/operator/appointments"): R(OPERATOR),
    ("POST", "/api/operator/appointments"): R(
        OPERATOR,
        target="committee_user",
        anywhere=OPERATOR,
        body=lambda w, a, t: {**appointment_body(w, a, t), "is_chair": False},
    ),
    ("POST", "/api/operator/appointments/{appointment_id:int}/end"): R(
        OPERATOR, target="appointment", anywhere=OPERATOR, body=EMPTY
    ),
    ("GET", "/api/operator/audit-events"): R(OPERATOR),
    # catalogue: a provider's listings
    ("GET", "/provider/services"): R(PROVIDER),
    ("GET", "/services/new"): R(PROVIDER),
    ("POST", "/services/new"): R(PROVIDER, body=lambda _w, _a, _t: complete_form(name=f"New {unique()}")),
    ("GET", "/services/{service_id:int}/edit"): R(PROVIDER, target="draft_service"),
    ("POST", "/services/{service_id:int}/edit"): R(PROVIDER, target="draft_service", body=listing_form),
    ("GET", "/services/{service_id:int}/submit"): R(PROVIDER, target="draft_service"),
    ("POST", "/services/{service_id:int}/submit"): R(
        PROVIDER, target="draft_service", body=from_target(lock_version=lambda t: str(t["lock_version"]), confirm="yes")
    ),
    ("GET", "/services/{service_id:int}/withdraw"): R(PROVIDER, target="listed_service"),
    ("POST", "/services/{service_id:int}/withdraw"): R(
        PROVIDER, target="listed_service", body=fixed(reason="No longer offered", confirm="yes")
    ),
    ("GET", "/services/{service_id:int}/revise"): R(PROVIDER, target="listed_service"),
    ("POST", "/services/{service_id:int}/revise"): R(PROVIDER, target="listed_service", body=EMPTY),
    ("GET", "/services/{service_id:int}/documents"): R(PROVIDER, target="draft_service"),
    ("POST", "/services/{service_id:int}/documents"): R(PROVIDER, target="draft_service", body=upload),
    ("POST", "/services/{service_id:int}/documents/{document_id:int}/remove"): R(
        PROVIDER, target="draft_service", body=EMPTY
    ),
    # a draft's pages and JSON are its provider's (and the reviewers'); a listed service's are public
    ("GET", "/services/{service_id:int}"): R(PROVIDER, target="draft_service"),
    ("GET", "/services/{service_id:int}/diff"): R(PROVIDER, target="draft_service"),
    ("GET", "/documents/{document_id:int}"): R(PROVIDER, target="draft_service"),
    ("POST", "/api/services"): R(PROVIDER, body=lambda _w, _a, _t: complete_json(name=f"New {unique()}")),
    ("PATCH", "/api/services/{service_id:int}"): R(PROVIDER, target="draft_service", body=listing_json),
    ("GET", "/api/services/{service_id:int}"): R(PROVIDER, target="draft_service"),
    ("POST", "/api/services/{service_id:int}/submit"): R(
        PROVIDER, target="draft_service", body=from_target(lock_version=lambda t: t["lock_version"])
    ),
    ("POST", "/api/services/{service_id:int}/revise"): R(PROVIDER, target="listed_service", body=EMPTY),
    ("POST", "/api/services/{service_id:int}/withdraw"): R(
        PROVIDER, target="listed_service", body=fixed(reason="No longer offered", confirm=True)
    ),
    ("POST", "/api/services/{service_id:int}/documents"): R(PROVIDER, target="draft_service", body=upload),
    ("GET", "/api/services/{service_id:int}/versions"): R(PROVIDER, target="draft_service"),
    ("GET", "/api/services/{service_id:int}/diff"): R(PROVIDER, target="draft_service"),
    # catalogue: search and compare are public
    ("GET", "/services"): R(PUBLIC),
    ("GET", "/api/search"): R(PUBLIC),
    ("GET", "/compare"): R(PUBLIC, target="comparison", anywhere=PUBLIC),
    ("GET", "/compare/export"): R(PUBLIC, target="comparison", anywhere=PUBLIC),
    ("GET", "/api/compare"): R(PUBLIC, target="comparison", anywhere=PUBLIC),
    # catalogue: an agency's procurement projects
    ("GET", "/projects"): R(AGENCY),
    ("POST", "/projects/save-search"): R(
        AGENCY, body=lambda _w, _a, _t: {"project": "new", "name": f"Project {unique()}", "search": "q=cloud"}
    ),
    ("GET", "/projects/{project_id:int}"): R(AGENCY, target="project"),
    ("GET", "/projects/{project_id:int}/end"): R(AGENCY, target="project"),
    ("POST", "/projects/{project_id:int}/end"): R(AGENCY, target="project", body=fixed(confirm="yes")),
    ("GET", "/projects/{project_id:int}/outcome"): R(AGENCY, target="ended_project"),
    ("POST", "/projects/{project_id:int}/outcome"): R(
        AGENCY, target="ended_project", body=fixed(confirm="yes", outcome="none_suitable", reason="Nothing fitted")
    ),
    ("GET", "/projects/{project_id:int}/export/{fmt:str}"): R(AGENCY, target="ended_project"),
    ("GET", "/api/projects"): R(AGENCY),
    ("POST", "/api/projects"): R(AGENCY, body=project_json),
    ("GET", "/api/projects/{project_id:int}"): R(AGENCY, target="project"),
    ("PUT", "/api/projects/{project_id:int}/search"): R(AGENCY, target="project", body=fixed(query={"q": "drive"})),
    ("POST", "/api/projects/{project_id:int}/end"): R(AGENCY, target="project", body=EMPTY),
    ("POST", "/api/projects/{project_id:int}/outcome"): R(
        AGENCY, target="ended_project", body=fixed(outcome="none_suitable", reason="Nothing fitted")
    ),
    ("GET", "/api/projects/{project_id:int}/export/{fmt:str}"): R(AGENCY, target="ended_project"),
    # committee: a member's assigned cases, reviews and ties
    ("GET", "/committee/cases"): R(COMMITTEE),
    ("GET", "/committee/cases/{case_id:int}"): R(COMMITTEE | PROVIDER, target="case_in_review", anywhere=STAFF),
    ("POST", "/committee/cases/{case_id:int}/review"): R(COMMITTEE, target="case_in_review", body=review_form),
    ("POST", "/committee/cases/{case_id:int}/withdraw"): R(
        COMMITTEE, target="reviewed_case", body=fixed(reason="A mistake")
    ),
    ("GET", "/committee/reviews"): R(COMMITTEE),
    ("GET", "/committee/ties"): R(COMMITTEE),
    ("POST", "/committee/ties"): R(COMMITTEE, body=tie_body),
    ("POST", "/committee/ties/{tie_id:int}/end"): R(COMMITTEE, target="tie", body=fixed(ends_on=str(clock.today()))),
    # committee: the chair's and the secretariat's work on any case
    ("GET", "/committee/queue"): R(STAFF),
    ("POST", "/committee/cases/{case_id:int}/complete"): R(OPERATOR, target="new_case", anywhere=OPERATOR, body=EMPTY),
    ("POST", "/committee/cases/{case_id:int}/incomplete"): R(
        OPERATOR, target="new_case", anywhere=OPERATOR, body=fixed(message="Add the SLA")
    ),
    ("POST", "/committee/cases/{case_id:int}/assign"): R(
        CHAIR,
        target="complete_case",
        anywhere=CHAIR,
        body=lambda w, _a, _t: {"member_ids": [w.users["committee_member", "A"].id]},
    ),
    ("POST", "/committee/cases/{case_id:int}/auto-assign"): R(
        CHAIR, target="complete_case", anywhere=CHAIR, body=EMPTY
    ),
    ("POST", "/committee/cases/{case_id:int}/release"): R(
        CHAIR, target="case_in_review", anywhere=CHAIR, body=from_target(member_id=lambda t: t["member_id"])
    ),
    ("POST", "/committee/cases/{case_id:int}/return"): R(
        CHAIR, target="case_in_review", anywhere=CHAIR, body=fixed(message="Revise the SLA")
    ),
    ("GET", "/committee/sessions"): R(STAFF),
    ("POST", "/committee/sessions"): R(CHAIR, body=meeting_body),
    ("GET", "/committee/sessions/{meeting_id:int}"): R(STAFF, target="meeting", anywhere=STAFF),
    ("POST", "/committee/sessions/{meeting_id:int}/attendance"): R(
        CHAIR,
        target="meeting",
        anywhere=CHAIR,
        body=lambda w, _a, _t: {"member_ids": [w.users["committee_member", "A"].id]},
    ),
    ("POST", "/committee/sessions/{meeting_id:int}/cases"): R(
        CHAIR, target="meeting_and_decision", anywhere=CHAIR, body=from_target(case_id=lambda t: t["case_id"])
    ),
    ("POST", "/committee/sessions/{meeting_id:int}/confirm"): R(
        CHAIR, target="meeting_with_decision", anywhere=CHAIR, body=from_target(case_id=lambda t: t["case_id"])
    ),
    ("POST", "/committee/sessions/{meeting_id:int}/close"): R(CHAIR, target="meeting", anywhere=CHAIR, body=EMPTY),
    ("GET", "/committee/sessions/{meeting_id:int}/minutes.csv"): R(STAFF, target="meeting", anywhere=STAFF),
    ("GET", "/committee/certificates"): R(STAFF),
    ("POST", "/committee/certificates/{number:str}/suspend"): R(
        CHAIR,
        target="certificate",
        anywhere=CHAIR,
        body=fixed(reason="Under investigation", until=str(clock.today() + timedelta(days=30))),
    ),
    ("POST", "/committee/certificates/{number:str}/revoke"): R(
        CHAIR, target="certificate", anywhere=CHAIR, body=fixed(reason="Fraud")
    ),
    ("GET", "/committee/bars"): R(STAFF),
    ("POST", "/committee/bars"): R(CHAIR, body=bar_body),
    ("GET", "/committee/criteria"): R(STAFF),
    ("POST", "/committee/criteria"): R(CHAIR, body=lambda _w, _a, _t: {"criteria": CRITERIA_TEXT, **CRITERIA_NUMBERS}),
    # committee: what a provider sees of its own cases and certificates
    ("GET", "/provider/cases"): R(PROVIDER),
    ("GET", "/provider/certificates"): R(PROVIDER),
    ("POST", "/provider/certificates/{number:str}/renew"): R(PROVIDER, target="certificate", body=EMPTY),
    ("GET", "/certificates"): R(PUBLIC),
    ("GET", "/certificates/{number:str}"): R(PUBLIC, target="certificate", anywhere=PUBLIC),
    ("GET", "/api/committee/cases"): R(COMMITTEE),
    ("GET", "/api/committee/queue"): R(STAFF),
    ("GET", "/api/committee/cases/{case_id:int}"): R(COMMITTEE | PROVIDER, target="case_in_review", anywhere=STAFF),
    ("GET", "/api/provider/cases/{case_id:int}"): R(COMMITTEE | PROVIDER, target="case_in_review", anywhere=STAFF),
    ("POST", "/api/committee/cases/{case_id:int}/complete"): R(
        OPERATOR, target="new_case", anywhere=OPERATOR, body=EMPTY
    ),
    ("POST", "/api/committee/cases/{case_id:int}/incomplete"): R(
        OPERATOR, target="new_case", anywhere=OPERATOR, body=fixed(message="Add the SLA")
    ),
    ("POST", "/api/committee/cases/{case_id:int}/assign"): R(
        CHAIR,
        target="complete_case",
        anywhere=CHAIR,
        body=lambda w, _a, _t: {"member_ids": [w.users["committee_member", "A"].id]},
    ),
    ("POST", "/api/committee/cases/{case_id:int}/auto-assign"): R(
        CHAIR, target="complete_case", anywhere=CHAIR, body=EMPTY
    ),
    ("POST", "/api/committee/cases/{case_id:int}/release"): R(
        CHAIR, target="case_in_review", anywhere=CHAIR, body=from_target(member_id=lambda t: t["member_id"])
    ),
    ("POST", "/api/committee/cases/{case_id:int}/return"): R(
        CHAIR, target="case_in_review", anywhere=CHAIR, body=fixed(message="Revise the SLA")
    ),
    ("POST", "/api/committee/cases/{case_id:int}/review"): R(
        COMMITTEE, target="case_in_review", body=fixed(answers=PASSING)
    ),
    ("POST", "/api/committee/cases/{case_id:int}/withdraw"): R(
        COMMITTEE, target="reviewed_case", body=fixed(reason="A mistake")
    ),
    ("GET", "/api/committee/reviews"): R(COMMITTEE),
    ("GET", "/api/committee/ties"): R(COMMITTEE),
    ("POST", "/api/committee/ties"): R(COMMITTEE, body=tie_body),
    ("POST", "/api/committee/ties/{tie_id:int}/end"): R(
        COMMITTEE, target="tie", body=fixed(ends_on=str(clock.today()))
    ),
    ("GET", "/api/committee/sessions"): R(STAFF),
    ("POST", "/api/committee/sessions"): R(CHAIR, body=meeting_body),
    ("GET", "/api/committee/sessions/{meeting_id:int}"): R(STAFF, target="meeting", anywhere=STAFF),
    ("POST", "/api/committee/sessions/{meeting_id:int}/attendance"): R(
        CHAIR,
        target="meeting",
        anywhere=CHAIR,
        body=lambda w, _a, _t: {"member_ids": [w.users["committee_member", "A"].id]},
    ),
    ("POST", "/api/committee/sessions/{meeting_id:int}/cases"): R(
        CHAIR, target="meeting_and_decision", anywhere=CHAIR, body=from_target(case_id=lambda t: t["case_id"])
    ),
    ("POST", "/api/committee/sessions/{meeting_id:int}/confirm"): R(
        CHAIR, target="meeting_with_decision", anywhere=CHAIR, body=from_target(case_id=lambda t: t["case_id"])
    ),
    ("POST", "/api/committee/sessions/{meeting_id:int}/close"): R(CHAIR, target="meeting", anywhere=CHAIR, body=EMPTY),
    ("GET", "/api/committee/certificates"): R(STAFF),
    ("POST", "/api/committee/certificates/{number:str}/suspend"): R(
        CHAIR,
        target="certificate",
        anywhere=CHAIR,
        body=fixed(reason="Under investigation", until=str(clock.today() + timedelta(days=30))),
    ),
    ("POST", "/api/committee/certificates/{number:str}/revoke"): R(
        CHAIR, target="certificate", anywhere=CHAIR, body=fixed(reason="Fraud")
    ),
    ("GET", "/api/committee/bars"): R(STAFF),
    ("POST", "/api/committee/bars"): R(CHAIR, body=bar_body),
    ("GET", "/api/committee/criteria"): R(STAFF),
    ("POST", "/api/committee/criteria"): R(
        CHAIR, body=lambda _w, _a, _t: {"criteria": CRITERIA_JSON, **CRITERIA_NUMBERS}
    ),
    ("GET", "/api/provider/cases"): R(PROVIDER),
    ("GET", "/api/provider/certificates"): R(PROVIDER),
    ("POST", "/api/provider/certificates/{number:str}/renew"): R(PROVIDER, target="certificate", body=EMPTY),
    ("GET", "/api/certificates"): R(PUBLIC),
    ("GET", "/api/certificates/{number:str}"): R(PUBLIC, target="certificate", anywhere=PUBLIC),
    # contracts: the two parties' (the agency drafts; either side signs, amends, terminates)
    ("GET", "/contracts"): R(PARTY),
    ("GET", "/contracts/budget"): R(AGENCY),
    ("POST", "/contracts/budget"): R(
        AGENCY_ADMIN, body=lambda _w, _a, _t: {"year": str(2030 + unique() % 60), "amount": "1,000,000"}
    ),
    ("GET", "/contracts/new"): R(AGENCY, target="offer_form", anywhere=AGENCY),
    ("POST", "/contracts/approval-threshold"): R(AGENCY_ADMIN, body=fixed(threshold="100,000,000")),
    ("POST", "/contracts/new"): R(
        DRAFTERS,
        target="offer",
        anywhere=DRAFTERS,
        body=lambda _w, _a, t: {k: str(v) for k, v in draft_body(t).items()},
    ),
    ("GET", "/contracts/{contract_id:int}"): R(PARTY, target="draft_contract"),
    ("GET", "/contracts/{contract_id:int}/edit"): R(AGENCY, target="draft_contract"),
    ("POST", "/contracts/{contract_id:int}/edit"): R(DRAFTERS, target="draft_contract", body=contract_update_form),
    ("GET", "/contracts/{contract_id:int}/versions/{number:int}/document"): R(PARTY, target="sent_contract"),
    ("GET", "/contracts/{contract_id:int}/versions/{number:int}/document.pdf"): R(PARTY, target="sent_contract"),
    ("GET", "/contracts/{contract_id:int}/versions/{number:int}/sign"): R(PARTY, target="sent_contract"),
    ("POST", "/contracts/{contract_id:int}/versions/{number:int}/sign"): R(
        SIGNERS, target="sent_contract", body=sign_form
    ),
    ("POST", "/contracts/{contract_id:int}/versions/{number:int}/signing-request"): R(
        SIGNERS, target="sent_contract", body=EMPTY
    ),
    ("GET", "/contracts/{contract_id:int}/signatures/{signature_id:int}/evidence.json"): R(PARTY, target="signature"),
    ("GET", "/contracts/{contract_id:int}/terminate"): R(PARTY, target="active_contract"),
    ("POST", "/contracts/{contract_id:int}/terminate"): R(
        PARTY,
        target="active_contract",
        body=fixed(confirm="yes", reason="Service ended", effective_on=str(date(YEAR, 12, 1))),
    ),
    ("GET", "/contracts/{contract_id:int}/amend"): R(PARTY, target="active_contract"),
    ("POST", "/contracts/{contract_id:int}/amend"): R(
        AMENDERS,
        target="active_contract",
        body=fixed(confirm="yes", amendment_reason="volume_change", rationale="More users", quantity="12"),
    ),
    ("GET", "/contracts/{contract_id:int}/renew"): R(AGENCY, target="active_contract"),
    ("POST", "/contracts/{contract_id:int}/renew"): R(
        DRAFTERS, target="active_contract", body=fixed(starts_on="2027-01-01", ends_on="2027-12-31", quantity="5")
    ),
    ("GET", "/contracts/{contract_id:int}/send"): R(PARTY, target="draft_contract"),
    ("POST", "/contracts/{contract_id:int}/send"): R(DRAFTERS, target="draft_contract", body=fixed(confirm="yes")),
    ("GET", "/contracts/{contract_id:int}/approve"): R(PARTY, target="draft_contract"),
    ("POST", "/contracts/{contract_id:int}/approve"): R(APPROVERS, target="draft_contract", body=fixed(confirm="yes")),
    ("GET", "/contracts/{contract_id:int}/withdraw"): R(PARTY, target="sent_contract"),
    ("POST", "/contracts/{contract_id:int}/withdraw"): R(
        DRAFTERS, target="sent_contract", body=fixed(confirm="yes", reason="Wrong quantity")
    ),
    ("GET", "/contracts/{contract_id:int}/decline"): R(PARTY, target="sent_contract"),
    ("POST", "/contracts/{contract_id:int}/decline"): R(
        PROVIDER, target="sent_contract", body=fixed(confirm="yes", reason="Wrong price")
    ),
    ("GET", "/contracts/{contract_id:int}/revise"): R(PARTY, target="declined_contract"),
    ("POST", "/contracts/{contract_id:int}/revise"): R(DRAFTERS, target="declined_contract", body=fixed(confirm="yes")),
    ("GET", "/contracts/{contract_id:int}/cancel"): R(PARTY, target="draft_contract"),
    ("POST", "/contracts/{contract_id:int}/cancel"): R(
        DRAFTERS, target="draft_contract", body=fixed(confirm="yes", reason="Not needed")
    ),
    ("POST", "/api/contracts"): R(DRAFTERS, target="offer", anywhere=DRAFTERS, body=contract_draft_json),
    ("GET", "/api/contracts"): R(PARTY),
    ("GET", "/api/contracts/{contract_id:int}"): R(PARTY, target="draft_contract"),
    ("PUT", "/api/contracts/{contract_id:int}/draft"): R(DRAFTERS, target="draft_contract", body=contract_update_json),
    ("POST", "/api/contracts/{contract_id:int}/send"): R(DRAFTERS, target="draft_contract", body=EMPTY),
    ("POST", "/api/contracts/{contract_id:int}/approval"): R(APPROVERS, target="draft_contract", body=EMPTY),
    ("POST", "/api/contracts/{contract_id:int}/withdraw"): R(
        DRAFTERS, target="sent_contract", body=fixed(reason="Wrong quantity")
    ),
    ("POST", "/api/contracts/{contract_id:int}/decline"): R(
        PROVIDER, target="sent_contract", body=fixed(reason="Wrong price")
    ),
    ("POST", "/api/contracts/{contract_id:int}/revise"): R(DRAFTERS, target="declined_contract", body=EMPTY),
    ("POST", "/api/contracts/{contract_id:int}/cancel"): R(
        DRAFTERS, target="draft_contract", body=fixed(reason="Not needed")
    ),
    ("POST", "/api/contracts/{contract_id:int}/versions/{number:int}/signatures"): R(
        SIGNERS, target="sent_contract", body=sign_body
    ),
    ("GET", "/api/contracts/{contract_id:int}/versions/{number:int}/check"): R(PARTY, target="sent_contract"),
    ("POST", "/api/contracts/{contract_id:int}/versions/{number:int}/signing-requests"): R(
        SIGNERS, target="sent_contract", body=EMPTY
    ),
    ("GET", "/api/contracts/{contract_id:int}/signatures/{signature_id:int}/evidence.json"): R(
        PARTY, target="signature"
    ),
    ("POST", "/api/contracts/{contract_id:int}/terminate"): R(
        PARTY, target="active_contract", body=fixed(reason="Service ended", effective_on=f"{YEAR}-12-01")
    ),
    ("POST", "/api/contracts/{contract_id:int}/amendments"): R(AMENDERS, target="active_contract", body=amend_json),
    ("POST", "/api/contracts/{contract_id:int}/renewals"): R(
        DRAFTERS, target="active_contract", body=fixed(starts_on="2027-01-01", ends_on="2027-12-31", quantity=5)
    ),
    ("PUT", "/api/budgets"): R(
        AGENCY_ADMIN, body=lambda _w, _a, _t: {"year": 2030 + unique() % 60, "amount": 1_000_000}
    ),
    ("GET", "/api/budgets"): R(AGENCY),
    ("GET", "/api/approval-threshold"): R(AGENCY),
    ("PUT", "/api/approval-threshold"): R(AGENCY_ADMIN, body=fixed(amount=100_000_000)),
    # invoices: both parties read theirs; the provider (or the secretariat) records payments; the secretariat voids
    ("GET", "/invoices"): R(PARTY | OPERATOR),
    ("GET", "/invoices/export.csv"): R(PARTY | OPERATOR),
    ("GET", "/invoices/{invoice_id:int}"): R(PARTY, target="invoice", anywhere=OPERATOR),
    ("POST", "/invoices/{invoice_id:int}/payments"): R(
        PROVIDER, target="invoice", anywhere=OPERATOR, body=payment_body
    ),
    ("POST", "/invoices/{invoice_id:int}/void"): R(
        OPERATOR, target="invoice", anywhere=OPERATOR, body=fixed(reason="Issued in error", confirm="yes")
    ),
    ("GET", "/api/invoices"): R(PARTY | OPERATOR),
    ("GET", "/api/invoices/{invoice_id:int}"): R(PARTY, target="invoice", anywhere=OPERATOR),
    ("POST", "/api/invoices/{invoice_id:int}/payments"): R(
        PROVIDER, target="invoice", anywhere=OPERATOR, body=payment_body
    ),
    ("POST", "/api/invoices/{invoice_id:int}/void"): R(
        OPERATOR, target="invoice", anywhere=OPERATOR, body=fixed(reason="Issued in error")
    ),
    # Stripe's webhook is authenticated by Stripe's signature, not by a role; without a webhook secret configured
    # (as here) it answers 503 to everyone (tests/contracts/test_webhooks.py checks signatures)
    ("POST", "/webhooks/stripe"): R(PUBLIC, body=fixed(id="evt_1", type="invoice.paid"), ok=frozenset({503})),
    # the open contract register and OCDS are public
    ("GET", "/contracts/register"): R(PUBLIC),
    ("GET", "/contracts/register.csv"): R(PUBLIC),
    ("GET", "/contracts/register/statistics"): R(PUBLIC),
    ("GET", "/contracts/register/{number:str}"): R(PUBLIC, target="registered_contract", anywhere=PUBLIC),
    ("GET", "/api/contracts/register"): R(PUBLIC),
    ("GET", "/api/ocds/releases"): R(PUBLIC),
    ("GET", "/api/ocds/records/{ocid:str}"): R(PUBLIC, target="registered_contract", anywhere=PUBLIC),
    # framework routes: static files and the OpenAPI description are public
    ("GET", "/static/{file_path:path}"): R(PUBLIC, target="static_file", anywhere=PUBLIC),
    ("GET", "/schema"): R(PUBLIC),
    ("GET", "/schema/openapi.json"): R(PUBLIC),
    ("GET", "/schema/openapi.yaml"): R(PUBLIC),
    ("GET", "/schema/openapi.yml"): R(PUBLIC),
    ("GET", "/schema/redoc"): R(PUBLIC),
    ("GET", "/schema/rapidoc"): R(PUBLIC),
    ("GET", "/schema/elements"): R(PUBLIC),
    ("GET", "/schema/swagger"): R(PUBLIC),
    ("GET", "/schema/oauth2-redirect.html"): R(PUBLIC),
    ("GET", "/schema/{path:str}"): R(PUBLIC, target="schema_path", anywhere=PUBLIC, ok=frozenset({404})),
}

# The same routes again on objects in other states: what is public once listed, what the committee reads of a
# submission, and a listed service's revision in progress (its draft stays its provider's: `secret` is its name).
LISTED_READS = [
    ("GET", path)
    for path in (
        "/services/{service_id:int}",
        "/services/{service_id:int}/diff",
        "/documents/{document_id:int}",
        "/api/services/{service_id:int}",
        "/api/services/{service_id:int}/versions",
        "/api/services/{service_id:int}/diff",
    )
]
REVIEWERS = COMMITTEE | OPERATOR
ALSO: list[tuple[str, str, Rule]] = [
    *[(method, path, R(PUBLIC, target="listed_service", anywhere=PUBLIC)) for method, path in LISTED_READS],
    *[(method, path, R(PROVIDER, target="submitted_service", anywhere=REVIEWERS)) for method, path in LISTED_READS],
    *[
        (method, path, R(PUBLIC, target="revising_service", anywhere=PUBLIC))
        for method, path in LISTED_READS
        if "document" not in path
    ],
    ("GET", "/documents/{document_id:int}", R(PROVIDER, target="revising_service")),
    ("GET", "/services/{service_id:int}", R(PROVIDER, target="revision_page")),
    ("GET", "/services/{service_id:int}/diff", R(PROVIDER, target="revision_diff")),
    ("GET", "/api/services/{service_id:int}/diff", R(PROVIDER, target="revision_diff")),
    # search and compare never show what is not listed (`hidden`: shown to no one)
    *[("GET", path, R(PUBLIC, target="unlisted_search", anywhere=PUBLIC)) for path in ("/services", "/api/search")],
    *[("GET", path, R(NONE, target="draft_comparison")) for path in ("/compare", "/compare/export", "/api/compare")],
    # a contract is drafted from a listed service only
    ("POST", "/api/contracts", R(NONE, target="unlisted_offer", body=contract_draft_json)),
    (
        "POST",
        "/contracts/new",
        R(NONE, target="unlisted_offer", body=lambda _w, _a, t: {k: str(v) for k, v in draft_body(t).items()}),
    ),
    ("GET", "/contracts/new", R(NONE, target="unlisted_offer_form")),
    # a contract names its agency's own awarded project, never another agency's
    (
        "POST",
        "/api/contracts",
        R(DRAFTERS, target="awarded_project", body=lambda _w, _a, t: {**draft_body(t), "project_id": t["project_id"]}),
    ),
    # the register holds signed contracts only
    ("GET", "/contracts/register/{number:str}", R(NONE, target="unsigned_contract")),
    ("GET", "/api/ocds/records/{ocid:str}", R(NONE, target="unsigned_contract")),
    *[
        ("GET", path, R(PUBLIC, target="unsigned_register", anywhere=PUBLIC))
        for path in ("/contracts/register", "/contracts/register.csv", "/api/contracts/register", "/api/ocds/releases")
    ],
    # a token is its user's own, not a colleague's
    ("GET", "/account/tokens/{token_id:int}/revoke", R(NONE, target="colleague_token")),
    ("POST", "/account/tokens/{token_id:int}/revoke", R(NONE, target="colleague_token", body=EMPTY)),
    ("DELETE", "/api/tokens/{token_id:int}", R(NONE, target="colleague_token", body=EMPTY)),
    # a signing key is its user's own, not a colleague's; so is a passkey's registration
    ("GET", "/account/signing-keys/{key_id:int}/remove", R(NONE, target="colleague_signing_key")),
    ("POST", "/account/signing-keys/{key_id:int}/remove", R(NONE, target="colleague_signing_key", body=EMPTY)),
    ("DELETE", "/api/signing-keys/{key_id:int}", R(NONE, target="colleague_signing_key", body=EMPTY)),
    ("POST", "/api/passkeys", R(NONE, target="colleague_passkey_registration", body=passkey_json)),
    # a signature's evidence is shown on its own contract only
    *[
        ("GET", path, R(NONE, target="signature_elsewhere"))
        for path in (
            "/contracts/{contract_id:int}/signatures/{signature_id:int}/evidence.json",
            "/api/contracts/{contract_id:int}/signatures/{signature_id:int}/evidence.json",
        )
    ],
    # lists show the caller's own organisation's objects (their `secret`), never another's
    *[("GET", path, R(PARTY, target="contract_listing", listing=True)) for path in ("/contracts", "/api/contracts")],
    *[
        ("GET", path, R(PARTY, target="invoice_listing", anywhere=OPERATOR, listing=True))
        for path in ("/invoices", "/invoices/export.csv", "/api/invoices")
    ],
    *[("GET", path, R(AGENCY, target="project_listing", listing=True)) for path in ("/projects", "/api/projects")],
    ("GET", "/provider/services", R(PROVIDER, target="service_listing", listing=True)),
    *[
        ("GET", path, R(COMMITTEE, target="case_listing", listing=True))
        for path in ("/committee/cases", "/api/committee/cases", "/committee/reviews", "/api/committee/reviews")
    ],
    *[
        ("GET", path, R(PROVIDER, target="case_listing", listing=True))
        for path in ("/provider/cases", "/api/provider/cases")
    ],
    *[
        ("GET", path, R(STAFF, target="case_listing", anywhere=STAFF, listing=True))
        for path in ("/committee/queue", "/api/committee/queue")
    ],
    *[
        ("GET", path, R(PROVIDER, target="certificate_listing", listing=True))
        for path in ("/provider/certificates", "/api/provider/certificates")
    ],
    *[
        ("GET", path, R(STAFF, target="certificate_listing", anywhere=STAFF, listing=True))
        for path in ("/committee/certificates", "/api/committee/certificates")
    ],
    *[("GET", path, R(SIGNED_IN, target="token_listing", listing=True)) for path in ("/account", "/api/tokens")],
    *[
        ("GET", path, R(SIGNED_IN, target="member_listing", listing=True))
        for path in ("/organisation", "/api/organisation")
    ],
    *[
        ("GET", path, R(COMMITTEE, target="tie_listing", listing=True))
        for path in ("/committee/ties", "/api/committee/ties")
    ],
    # a member sees the others' reviews only once its own is in; the provider never
    *[
        ("GET", path, R(COMMITTEE | PROVIDER, target="case_with_review", anywhere=STAFF))
        for path in (
            "/committee/cases/{case_id:int}",
            "/api/committee/cases/{case_id:int}",
            "/api/provider/cases/{case_id:int}",
        )
    ],
]


# --- the world: two organisations of each kind, a user of every role ----------------------------------------


@dataclass
class Actor:
    role: str
    user: User | None = None
    organisation: Organisation | None = None
    token: str = ""
    cookie: str = ""

    @property
    def principal(self) -> Principal:
        assert self.user is not None and self.organisation is not None
        return principal_of(self.user, self.organisation)


def principal_of(user: User, organisation: Organisation) -> Principal:
    return Principal(
        user.id,
        user.email,
        user.name,
        organisation.id,
        organisation.kind,
        organisation.name,
        user.role,
        None,
        "127.0.0.1",
    )  # type: ignore[arg-type]


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    client: AsyncTestClient[Litestar]
    orgs: dict[tuple[str, str], Organisation] = field(default_factory=dict)
    users: dict[tuple[str, str], User] = field(default_factory=dict)
    actors: dict[tuple[str, str], Actor] = field(default_factory=dict)
    offers: dict[str, tuple[int, int]] = field(default_factory=dict)
    reviewers: list[User] = field(default_factory=list)
    agency_domain: str = ""
    csrf_cookie: str = ""
    csrf_token: str = ""
    tables: list[str] = field(default_factory=list)

    def actor(self, role: str, side: str = "A") -> Actor:
        return self.actors[role, side]

    def principal(self, role: str, side: str) -> Principal:
        return self.actors[role, side].principal

    async def person(self, role: str, side: str, *, appoint: bool = True) -> Actor:
        """A user of `role` in the organisation of that role on `side`, signed in by cookie and token."""
        kind = KIND_OF[role]
        organisation = self.orgs[kind, side]
        user = await make_user(
            self.sessions,
            organisation,
            role=ROLE_IN_ORGANISATION[role],
            name=f"{role} {side} {unique()}",
            signing_limit=SIGNING_LIMITS.get(role, 0),
        )
        raw = new_token("mkt_")
        async with self.sessions() as session, session.begin():
            if kind == "committee" and appoint:
                today = clock.today()
                session.add(
                    Appointment(
                        user_id=user.id,
                        starts_on=today - timedelta(days=30),
                        ends_on=today + timedelta(days=700),
                        is_chair=role == "committee_chair",
                    )
                )  # type: ignore[arg-type]
            session.add(
                ApiToken(
                    user_id=user.id, name="matrix", token_hash=token_hash(raw), prefix=raw[:8], last_used_at=utcnow()
                )
            )  # type: ignore[arg-type]
            await session.flush()
            cookie = await auth.start_session(session, await session.get(User, user.id), "127.0.0.1", "matrix")  # type: ignore[arg-type]
        return Actor(role, user, organisation, raw, cookie)


async def build_world(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, client: AsyncTestClient[Litestar]
) -> World:
    w = World(sessions, settings, client)
    for kind in ("operator", "committee", "agency", "provider"):
        for side in ("A", "B"):
            w.orgs[kind, side] = await make_organisation(
                sessions,
                kind,
                name=f"{kind.title()} {side} {unique()}",
                contact_email=f"{kind}{side.lower()}@example.kr",
            )
    # ties are declared to a provider of its own, so that they never bar a member from the cases built here
    w.orgs["provider", "tied"] = await make_organisation(sessions, "provider", name=f"Tied Provider {unique()}")
    w.actors["anonymous", "A"] = w.actors["anonymous", "B"] = Actor("anonymous")
    for role in ROLES[1:]:
        for side in ("A", "B"):
            if KIND_OF[role] in ("committee", "operator") and side == "B" and role != "committee_member":
                continue  # one committee with one chair, one secretariat
            side_of_org = "A" if KIND_OF[role] == "committee" else side
            actor = await w.person(role, side_of_org)
            w.actors[role, side] = actor
            w.users[role, side] = actor.user  # type: ignore[assignment]
    for _ in range(2):
        w.reviewers.append((await w.person("committee_member", "A")).user)  # type: ignore[arg-type]
    for side in ("A", "B"):
        listed = await list_service(
            sessions, w.orgs["provider", side], f"Offer {side}", plans=[plan("Standard", "user_month", 10_000)]
        )
        async with sessions() as session:
            offer = await drafting.listed_offer(session, listed.id)  # type: ignore[arg-type]
        w.offers[side] = (listed.id, offer.plans[0].id)  # type: ignore[assignment]
    w.agency_domain = f"agency{unique()}.example.go.kr"
    async with sessions() as session, session.begin():
        session.add(AgencyDomain(domain=w.agency_domain, organisation_id=w.orgs["agency", "A"].id))  # type: ignore[arg-type]
    page = await client.get("/login")
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:300]
    w.csrf_token, w.csrf_cookie = match.group(1), client.cookies["csrftoken"]
    w.tables = [table.name for table in SQLModel.metadata.sorted_tables if table.name not in VOLATILE_TABLES]
    return w


# Rows written by any request, refused or not: sign-in sessions and the API rate-limit counts.
VOLATILE_TABLES = {"login_session"}


def _row_count(table: str) -> str:
    # A refusal writes its security event (`security.*`) by design; every other audit event counts.
    where = " WHERE action NOT LIKE 'security.%'" if table == "audit_event" else ""
    return f'(SELECT count(*) FROM "{table}"{where})'


async def fingerprint(w: World) -> tuple[int, ...]:
    """The number of rows in every table (the audit log among them, less its security events)."""
    async with w.sessions() as session:
        row = (await session.execute(sa.text("SELECT " + ", ".join(_row_count(name) for name in w.tables)))).one()
        return tuple(row)


def changes(w: World, before: tuple[int, ...], after: tuple[int, ...]) -> list[str]:
    return [f"{name} {a}->{b}" for name, a, b in zip(w.tables, before, after, strict=False) if a != b]


# --- the objects routes act on, built fresh for one side -----------------------------------------------------


class Builder:
    """`await Builder(w).build(target, side, actor)`: the path values (and body inputs) of a fresh object owned on `side`."""

    def __init__(self, w: World) -> None:
        self.w = w

    async def build(self, target: str, side: str, actor: Actor) -> dict[str, Any]:
        return await getattr(self, target)(side, actor)

    def owner_role(self, actor: Actor, default: str) -> str:
        return actor.role if (actor.role, "B") in self.w.users else default

    # market
    async def invitation(self, side: str, _actor: Actor) -> dict[str, Any]:
        raw = new_token()
        async with self.w.sessions() as session, session.begin():
            session.add(
                Invitation(
                    organisation_id=self.w.orgs["agency", side].id,
                    email=f"invited{unique()}@example.go.kr",
                    role="buyer",  # type: ignore[arg-type]
                    token_hash=token_hash(raw),
                    expires_at=utcnow() + timedelta(days=7),
                )
            )
        return {"token": raw}

    async def email_confirmation(self, side: str, _actor: Actor) -> dict[str, Any]:
        """A fresh self-registered user's confirmation link (opening it spends it, so one per call)."""
        organisation = self.w.orgs["agency", side]
        raw = new_token()
        async with self.w.sessions() as session, session.begin():
            user = await accounts.create_user(
                session,
                None,
                organisation=organisation,
                email=f"joiner{unique()}@example.go.kr",
                name="Joiner",
                password=PASSWORD,
                verified=False,
            )
            session.add(
                EmailVerification(
                    user_id=user.id, token_hash=token_hash(raw), expires_at=utcnow() + timedelta(hours=24)
                )
            )  # type: ignore[arg-type]
        return {"token": raw}

    async def password_reset(self, side: str, _actor: Actor) -> dict[str, Any]:
        user = await make_user(self.w.sessions, self.w.orgs["agency", side])
        raw = new_token()
        async with self.w.sessions() as session, session.begin():
            session.add(
                PasswordReset(user_id=user.id, token_hash=token_hash(raw), expires_at=utcnow() + timedelta(hours=1))
            )  # type: ignore[arg-type]
        return {"token": raw}

    async def token(self, side: str, actor: Actor) -> dict[str, Any]:
        """The caller's own token, or one of another user (of the same role elsewhere where there is one)."""
        user = (
            actor.user
            if side == "A" and actor.user is not None
            else self.w.users[self.owner_role(actor, "agency_admin"), "B"]
        )
        async with self.w.sessions() as session, session.begin():
            token = ApiToken(
                user_id=user.id, name=f"secret-token-{unique()}", token_hash=token_hash(new_token()), prefix="mkt_abcd"
            )  # type: ignore[arg-type]
            session.add(token)
            await session.flush()
            return {"token_id": token.id, "marker": token.name}

    async def token_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"secret": (await self.token(side, actor))["marker"]}

    async def member_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        """A member of the caller's organisation (or of the other one of its kind), by its e-mail address."""
        kind = KIND_OF.get(actor.role, "agency")
        # named to sort first, so the organisation's first page of members shows it however many the other rules made
        member = await make_user(
            self.w.sessions,
            self.w.orgs[kind, side],
            role="member",
            email=f"member{unique()}.{side.lower()}@{kind}.example.kr",
            name=f"Aaron {unique()}",
        )
        return {"secret": member.email}

    async def tie_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"secret": (await self.tie(side, actor))["starts_on"]}

    async def colleague_token(self, side: str, actor: Actor) -> dict[str, Any]:
        """A token of a colleague: in the caller's own organisation, or in the other one."""
        kind = KIND_OF.get(actor.role, "agency")
        colleague = await make_user(self.w.sessions, self.w.orgs[kind, side], role="member")
        async with self.w.sessions() as session, session.begin():
            token = ApiToken(
                user_id=colleague.id,
                name=f"colleague-token-{unique()}",
                token_hash=token_hash(new_token()),
                prefix="mkt_abcd",
            )  # type: ignore[arg-type]
            session.add(token)
            await session.flush()
            return {"token_id": token.id, "marker": token.name}

    async def signing_key(self, side: str, actor: Actor, *, user: User | None = None) -> dict[str, Any]:
        """The caller's own signing key, or one of another user (of the same role elsewhere where there is one)."""
        if user is None:
            user = (
                actor.user
                if side == "A" and actor.user is not None
                else self.w.users[self.owner_role(actor, "agency_admin"), "B"]
            )
        async with self.w.sessions() as session, session.begin():
            owner = principal_of(user, await session.get(Organisation, user.organisation_id))  # type: ignore[arg-type]
            key = await signing_keys.register_ed25519(
                session, owner, name=f"secret-key-{unique()}", public_key=public_key_pem()
            )
            return {"key_id": key.id, "marker": key.name}

    async def colleague_signing_key(self, side: str, actor: Actor) -> dict[str, Any]:
        kind = KIND_OF.get(actor.role, "agency")
        return await self.signing_key(
            side, actor, user=await make_user(self.w.sessions, self.w.orgs[kind, side], role="member")
        )

    async def passkey_registration(self, side: str, actor: Actor, *, user: User | None = None) -> dict[str, Any]:
        """A nonce issued to the caller (or to another user) and a passkey's answer to it."""
        if user is None:
            user = (
                actor.user
                if side == "A" and actor.user is not None
                else self.w.users[self.owner_role(actor, "agency_admin"), "B"]
            )
        async with self.w.sessions() as session, session.begin():
            owner = principal_of(user, await session.get(Organisation, user.organisation_id))  # type: ignore[arg-type]
            options = await signing_keys.passkey_options(session, self.w.settings, owner)
        return {
            "nonce": options["nonce"],
            "credential": SoftAuthenticator().register(options["publicKey"], signing_keys.origin(self.w.settings)),
        }

    async def colleague_passkey_registration(self, side: str, actor: Actor) -> dict[str, Any]:
        kind = KIND_OF.get(actor.role, "agency")
        return await self.passkey_registration(
            side, actor, user=await make_user(self.w.sessions, self.w.orgs[kind, side], role="member")
        )

    async def member(self, side: str, actor: Actor, *, active: bool = True) -> dict[str, Any]:
        kind = KIND_OF.get(actor.role, "agency")
        user = await make_user(self.w.sessions, self.w.orgs[kind, side], role="member")
        if not active:
            async with self.w.sessions() as session, session.begin():
                await session.execute(sa.update(User).where(User.id == user.id).values(active=False))
        return {"member_id": user.id}

    async def signer_member(self, side: str, actor: Actor) -> dict[str, Any]:
        """A signer in the caller's organisation (or the other one of its kind): an agency's signs within a limit."""
        kind = KIND_OF.get(actor.role, "agency")
        kind = kind if kind in ("agency", "provider") else "agency"
        user = await make_user(self.w.sessions, self.w.orgs[kind, side], role="signer")
        return {"member_id": user.id}

    async def disabled_member(self, side: str, actor: Actor) -> dict[str, Any]:
        return await self.member(side, actor, active=False)

    async def organisation(self, side: str, _actor: Actor, *, active: bool = True) -> dict[str, Any]:
        organisation = await make_organisation(self.w.sessions, "agency", name=f"Agency Fresh {side} {unique()}")
        if not active:
            async with self.w.sessions() as session, session.begin():
                await session.execute(
                    sa.update(Organisation).where(Organisation.id == organisation.id).values(active=False)
                )
        return {"organisation_id": organisation.id, "marker": organisation.name}

    async def inactive_organisation(self, side: str, actor: Actor) -> dict[str, Any]:
        return await self.organisation(side, actor, active=False)

    async def user(self, side: str, actor: Actor, *, active: bool = True) -> dict[str, Any]:
        member = await self.member(side, Actor("agency_admin"), active=active)
        return {"user_id": member["member_id"]}

    async def disabled_user(self, side: str, actor: Actor) -> dict[str, Any]:
        return await self.user(side, actor, active=False)

    async def domain(self, side: str, _actor: Actor) -> dict[str, Any]:
        async with self.w.sessions() as session, session.begin():
            domain = AgencyDomain(
                domain=f"fresh{unique()}.example.go.kr", organisation_id=self.w.orgs["agency", side].id
            )  # type: ignore[arg-type]
            session.add(domain)
            await session.flush()
            return {"domain_id": domain.id, "marker": domain.domain}

    async def committee_user(self, side: str, _actor: Actor) -> dict[str, Any]:
        user = await make_user(self.w.sessions, self.w.orgs["committee", "A"], role="member")
        return {"email": user.email}

    async def appointment(self, side: str, _actor: Actor) -> dict[str, Any]:
        user = await make_user(self.w.sessions, self.w.orgs["committee", "A"], role="member")
        async with self.w.sessions() as session, session.begin():
            appointment = Appointment(
                user_id=user.id,
                starts_on=clock.today() - timedelta(days=1),
                ends_on=clock.today() + timedelta(days=300),
            )  # type: ignore[arg-type]
            session.add(appointment)
            await session.flush()
            return {"appointment_id": appointment.id}

    # catalogue
    async def draft_service(self, side: str, _actor: Actor) -> dict[str, Any]:
        provider = self.w.principal("provider_admin", side)
        name = f"Secret Draft {side} {unique()}"
        async with self.w.sessions() as session, session.begin():
            created = await listings.create_service(
                session, provider, catalog_schemas.validate(catalog_schemas.ListingInput, complete_json(name=name))
            )
            storage = LocalStorage(self.w.settings.data_dir / "documents")
            document = await catalog_documents.upload(
                session, provider, storage, created.id, "service_definition", "definition.pdf", PDF
            )  # type: ignore[arg-type]
            editing = await listings.editing(session, provider, created.id)  # type: ignore[arg-type]
            return {
                "service_id": created.id,
                "document_id": document.id,
                "lock_version": editing.version.lock_version,
                "marker": name,
            }  # type: ignore[union-attr]

    async def submitted_service(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.draft_service(side, actor)
        async with self.w.sessions() as session, session.begin():
            await listings.submit(
                session, self.w.principal("provider_admin", side), made["service_id"], made["lock_version"]
            )
        return made

    async def listed_service(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.submitted_service(side, actor)
        async with self.w.sessions() as session, session.begin():
            await listings.list_version(session, SystemActor(email="committee"), made["service_id"])
        return {key: made[key] for key in ("service_id", "document_id")}

    async def revising_service(self, side: str, actor: Actor) -> dict[str, Any]:
        """A listed service (version 1) whose provider is preparing version 2 under a new name, with a new document."""
        made = await self.listed_service(side, actor)
        provider = self.w.principal("provider_admin", side)
        secret = f"Secret Revision {side} {unique()}"
        async with self.w.sessions() as session, session.begin():
            storage = LocalStorage(self.w.settings.data_dir / "documents")
            version = await listings.start_revision(session, provider, storage, made["service_id"])
            await listings.save_draft(session, provider, made["service_id"], version.lock_version, {"name": secret})
            document = await catalog_documents.upload(
                session, provider, storage, made["service_id"], "terms_of_use", "revised-terms.pdf", PDF
            )
        return {"service_id": made["service_id"], "document_id": document.id, "secret": secret}

    async def unlisted_search(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.submitted_service(side, actor)
        return {"query": "q=Secret", "hidden": made["marker"]}

    async def draft_comparison(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.draft_service(side, actor)
        listed = "&".join(f"ids={service_id}" for service_id, _plan in self.w.offers.values())
        return {"query": f"ids={made['service_id']}&{listed}", "hidden": made["marker"]}

    async def revision_page(self, side: str, actor: Actor) -> dict[str, Any]:
        return {**await self.revising_service(side, actor), "query": "version=2"}

    async def revision_diff(self, side: str, actor: Actor) -> dict[str, Any]:
        return {**await self.revising_service(side, actor), "query": "from=1&to=2"}

    async def project(self, side: str, _actor: Actor, *, ended: bool = False) -> dict[str, Any]:
        agency = self.w.principal("agency_admin", side)
        name = f"Secret Project {side} {unique()}"
        async with self.w.sessions() as session, session.begin():
            created = await projects.create_project(
                session, agency, projects.ProjectInput(name=name, query={"q": "cloud"})
            )
            if ended:
                await projects.end_search(session, agency, created.id, self.w.settings.base_url)  # type: ignore[arg-type]
            return {"project_id": created.id, "fmt": "csv", "marker": name}

    async def project_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"secret": (await self.project(side, actor))["marker"]}

    async def service_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"secret": (await self.draft_service(side, actor))["marker"]}

    async def ended_project(self, side: str, actor: Actor) -> dict[str, Any]:
        return await self.project(side, actor, ended=True)

    # committee
    async def new_case(self, side: str, _actor: Actor) -> dict[str, Any]:
        name = f"Secret Submission {side} {unique()}"
        _service, _version, case_id = await submitted_service(self.w.sessions, self.w.orgs["provider", side], name=name)
        return {"case_id": case_id, "marker": name}

    async def complete_case(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.new_case(side, actor)
        async with self.w.sessions() as session, session.begin():
            await cases.mark_complete(session, self.w.principal("operator", "A"), made["case_id"])
        return made

    def reviewer(self, side: str, actor: Actor) -> User:
        """The assigned member whose case it is: the caller on its own side when it sits on the committee."""
        return actor.user if side == "A" and actor.role in COMMITTEE else self.w.users["committee_member", side]  # type: ignore[return-value]

    def assigned(self, side: str, actor: Actor) -> list[User]:
        return [self.reviewer(side, actor), *self.w.reviewers]

    async def case_in_review(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.complete_case(side, actor)
        async with self.w.sessions() as session, session.begin():
            await cases.assign(
                session,
                self.w.principal("committee_chair", "A"),
                made["case_id"],
                [u.id for u in self.assigned(side, actor)],
            )  # type: ignore[misc]
        return {**made, "member_id": self.reviewer(side, actor).id}

    async def reviewed_case(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.case_in_review(side, actor)
        async with self.w.sessions() as session, session.begin():
            await reviews.submit_review(
                session,
                principal_of(self.reviewer(side, actor), self.w.orgs["committee", "A"]),
                made["case_id"],
                answers=PASSING,
            )
        return made

    async def case_with_review(self, side: str, actor: Actor) -> dict[str, Any]:
        """A case under review in which another assigned member has submitted a review with a comment."""
        made = await self.case_in_review(side, actor)
        comment = f"Secret review comment {unique()}"
        answers = {code: {**answer, "comment": comment} for code, answer in PASSING.items()}
        async with self.w.sessions() as session, session.begin():
            await reviews.submit_review(
                session,
                principal_of(self.w.reviewers[0], self.w.orgs["committee", "A"]),
                made["case_id"],
                answers=answers,
            )
        return {**made, "hidden": comment}

    async def case_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.reviewed_case(side, actor)
        return {"secret": made["marker"]}

    async def decided_case(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.case_in_review(side, actor)
        for user in self.assigned(side, actor):
            async with self.w.sessions() as session, session.begin():
                await reviews.submit_review(
                    session, principal_of(user, self.w.orgs["committee", "A"]), made["case_id"], answers=PASSING
                )
        return made

    async def tie(self, side: str, actor: Actor) -> dict[str, Any]:
        """The caller's own tie (a committee member's), or another member's; its start date is its own."""
        owner = (
            actor.principal if side == "A" and actor.role in COMMITTEE else self.w.principal("committee_member", side)
        )
        async with self.w.sessions() as session, session.begin():
            tie = await members.declare_tie(
                session,
                owner,
                provider_id=self.w.orgs["provider", "tied"].id,  # type: ignore[arg-type]
                kind="employment",
                starts_on=date(1990, 1, 1) + timedelta(days=unique()),
                note=f"Secret tie {unique()}",
            )
            return {"tie_id": tie.id, "marker": tie.note, "starts_on": tie.starts_on.isoformat()}

    async def meeting(self, side: str, _actor: Actor) -> dict[str, Any]:
        async with self.w.sessions() as session, session.begin():
            meeting = await meetings.create_meeting(
                session,
                self.w.principal("committee_chair", "A"),
                held_on=clock.today(),
                title=f"Session {side} {unique()}",
                quorum=1,
            )
            return {"meeting_id": meeting.id, "marker": meeting.title}

    async def meeting_and_decision(self, side: str, actor: Actor) -> dict[str, Any]:
        decided = await self.decided_case(side, actor)
        return {**await self.meeting(side, actor), "case_id": decided["case_id"]}

    async def meeting_with_decision(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.meeting_and_decision(side, actor)
        chair = self.w.principal("committee_chair", "A")
        async with self.w.sessions() as session, session.begin():
            await meetings.record_attendance(
                session, chair, made["meeting_id"], [self.w.users["committee_member", "A"].id]
            )  # type: ignore[list-item]
            await meetings.add_to_meeting(session, chair, made["meeting_id"], made["case_id"])
        return made

    async def certificate(self, side: str, actor: Actor) -> dict[str, Any]:
        decided = await self.decided_case(side, actor)
        async with self.w.sessions() as session:
            number = await session.scalar(
                sa.select(Certificate.number).where(Certificate.case_id == decided["case_id"])
            )
        assert number, "the decided case has no certificate"
        return {"number": number}

    # contracts
    async def offer(self, side: str, _actor: Actor) -> dict[str, Any]:
        service_id, plan_id = self.w.offers[side]
        return {"service_id": service_id, "plan_id": plan_id}

    async def offer_form(self, side: str, actor: Actor) -> dict[str, Any]:
        service_id, plan_id = self.w.offers[side]
        return {"query": f"service_id={service_id}&plan_id={plan_id}"}

    async def comparison(self, _side: str, _actor: Actor) -> dict[str, Any]:
        return {"query": "&".join(f"ids={service_id}" for service_id, _plan in self.w.offers.values())}

    async def draft_contract(self, side: str, actor: Actor, **terms: Any) -> dict[str, Any]:
        reference = f"SECRET-{side}-{unique()}"
        values = {**draft_body(await self.offer(side, actor)), "budget_reference": reference, **terms}
        async with self.w.sessions() as session, session.begin():
            contract = await drafting.draft(session, self.w.principal("agency_buyer", side), DraftInput(**values))
            version = await session.get(ContractVersion, contract.current_version_id)
            return {
                **await self.offer(side, actor),
                "contract_id": contract.id,
                "lock_version": version.lock_version,
                "number": version.number,  # type: ignore[union-attr]
                "marker": reference,
            }

    async def sent_contract(self, side: str, actor: Actor, **terms: Any) -> dict[str, Any]:
        made = await self.draft_contract(side, actor, **terms)
        async with self.w.sessions() as session, session.begin():
            version = await drafting.send(
                session,
                self.w.principal("agency_buyer", side),
                contract_documents.store_for(self.w.settings),
                made["contract_id"],
            )
            return {**made, "number": version.number, "sha256": version.document_sha256}

    async def declined_contract(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.sent_contract(side, actor)
        async with self.w.sessions() as session, session.begin():
            await lifecycle.decline(
                session, self.w.principal("provider_admin", side), made["contract_id"], "Wrong price"
            )
        return made

    async def active_contract(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.sent_contract(side, actor, starts_on=f"{YEAR}-01-01", ends_on=f"{YEAR}-12-31")
        for role in ("provider_signer", "agency_signer"):
            await sign_as(
                self.w.sessions,
                self.w.settings,
                self.w.principal(role, side),
                made["contract_id"],
                today=date(2026, 1, 1),
            )
        async with self.w.sessions() as session:
            contract = await session.get(Contract, made["contract_id"])
        return {**made, "number": contract.number, "ocid": f"{self.w.settings.ocid_prefix}-{contract.number}"}  # type: ignore[union-attr]

    async def signature(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.active_contract(side, actor)
        async with self.w.sessions() as session:
            signature_id = await session.scalar(
                sa.select(Signature.id).where(Signature.contract_id == made["contract_id"]).order_by(Signature.id)
            )
        return {**made, "signature_id": signature_id}

    async def signature_elsewhere(self, side: str, actor: Actor) -> dict[str, Any]:
        """A signature of side A's contract asked for under another contract of side A."""
        other = await self.sent_contract("A", actor)
        return {**await self.signature(side, actor), "contract_id": other["contract_id"]}

    async def unlisted_offer(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.submitted_service(side, actor)
        async with self.w.sessions() as session:
            plan_id = await session.scalar(
                sa.text(
                    "SELECT p.id FROM catalog_plan p JOIN catalog_service_version v ON v.id = p.version_id WHERE v.service_id = :s ORDER BY p.id"
                ),
                {"s": made["service_id"]},
            )
        return {"service_id": made["service_id"], "plan_id": plan_id}

    async def unlisted_offer_form(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.unlisted_offer(side, actor)
        return {"query": f"service_id={made['service_id']}&plan_id={made['plan_id']}"}

    async def awarded_project(self, side: str, actor: Actor) -> dict[str, Any]:
        """An ended project awarded to the side's listed offer, from which the agency drafts its contract."""
        agency = self.w.principal("agency_admin", side)
        offer = await self.offer(side, actor)
        async with self.w.sessions() as session, session.begin():
            created = await projects.create_project(
                session, agency, projects.ProjectInput(name=f"Award {side} {unique()}", query={"q": f"Offer {side}"})
            )
            await projects.end_search(session, agency, created.id, self.w.settings.base_url)  # type: ignore[arg-type]
            await projects.record_outcome(
                session,
                agency,
                created.id,
                projects.OutcomeInput(  # type: ignore[arg-type]
                    outcome="awarded", service_id=offer["service_id"], reason="Best value"
                ),
            )
            return {**offer, "project_id": created.id}

    async def unsigned_contract(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.sent_contract(side, actor)
        async with self.w.sessions() as session:
            contract = await session.get(Contract, made["contract_id"])
        return {"number": contract.number, "ocid": f"{self.w.settings.ocid_prefix}-{contract.number}"}  # type: ignore[union-attr]

    async def unsigned_register(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"hidden": (await self.unsigned_contract(side, actor))["number"]}

    async def contract_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"secret": (await self.unsigned_contract(side, actor))["number"]}

    async def invoice_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"secret": (await self.invoice(side, actor))["marker"]}

    async def certificate_listing(self, side: str, actor: Actor) -> dict[str, Any]:
        return {"secret": (await self.certificate(side, actor))["number"]}

    async def registered_contract(self, side: str, actor: Actor) -> dict[str, Any]:
        return await self.active_contract(side, actor)

    async def invoice(self, side: str, actor: Actor) -> dict[str, Any]:
        made = await self.active_contract(side, actor)
        async with self.w.sessions() as session, session.begin():
            await invoices.issue_due_invoices(session, self.w.settings, date(2026, 3, 15))
        async with self.w.sessions() as session:
            invoice = await session.scalar(
                sa.select(Invoice).where(Invoice.contract_id == made["contract_id"]).order_by(Invoice.id)
            )
        assert invoice is not None
        return {"invoice_id": invoice.id, "marker": invoice.number}

    # framework
    async def static_file(self, _side: str, _actor: Actor) -> dict[str, Any]:
        return {"file_path": "market.css"}

    async def schema_path(self, _side: str, _actor: Actor) -> dict[str, Any]:
        return {"path": "nothing-here"}


# --- calling a route as a role ---------------------------------------------------------------------------

PARAM = re.compile(r"\{(\w+):\w+\}")
REFUSED = {401, 403, 404}


def route_table(app: Litestar) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, HEAD and OPTIONS aside."""
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in set(getattr(handler, "http_methods", ())) - {"HEAD", "OPTIONS"}:
                found.add((method, route.path))
    return sorted(found, key=lambda item: (item[1], item[0]))


def fill(path: str, values: dict[str, Any]) -> str:
    filled = PARAM.sub(lambda match: str(values[match.group(1)]), path)
    return f"{filled}?{values['query']}" if "query" in values else filled


async def call(w: World, actor: Actor, method: str, path: str, body: dict[str, Any] | None) -> httpx.Response:
    w.client.cookies.clear()  # each call carries its caller's cookies only, never those an earlier answer set
    headers: dict[str, str] = {}
    if path.startswith("/api"):
        if actor.token:
            headers["Authorization"] = f"Bearer {actor.token}"
    else:
        headers["Cookie"] = f"csrftoken={w.csrf_cookie}" + (f"; market_session={actor.cookie}" if actor.cookie else "")
    if method == "GET":
        return await w.client.get(path, headers=headers, follow_redirects=False)
    body = dict(body or {})
    files = body.pop("files", None)
    if files is not None:
        data = {key: str(value) for key, value in body.pop("data", {}).items()}
        if not path.startswith("/api"):
            data["_csrf_token"] = w.csrf_token
        return await w.client.request(method, path, data=data, files=files, headers=headers, follow_redirects=False)
    if path.startswith(("/api", "/webhooks")):
        return await w.client.request(
            method, path, json=body if body or method != "DELETE" else None, headers=headers, follow_redirects=False
        )
    return await w.client.request(
        method, path, data={"_csrf_token": w.csrf_token, **body}, headers=headers, follow_redirects=False
    )


def brief(response: httpx.Response) -> str:
    """The problem's detail, or the page's title and first error."""
    text = response.text
    if "<html" in text:
        found = re.findall(r'<title>(.*?)</title>|class="(?:error|flash)[^"]*"[^>]*>([^<]*)<', text, re.S)
        text = " | ".join(part for match in found for part in match if part)
    return " ".join(text.split())[:300]


def accepted(response: httpx.Response, rule: Rule) -> bool:
    if response.status_code in rule.ok:
        return True
    if response.status_code == 303:
        return not response.headers.get("location", "").startswith("/login")
    return 200 <= response.status_code < 300


def refused(response: httpx.Response) -> bool:
    if response.status_code in (302, 303):
        return response.headers.get("location", "").startswith("/login")
    return response.status_code in REFUSED


async def check(w: World, builder: Builder, method: str, path: str, rule: Rule) -> list[str]:
    """Every role on the other organisation's object, then on its own; the problems found.

    The roles the rule refuses go first: a refusal changes nothing, so they share one object of each side.
    An accepted change spends the object it changed; the next role gets a fresh one.
    """
    problems: list[str] = []
    writes = method != "GET"

    # Refusals are checked for changes in runs: the row counts before the first refusal of a run and after its
    # last, the run ending before anything is written on purpose (an object built, an accepted call).
    baseline: list[tuple[int, ...]] = []
    refusals: list[str] = []

    async def settle() -> None:
        if refusals:
            changed = changes(w, baseline[0], await fingerprint(w))
            if changed:
                problems.append(f"refused calls changed {changed}: " + "; ".join(refusals))
        baseline.clear()
        refusals.clear()

    async def attempt(actor: Actor, values: dict[str, Any], allowed: bool, where: str) -> None:
        if allowed or rule.fresh_session:
            await settle()
        if rule.fresh_session and actor.user is not None:
            actor = await w.person(actor.role, "A")
        if not allowed and not baseline:
            baseline.append(await fingerprint(w))
        body = rule.body(w, actor, values) if rule.body else None
        url = fill(path, values)
        response = await call(w, actor, method, url, body)
        label = f"{method} {path} as {actor.role} on {where} ({url})"
        secret = values.get("secret")
        if (
            secret
            and secret in response.text
            and not ((where == OWN and actor.role in rule.who) or actor.role in rule.anywhere)
        ):
            problems.append(f"{label}: shows what only the owner may see")
        hidden = values.get("hidden")
        if hidden and hidden in response.text:
            problems.append(f"{label}: shows {hidden!r}, which no one may see here")
        if (
            rule.listing
            and secret
            and where == OWN
            and actor.role in rule.who
            and accepted(response, rule)
            and secret not in response.text
        ):
            problems.append(f"{label}: does not list the caller's own {secret!r}, so the list proves nothing")
        if allowed:
            if not accepted(response, rule):
                problems.append(
                    f"{label}: refused {response.status_code} {response.headers.get('location', '')}: {brief(response)}"
                )
            return
        refusals.append(label)
        if not refused(response):
            problems.append(
                f"{label}: answered {response.status_code} {response.headers.get('location', '')}: {brief(response)}"
            )
        marker = values.get("marker")
        if marker and marker in response.text:
            problems.append(f"{label}: the refusal shows the object's content")

    if rule.target is None:
        for role in ROLES:
            await attempt(w.actor(role), {}, role in rule.who, "no object")
        await settle()
        return problems

    unspent: dict[tuple[str, str], dict[str, Any]] = {}

    async def take(side: str, actor: Actor) -> dict[str, Any]:
        if rule.target in PER_ACTOR:
            await settle()
            return await builder.build(rule.target, side, actor)  # type: ignore[arg-type]
        key = (side, actor.role if rule.target in PER_REVIEWER and side == "A" and actor.role in COMMITTEE else "")
        if key not in unspent:
            await settle()
            unspent[key] = await builder.build(rule.target, side, actor)  # type: ignore[arg-type]
        return unspent[key]

    def spend(side: str) -> None:
        for key in [key for key in unspent if key[0] == side]:
            del unspent[key]

    for role in sorted(ROLES, key=lambda role: role in rule.who or role in rule.anywhere):
        actor = w.actor(role)
        allowed_there = role in rule.anywhere or (rule.listing and role in rule.who)
        allowed_here = role in rule.who or allowed_there
        await attempt(actor, await take("B", actor), allowed_there, OTHER)
        if allowed_there and writes:
            spend("B")
        await attempt(actor, await take("A", actor), allowed_here, OWN)
        if allowed_here and writes:
            spend("A")
    await settle()
    return problems


OWN, OTHER = "its own organisation's object", "the other organisation's object"
# Objects that belong to one user (tokens) or are made in the caller's own organisation (members).
PER_ACTOR = {
    "email_confirmation",
    "token",
    "colleague_token",
    "signing_key",
    "colleague_signing_key",
    "passkey_registration",
    "colleague_passkey_registration",
    "member",
    "signer_member",
    "disabled_member",
    "tie",
    "token_listing",
    "member_listing",
    "tie_listing",
}
# Cases a committee caller works on as their assigned reviewer.
PER_REVIEWER = {"case_in_review", "reviewed_case", "case_listing"}


# --- the tests -------------------------------------------------------------------------------------------

GROUPS = 12


def test_every_route_is_classified(app: Litestar) -> None:
    """A route the rules do not name, or a changing route without a body, fails here by name."""
    table = route_table(app)
    missing = [f"{method} {path}" for method, path in table if (method, path) not in RULES]
    assert not missing, "routes without a rule in RULES:\n" + "\n".join(missing)
    bodiless = [f"{method} {path}" for method, path in table if method != "GET" and RULES[method, path].body is None]
    assert not bodiless, "changing routes without a body in RULES:\n" + "\n".join(bodiless)
    stale = [f"{method} {path}" for method, path in RULES if (method, path) not in table]
    assert not stale, "rules for routes the app no longer has:\n" + "\n".join(stale)
    rules = [(method, path, rule) for (method, path), rule in RULES.items()] + ALSO
    untargeted = [f"{method} {path}" for method, path, rule in rules if PARAM.search(path) and rule.target is None]
    assert not untargeted, "routes with path values but no object to fill them from:\n" + "\n".join(untargeted)
    unknown = [
        f"{method} {path}: {rule.target}"
        for method, path, rule in rules
        if rule.target and not hasattr(Builder, rule.target)
    ]
    assert not unknown, "rules naming objects nobody builds:\n" + "\n".join(unknown)


@pytest.fixture(scope="module", autouse=True)
def business_day() -> Iterator[None]:
    """The module's tests live on one clock from the tests' day on (instead of each going back to its start, see
    tests/conftest.py): what a group builds is newer than what the groups before it built, as lists sort it."""
    with clock.travel(TEST_DAY):
        yield


@pytest.fixture(scope="module")
def shared_settings(migrated_database: str, base_settings: Settings) -> Settings:
    """The run's settings, the database and the data folder emptied once for the module: its groups share one world."""
    empty_database(migrated_database)
    empty_data_dir(base_settings)
    return base_settings


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(app: Litestar, shared_settings: Settings, business_day: None) -> AsyncIterator[World]:
    """Built once for the module: a check leaves the world's users and objects as they were (changing calls get
    objects and users of their own), so every group starts from it."""
    # A pooled engine of the module's own (the app keeps its own on its own loop): thousands of short sessions.
    engine = create_engine(shared_settings.database_url)
    try:
        async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
            yield await build_world(app.state["parts"].sessions(engine), shared_settings, client)
    finally:
        await engine.dispose()


# An upload refused by a guard is never read, so Litestar leaves its spooled file for the collector to close.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <function SpooledTemporaryFile.__del__:pytest.PytestUnraisableExceptionWarning"
)
@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("group", range(GROUPS))
async def test_no_role_reaches_beyond_its_rule(app: Litestar, world: World, group: int) -> None:
    problems: list[str] = []
    builder = Builder(world)
    checks = [(method, path, RULES[method, path]) for method, path in route_table(app)] + ALSO
    for method, path, rule in checks[group::GROUPS]:
        problems += await check(world, builder, method, path, rule)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
