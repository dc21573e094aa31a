"""The marketplace's one clock: the business day in MARKET_TIMEZONE, moved by tests, handed to processes."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from market import clock
from market.settings import Settings, SettingsError
from tests.processes import ROOT

PACKAGES = ("market", "catalog", "committee", "contracts")
SEOUL = ZoneInfo("Asia/Seoul")


def test_the_business_day_is_the_day_in_the_marketplaces_time_zone() -> None:
    assert clock.today(SEOUL, datetime(2026, 2, 28, 15, 0, tzinfo=UTC)) == date(2026, 3, 1)  # midnight in Seoul
    assert clock.today(SEOUL, datetime(2026, 2, 28, 14, 59, 59, tzinfo=UTC)) == date(2026, 2, 28)
    assert clock.start_of(date(2026, 3, 1), SEOUL) == datetime(2026, 2, 28, 15, 0, tzinfo=UTC)


def test_travel_moves_the_instant_and_the_day_and_keeps_ticking() -> None:
    with clock.travel(date(2031, 5, 4)):
        first = clock.now()
        assert clock.today() == date(2031, 5, 4)
        assert first >= clock.start_of(date(2031, 5, 4))
        assert clock.now() >= first
    assert clock.today() != date(2031, 5, 4)  # back on the tests' day


def test_a_process_started_while_the_clock_is_moved_shares_it() -> None:
    with clock.travel(date(2031, 5, 4)):
        done = subprocess.run(
            [sys.executable, "-c", "from market import clock; print(clock.today())"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    assert done.stdout.strip() == "2031-05-04"


def test_a_moved_clock_is_refused_in_production() -> None:
    with pytest.raises(SettingsError, match="MARKET_CLOCK_OFFSET_SECONDS"):
        Settings.from_env(
            {"MARKET_ENV": "production", "MARKET_SECRET_KEY": "x" * 40, "MARKET_CLOCK_OFFSET_SECONDS": "86400"}
        )


def test_no_package_reads_the_machines_clock_past_the_one_clock() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "market" / "clock.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bdate\.today\(|\bdatetime\.(now|utcnow|today)\(|\btime\.time\(", line)
    ]
    assert found == []


def test_the_tests_write_no_call_to_the_machines_day() -> None:
    tests = Path(__file__).resolve().parents[1]
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted(tests.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\bdate\.today\(", line)
    ]
    assert found == []
