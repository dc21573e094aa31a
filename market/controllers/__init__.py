"""The shell's pages and API."""

from __future__ import annotations

from typing import Any


def routes() -> list[Any]:
    from market.controllers import account, home, operator, organisation, registration, signin

    return [*home.routes, *signin.routes, *registration.routes, *account.routes, *organisation.routes, *operator.routes]
