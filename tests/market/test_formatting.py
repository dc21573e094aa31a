"""Amounts and dates as people read them: the same spelling on every page, in both languages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from market.formatting import day, moment, money, number
from market.i18n import current_language

SEOUL = ZoneInfo("Asia/Seoul")


@pytest.fixture(params=["ko", "en"])
def language(request: pytest.FixtureRequest) -> Iterator[str]:
    token = current_language.set(request.param)
    yield request.param
    current_language.reset(token)


def test_won_read_with_the_sign_and_grouped_thousands_in_both_languages(language: str) -> None:
    assert money(1_234_567) == "₩1,234,567"
    assert money(0) == "₩0"
    assert money(None) == ""
    assert number(1_234_567) == "1,234,567"


def test_an_amount_in_a_currency_with_cents_is_counted_in_cents(language: str) -> None:
    assert money(123_456, "USD").endswith("$1,234.56")


def test_a_day_reads_as_its_iso_date_and_a_moment_in_the_given_zone(language: str) -> None:
    late_evening_utc = datetime(2026, 2, 28, 15, 30, 5, tzinfo=UTC)  # already 1 March in Seoul
    assert day(date(2026, 3, 1)) == "2026-03-01"
    assert day("2026-03-01") == "2026-03-01"
    assert day(late_evening_utc, zone=SEOUL) == "2026-03-01"
    assert moment(late_evening_utc, zone=SEOUL) == "2026-03-01 00:30"
    assert moment(late_evening_utc, "yyyy-MM-dd HH:mm:ss", zone=SEOUL) == "2026-03-01 00:30:05"
    assert day(None) == moment(None) == ""
