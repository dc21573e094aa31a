"""The client address (`market.forwarded`): the socket's peer, unless the peer is one of MARKET_TRUSTED_PROXIES;
then X-Forwarded-For read from the right gives the first address that is not a trusted proxy. Failed sign-ins, the
audit trail and the API's rate limit all count under that one address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar import Litestar, Request, get
from litestar.testing import AsyncTestClient

from market.app import create_app
from market.auth import client_ip
from market.forwarded import decide
from market.models import AuditEvent, LoginFailure
from market.settings import Settings, SettingsError
from tests.helpers import Browserless, make_organisation, make_user

PROXIES = ("10.0.0.0/8", "192.0.2.1")


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not a proxy of ours: its header is ignored
        ("10.0.0.5", "", "10.0.0.5"),  # a trusted proxy that says nothing is the client
        ("10.0.0.5", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.5", "1.1.1.1, 198.51.100.7", "198.51.100.7"),  # what the client wrote itself stays to the left
        ("10.0.0.5", "198.51.100.7, 10.2.3.4, 192.0.2.1", "198.51.100.7"),  # through a chain of our proxies
        ("10.0.0.5", "10.9.9.9", "10.9.9.9"),  # nothing but proxies: the farthest one
        ("10.0.0.5", "198.51.100.7, not-an-address", "10.0.0.5"),  # garbage: the proxy that forwarded it
        ("10.0.0.5", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_is_the_first_address_not_a_trusted_proxy_from_the_right(
    peer: str, forwarded_for: str, client: str
) -> None:
    assert decide(peer, forwarded_for, "", PROXIES)[0] == client


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() -> None:
    assert decide("127.0.0.1", "198.51.100.7", "https", ()) == ("127.0.0.1", None)


def test_the_scheme_is_believed_from_a_trusted_proxy_only() -> None:
    assert decide("10.0.0.5", "", "https", PROXIES)[1] == "https"
    assert decide("203.0.113.9", "", "https", PROXIES)[1] is None
    assert decide("10.0.0.5", "", "gopher", PROXIES)[1] is None


def test_the_setting_lists_addresses_and_networks_and_refuses_anything_else(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"MARKET_DATA_DIR": str(tmp_path), "MARKET_TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.1 ,::1"}
    )
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.0.2.1", "::1")
    assert Settings.from_env({"MARKET_DATA_DIR": str(tmp_path)}).trusted_proxies == ()
    with pytest.raises(SettingsError, match="MARKET_TRUSTED_PROXIES"):
        Settings.from_env({"MARKET_DATA_DIR": str(tmp_path), "MARKET_TRUSTED_PROXIES": "proxy.example.kr"})


class FromPeer:
    """The app as a server would call it from `peer` (the test client's own peer is not an IP address)."""

    def __init__(self, app: Litestar, peer: str) -> None:
        self.app, self.peer = app, peer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": (self.peer, 40000)}
        await self.app(scope, receive, send)


@get("/test/whoami", include_in_schema=False)
async def whoami(request: Request) -> dict[str, str]:
    return {
        "client_ip": client_ip(request),
        "host": request.client.host if request.client else "",
        "scheme": request.url.scheme,
    }


async def served(settings: Settings, peer: str, proxies: tuple[str, ...]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    app = create_app(settings.with_(trusted_proxies=proxies), extra_routes=[whoami])
    async with AsyncTestClient(app=FromPeer(app, peer), base_url="http://testserver.local") as client:  # type: ignore[arg-type]
        yield client


async def test_a_forwarded_address_from_an_untrusted_peer_is_ignored_everywhere(
    settings: Settings, sessions: Any
) -> None:
    user = await make_user(sessions, await make_organisation(sessions, "agency"))
    async for client in served(settings, "203.0.113.9", ()):
        spoof = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
        assert (await client.get("/test/whoami", headers=spoof)).json() == {
            "client_ip": "203.0.113.9",
            "host": "203.0.113.9",
            "scheme": "http",
        }
        client.headers.update(spoof)
        assert (await Browserless(client, sessions).login(user.email, "wrong-password")).status_code == 401
    async with sessions() as session:
        assert (await session.scalar(sa.select(LoginFailure.ip))) == "203.0.113.9"
        assert (
            await session.scalar(sa.select(AuditEvent.ip).where(AuditEvent.action == "security.login_failed"))
        ) == "203.0.113.9"


async def test_a_trusted_proxy_names_the_client_for_throttling_and_the_audit_trail(
    settings: Settings, sessions: Any
) -> None:
    user = await make_user(sessions, await make_organisation(sessions, "agency"))
    async for client in served(settings, "10.0.0.5", PROXIES):
        client.headers.update({"X-Forwarded-For": "1.1.1.1, 198.51.100.7", "X-Forwarded-Proto": "https"})
        assert (await client.get("/test/whoami")).json() == {
            "client_ip": "198.51.100.7",
            "host": "198.51.100.7",
            "scheme": "https",
        }
        assert (await Browserless(client, sessions).login(user.email, "wrong-password")).status_code == 401
    async with sessions() as session:
        assert (await session.scalar(sa.select(LoginFailure.ip))) == "198.51.100.7"
        assert (
            await session.scalar(sa.select(AuditEvent.ip).where(AuditEvent.action == "security.login_failed"))
        ) == "198.51.100.7"


async def test_the_api_rate_limit_counts_per_forwarded_client(settings: Settings) -> None:
    limited = settings.with_(api_requests_per_minute=2)
    async for client in served(limited, "10.0.0.5", PROXIES):
        first = {"X-Forwarded-For": "198.51.100.7"}
        assert [(await client.get("/api/search", headers=first)).status_code for _ in range(3)] == [200, 200, 429]
        assert (await client.get("/api/search", headers={"X-Forwarded-For": "198.51.100.8"})).status_code == 200
