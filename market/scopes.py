"""ASGI scopes and messages are plain dicts. Litestar types them as TypedDicts, which name neither the keys our
middleware adds (the client behind a proxy, the request's language, a failed commit) nor every message's fields."""

from __future__ import annotations

from typing import Any, cast

from litestar.types import Message, Scope


def plain(mapping: Scope | Message) -> dict[str, Any]:
    """The scope or message as the dict it is, to read and write any key."""
    return cast("dict[str, Any]", mapping)
