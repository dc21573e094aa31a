"""Properties of the price arithmetic: billing periods cover the term exactly, shares add up, nothing negative.

The expected number of periods is counted here independently of `contracts.pricing`: a period starts on
each monthly anniversary of the start date (clamped to the month's last day) that falls within the term.
"""

from __future__ import annotations

import calendar
import itertools
from datetime import date, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts import pricing
from contracts.schemas import MAX_QUANTITY, MAX_TERM_DAYS

UNITS = ["user_month", "instance_month", "gb_month", "month", "project", "person_day", "vcpu_hour"]
starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2095, 12, 31))
lengths = st.integers(min_value=0, max_value=MAX_TERM_DAYS)
billing = st.sampled_from(["monthly", "quarterly", "once"])
rates = st.integers(min_value=0, max_value=5000)  # basis points, as AmendInput allows
money = st.integers(min_value=0, max_value=10**12)
quantities = st.integers(min_value=1, max_value=MAX_QUANTITY)

many = settings(max_examples=400, deadline=None, database=None)  # no example files written into the checkout


def anniversary_count(starts_on: date, ends_on: date) -> int:
    """Monthly anniversaries of `starts_on` from itself to `ends_on`: the whole months between the two months,
    plus one if the anniversary in the end's month is not after the end."""
    whole = (ends_on.year - starts_on.year) * 12 + ends_on.month - starts_on.month
    in_end_month = date(
        ends_on.year, ends_on.month, min(starts_on.day, calendar.monthrange(ends_on.year, ends_on.month)[1])
    )
    return whole + 1 if in_end_month <= ends_on else whole


@many
@given(starts, lengths, billing)
def test_periods_cover_the_term_exactly(starts_on: date, length: int, billing_period: str) -> None:
    ends_on = starts_on + timedelta(days=length)
    periods = pricing.billing_periods(starts_on, ends_on, billing_period)
    assert periods[0][0] == starts_on
    assert periods[-1][1] == ends_on
    for first, last in periods:
        assert first <= last
    for (_, last), (first, _) in itertools.pairwise(periods):
        assert first == last + timedelta(days=1)  # no gap, no overlap
    assert sum((last - first).days + 1 for first, last in periods) == length + 1


@many
@given(starts, lengths, billing)
def test_period_count_is_never_off_by_one(starts_on: date, length: int, billing_period: str) -> None:
    ends_on = starts_on + timedelta(days=length)
    months = anniversary_count(starts_on, ends_on)
    expected = {"monthly": months, "quarterly": -(-months // 3), "once": 1}[billing_period]
    assert len(pricing.billing_periods(starts_on, ends_on, billing_period)) == expected
    assert pricing.term_months(starts_on, ends_on) == months


@many
@given(starts, lengths, st.sampled_from(["monthly", "quarterly"]))
def test_every_period_but_the_last_is_whole(starts_on: date, length: int, billing_period: str) -> None:
    ends_on = starts_on + timedelta(days=length)
    step = pricing.MONTHS_PER_PERIOD[billing_period]
    periods = pricing.billing_periods(starts_on, ends_on, billing_period)
    for index, (first, last) in enumerate(periods):
        assert first == pricing.add_months(starts_on, index * step)
        next_start = pricing.add_months(starts_on, (index + 1) * step)
        assert last == (next_start - timedelta(days=1) if index < len(periods) - 1 else ends_on)
        assert last < next_start


@settings(database=None)
@given(starts, st.integers(min_value=1, max_value=400), billing)
def test_a_term_ending_before_it_starts_is_refused(starts_on: date, days: int, billing_period: str) -> None:
    with pytest.raises(ValueError):
        pricing.billing_periods(starts_on, starts_on - timedelta(days=days), billing_period)


@many
@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2095, 12, 31)), st.integers(min_value=0, max_value=120))
def test_add_months_lands_in_the_right_month(day: date, months: int) -> None:
    moved = pricing.add_months(day, months)
    assert (moved.year * 12 + moved.month) - (day.year * 12 + day.month) == months
    assert moved.day == min(day.day, calendar.monthrange(moved.year, moved.month)[1])


