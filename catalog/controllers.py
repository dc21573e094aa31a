"""The catalogue's pages and API: listings here, search (when present) from its own module."""

from __future__ import annotations

import importlib
from typing import Any


def routes() -> list[Any]:
    from catalog import controllers_listings

    handlers: list[Any] = list(controllers_listings.routes)
    try:
        controllers_search = importlib.import_module("catalog.controllers_search")
    except ModuleNotFoundError as exc:
        if exc.name != "catalog.controllers_search":
            raise
    else:
        handlers.extend(controllers_search.routes)
    return handlers
