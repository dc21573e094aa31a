"""Real Chromium against a real server: `market serve` on a fresh SQLite database loaded with the demo data.

The server is started once per run as its own process, exactly as an operator would start it; each test
gets a fresh browser context (no cookies shared between tests). Payments are in Stripe mode against the
local Stripe stand-in (tests/contracts/stripe_standin.py), which runs for the whole session; a test runs
`market` commands (the sweep, the worker) against the same database with `market_command`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

from tests.contracts.stripe_standin import API_KEY, WEBHOOK_SECRET, StripeStandIn, running_standin
from tests.processes import MARKET, ROOT, free_port, wait_until_healthy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _market(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [str(MARKET), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode:
        pytest.fail(
            f"`market {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False
        )
    return done.stdout


@pytest.fixture(scope="session")
def stripe_standin() -> Iterator[StripeStandIn]:
    """The Stripe stand-in the server's payments talk to, for the whole run."""
    with running_standin() as standin:
        yield standin


@pytest.fixture(scope="session")
def server_env(tmp_path_factory: pytest.TempPathFactory, stripe_standin: StripeStandIn) -> dict[str, str]:
    """The environment `market serve` runs with: its database, data directory, address and Stripe settings."""
    data_dir = tmp_path_factory.mktemp("e2e")
    url = f"http://localhost:{free_port()}"  # a host name: browsers refuse an IP address as a passkey's relying party
    env = {key: value for key, value in os.environ.items() if not key.startswith("MARKET_")}
    env.update(
        MARKET_DATABASE_URL=f"sqlite+aiosqlite:///{data_dir / 'market.db'}",
        MARKET_DATA_DIR=str(data_dir),
        MARKET_WORKER="off",  # outbox jobs run when a test runs `market worker --once`
        MARKET_BASE_URL=url,
        MARKET_LOG_LEVEL="WARNING",
        MARKET_STRIPE_API_KEY=API_KEY,
        MARKET_STRIPE_API_BASE=stripe_standin.url,
        MARKET_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    return env


@pytest.fixture(scope="session")
def market_command(server_env: dict[str, str]) -> Callable[..., str]:
    """Run `market <args>` against the server's database and settings; its output, or the test fails."""
    return lambda *args: _market(server_env, *args)


@pytest.fixture(scope="session")
def server(server_env: dict[str, str]) -> Iterator[str]:
    """The base URL of a running `market serve` with the demo data; stopped at the end of the run."""
    env = server_env
    data_dir = Path(env["MARKET_DATA_DIR"])
    url = env["MARKET_BASE_URL"]
    port = int(url.rsplit(":", 1)[1])
    _market(env, "db", "upgrade")
    _market(env, "demo")
    log = data_dir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(MARKET), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(process, url, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser, server: str) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=server, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = await context.new_page()
    yield page
    await context.close()
