"""What the tests need to run the marketplace as real processes: the `market` command, a free loopback port,
the environment a command runs with, and waiting until a served process answers its health check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from market import clock
from tests.helpers import TEST_DAY

ROOT = Path(__file__).resolve().parents[1]
MARKET = Path(sys.executable).with_name("market")
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli_env(database_url: str, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment with the database, data folder and any `MARKET_*` setting given by name."""
    env = {
        **os.environ,
        "MARKET_DATABASE_URL": database_url,
        "MARKET_DATA_DIR": str(data_dir),
        "MARKET_LOG_LEVEL": "WARNING",
    }
    # on the tests' day, also when started outside a test (a module's servers): the clock's moved offset, or the day's
    env.setdefault(clock.OFFSET_VARIABLE, str((TEST_DAY - datetime.now(UTC)).total_seconds()))
    env.update({f"MARKET_{name.upper()}": value for name, value in settings.items()})
    return env


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
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
