"""The marketplace's one clock: the current instant in UTC, and the business day in `MARKET_TIMEZONE`.

Every package asks here, never `date.today()` or `datetime.now()`: a term begins on a day in Seoul, not
on the server's day. Tests move this clock (`travel`) instead of writing dates that age; a moved clock is
handed to the processes started meanwhile through `MARKET_CLOCK_OFFSET_SECONDS` (refused in production).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from market.settings import configured

OFFSET_VARIABLE = "MARKET_CLOCK_OFFSET_SECONDS"
# How far the clock is moved from the machine's: by `travel`, or inherited from the process that started this one.
_offset = timedelta(seconds=float(os.environ.get(OFFSET_VARIABLE) or 0))


def now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC) + _offset


def today(zone: ZoneInfo | None = None, at: datetime | None = None) -> date:
    """The business day at `at` (default: now) in `zone` (default: `MARKET_TIMEZONE`)."""
    return (at or now()).astimezone(zone or configured().zone).date()


def start_of(day: date, zone: ZoneInfo | None = None) -> datetime:
    """The instant `day` begins in `zone` (default: `MARKET_TIMEZONE`), in UTC."""
    return datetime.combine(day, time(0), zone or configured().zone).astimezone(UTC)


@contextmanager
def travel(to: datetime | date) -> Iterator[None]:
    """Move the clock to `to` (a day means its start in the marketplace's zone); it keeps ticking from there."""
    global _offset
    target = to if isinstance(to, datetime) else start_of(to)
    previous, inherited = _offset, os.environ.get(OFFSET_VARIABLE)
    _offset = target - datetime.now(UTC)
    os.environ[OFFSET_VARIABLE] = str(_offset.total_seconds())
    try:
        yield
    finally:
        _offset = previous
        if inherited is None:
            os.environ.pop(OFFSET_VARIABLE, None)
        else:
            os.environ[OFFSET_VARIABLE] = inherited