@many
@given(starts, lengths, billing, money, money)
def test_period_amounts_add_up_exactly(starts_on: date, length: int, billing_period: str, net: int, vat: int) -> None:
    ends_on = starts_on + timedelta(days=length)
    rows = pricing.period_amounts(starts_on, ends_on, billing_period, net, vat)
    assert [(first, last) for first, last, *_ in rows] == pricing.billing_periods(starts_on, ends_on, billing_period)
    assert sum(row[2] for row in rows) == net
    assert sum(row[3] for row in rows) == vat
    for _first, _last, row_net, row_vat, row_total in rows:
        assert row_net >= 0 and row_vat >= 0
        assert row_total == row_net + row_vat


def months_covered(starts_on: date, first: date, last: date) -> int:
    """Months of the term a period covers, counted on the contract's own monthly anniversaries."""
    before = anniversary_count(starts_on, first - timedelta(days=1)) if first > starts_on else 0
    return anniversary_count(starts_on, last) - before


@many
@example(date(2001, 1, 29), 58, "monthly", 2, 0)  # the smallest case found: shares (0, 2) for two whole months
@given(starts, lengths, billing, money, money)
def test_period_shares_follow_the_months_covered(
    starts_on: date, length: int, billing_period: str, net: int, vat: int
) -> None:
    ends_on = starts_on + timedelta(days=length)
    rows = pricing.period_amounts(starts_on, ends_on, billing_period, net, vat)
    weights = [months_covered(starts_on, first, last) for first, last, *_ in rows]
    assert sum(weights) == anniversary_count(starts_on, ends_on)
    total = sum(weights)
    for index, (weight, (_first, _last, row_net, row_vat, _total)) in enumerate(zip(weights, rows, strict=True)):
        # Each share is its exact proportion rounded down (less than one won off); what rounding leaves over,
        # less than one won per period, goes to the last period.
        slack = total if index < len(rows) - 1 else len(rows) * total
        assert abs(row_net * total - net * weight) < slack
        assert abs(row_vat * total - vat * weight) < slack


@many
@given(
    st.sampled_from(UNITS),
    st.integers(min_value=0, max_value=10**8),
    st.booleans(),
    quantities,
    quantities,
    starts,
    lengths,
    billing,
    rates,
)
def test_price_is_never_negative_and_grows_with_quantity(
    unit: str,
    unit_price: int,
    vat_included: bool,
    q1: int,
    q2: int,
    starts_on: date,
    length: int,
    billing_period: str,
    rate: int,
) -> None:
    ends_on = starts_on + timedelta(days=length)
    low, high = sorted((q1, q2))
    common = {
        "unit": unit,
        "unit_price": unit_price,
        "vat_included": vat_included,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "billing_period": billing_period,
        "vat_rate_bp": rate,
    }
    smaller, larger = pricing.price(quantity=low, **common), pricing.price(quantity=high, **common)
    for price in (smaller, larger):
        assert price.amount_net >= 0 and price.amount_vat >= 0
        assert price.amount_total == price.amount_net + price.amount_vat
        assert price.periods == len(pricing.billing_periods(starts_on, ends_on, billing_period))
        assert price.months == anniversary_count(starts_on, ends_on)
    assert smaller.amount_net <= larger.amount_net
    assert smaller.amount_vat <= larger.amount_vat
    assert smaller.amount_total <= larger.amount_total
    base = unit_price * high * (larger.months if pricing.priced_by_month(unit) else 1)
    if vat_included:
        assert larger.amount_total == base  # the plan's price is what the agency pays
    else:
        assert larger.amount_net == base


@many
@given(money, rates)
def test_vat_split_of_a_gross_price_adds_back(gross: int, rate: int) -> None:
    net, vat = pricing.split_gross(gross, rate)
    assert net + vat == gross
    assert net >= 0 and vat >= 0
    # The net is the gross without VAT, rounded to the nearest won.
    scale = pricing.BASIS_POINTS + rate
    assert abs(net * scale - gross * pricing.BASIS_POINTS) * 2 <= scale


@many
@given(money, rates)
def test_vat_on_a_net_price_is_rounded_to_the_nearest_won(net: int, rate: int) -> None:
    vat = pricing.vat_of(net, rate)
    assert vat >= 0
    assert abs(vat * pricing.BASIS_POINTS - net * rate) * 2 <= pricing.BASIS_POINTS


@many
@given(money, st.integers(min_value=1, max_value=200))
def test_split_evenly_adds_up(amount: int, parts: int) -> None:
    shares = pricing.split_evenly(amount, parts)
    assert len(shares) == parts and sum(shares) == amount
    assert max(shares) - min(shares) <= 1 and min(shares) >= 0
