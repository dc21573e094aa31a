"""Role guards for routes, and the one object-level check every service uses."""

from __future__ import annotations

from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from market.auth import Principal
from market.errors import Forbidden, NotAuthenticated, NotFound, Refused
from market.i18n import _

Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


def current(connection: ASGIConnection) -> Principal:
    user = connection.scope.get("user")
    if user is None:
        raise NotAuthenticated(_("Sign in to continue."))
    return user


def signed_in(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    current(connection)


def kind(*kinds: str) -> Guard:
    """Only users of organisations of these kinds (agency, provider, committee, operator)."""

    def guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
        if not current(connection).is_kind(*kinds):
            raise Forbidden(_("This page is for other roles."))

    return guard


def org_admin(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
    if not current(connection).is_admin:
        raise Forbidden(_("Only an administrator of your organisation can do this."))


operator = kind("operator")


def ensure_owner(principal: Principal, owner_organisation_id: int | None, *, operators_may: bool = False) -> None:
    """Object-level check: the row must belong to the principal's organisation.

    Another organisation's object answers 404, so its existence is not disclosed, and leaves a security event.
    """
    if operators_may and principal.is_kind("operator"):
        return
    if owner_organisation_id is None:
        raise NotFound(_("No such object."))
    if owner_organisation_id != principal.organisation_id:
        raise Refused(_("No such object."))
