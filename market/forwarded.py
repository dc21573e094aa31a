"""Who is at the other end: the one place that decides a request's client address and scheme.

The socket's peer is the client, unless the peer is one of `MARKET_TRUSTED_PROXIES`: then `X-Forwarded-For` is
read from the right, each trusted proxy handing over to the address before it, and the first address that is
not a trusted proxy is the client; `X-Forwarded-Proto` gives the scheme. A header sent by anyone else is
ignored, so a client cannot choose the address its failed sign-ins, rate limit and audit events are counted
under. Throttling, the API's rate limit and the audit trail all ask `client_address`.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from litestar.types import ASGIApp, Receive, Scope, Send

from market.scopes import plain

CLIENT_KEY = "market_client_address"  # scope key: the address decided for this request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def _valid(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def decide(
    peer: str, forwarded_for: str, forwarded_proto: str, trusted_proxies: tuple[str, ...]
) -> tuple[str, str | None]:
    """(client address, scheme or None to keep the connection's) from the peer and what it forwarded."""
    trusted = networks(trusted_proxies)
    if not trusted or not _trusted(peer, trusted):
        return peer, None
    client = peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
        if not _valid(hop):
            break  # garbage from beyond the last trusted proxy: the proxy that forwarded it is what we know
        client = hop
        if not _trusted(hop, trusted):
            break
    proto = forwarded_proto.split(",")[-1].strip().lower()
    return client, proto if proto in ("http", "https") else None


def _header(scope: Scope, name: bytes) -> str:
    values = [value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == name]
    return ",".join(values)


def client_address(scope: Scope) -> str:
    """The request's client address, decided once (and kept in the scope)."""
    if CLIENT_KEY in scope:
        return plain(scope)[CLIENT_KEY]
    _decide_for(scope)
    return plain(scope)[CLIENT_KEY]


def _decide_for(scope: Scope) -> str | None:
    client = scope.get("client")
    peer = client[0] if client else ""
    app = scope.get("litestar_app")
    trusted = app.state["settings"].trusted_proxies if app is not None else ()
    address, scheme = decide(peer, _header(scope, b"x-forwarded-for"), _header(scope, b"x-forwarded-proto"), trusted)
    plain(scope)[CLIENT_KEY] = address
    return scheme


class ForwardedMiddleware:
    """First of all: the client address and scheme a trusted proxy forwarded replace the socket's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and CLIENT_KEY not in scope:
            scheme = _decide_for(scope)
            client = scope.get("client")
            if plain(scope)[CLIENT_KEY] != (client[0] if client else ""):
                scope["client"] = (plain(scope)[CLIENT_KEY], 0)
            if scheme:
                scope["scheme"] = scheme if scope["type"] == "http" else {"http": "ws", "https": "wss"}[scheme]
        await self.app(scope, receive, send)
