"""Real Chromium against a real server: `market serve` on a fresh SQLite database loaded with the demo data.

The server is started once per run as its own process, exactly as an operator would start it; each test
gets a fresh browser context (no cookies shared between tests).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
MARKET = Path(sys.executable).with_name("market")
ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _market(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([str(MARKET), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode:
        pytest.fail(f"`market {' '.join(args)}` failed ({done.returncode}):\n{done.stdout}\n{done.stderr}", pytrace=False)


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`market serve` exited with {process.returncode}:\n{log.read_text()}", pytrace=False)
        try:
            answer = httpx.get(f"{url}/healthz", timeout=2)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text}"
        except httpx.TransportError as exc:
            last = type(exc).__name__
        time.sleep(0.1)  # poll interval, not a guess at readiness
    pytest.fail(f"`market serve` not healthy after {STARTUP_SECONDS}s ({last}):\n{log.read_text()}", pytrace=False)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running `market serve` with the demo data; stopped at the end of the run."""
    data_dir = tmp_path_factory.mktemp("e2e")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("MARKET_")}
    env.update(
        MARKET_DATABASE_URL=f"sqlite+aiosqlite:///{data_dir / 'market.db'}",
        MARKET_DATA_DIR=str(data_dir),
        MARKET_WORKER="off",
        MARKET_BASE_URL=url,
        MARKET_LOG_LEVEL="WARNING",
    )
    _market(env, "db", "upgrade")
    _market(env, "demo")
    log = data_dir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(MARKET), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, url, log)
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
