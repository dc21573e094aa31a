"""Amounts, numbers, dates and times as people read them: through Babel, in the reader's language.

The one place that spells money and dates for pages, documents and messages. Machine-readable places (CSV, JSON,
OCDS, `<time datetime>` attributes, form values) keep ISO dates and plain integers and do not come here.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime as DateTime
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal, get_currency_precision

from market.i18n import current_language
from market.settings import configured

DEFAULT_CURRENCY = "KRW"
# Explicit patterns, the same in every language: the ISO day people and tests recognise, with the clock time after it.
DATE_PATTERN = "yyyy-MM-dd"
DATETIME_PATTERN = "yyyy-MM-dd HH:mm"


def money(amount: int | None, currency: str = DEFAULT_CURRENCY) -> str:
    """An amount in the currency's minor unit (KRW has none: 1 is one won), e.g. ₩1,234,567; "" for no amount."""
    if amount is None:
        return ""
    major = Decimal(amount).scaleb(-get_currency_precision(currency))
    return format_currency(major, currency, locale=current_language.get())


def number(value: int | None) -> str:
    """A whole number with the reader's grouping, e.g. 1,234,567; for messages whose text carries the currency sign."""
    return "" if value is None else format_decimal(value, locale=current_language.get())


def day(value: Date | DateTime | str | None, pattern: str = DATE_PATTERN, zone: ZoneInfo | None = None) -> str:
    """A calendar day. A moment (stored in UTC) is first moved into `zone` (default: the configured one); an ISO
    string is read as the day it starts with."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = Date.fromisoformat(value[:10])
    if isinstance(value, DateTime):
        value = value.astimezone(zone or configured().zone).date()
    return format_date(value, pattern, locale=current_language.get())


def moment(value: DateTime | None, pattern: str = DATETIME_PATTERN, zone: ZoneInfo | None = None) -> str:
    """A moment stored in UTC, shown in `zone` (the user's time zone; default: the configured one)."""
    if value is None:
        return ""
    zone = zone or configured().zone
    return format_datetime(value.astimezone(zone), pattern, tzinfo=zone, locale=current_language.get())
