"""The contracts' pages and /api handlers, gathered from the modules that hold them."""

from __future__ import annotations

from typing import Any

from contracts import controllers_contracts, controllers_payments, controllers_register, notices  # noqa: F401  notices subscribes


def routes() -> list[Any]:
    return [*controllers_contracts.routes(), *controllers_payments.routes(), *controllers_register.routes()]
