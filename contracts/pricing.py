"""Billing periods and prices: pure arithmetic on dates and whole won, shared by drafting and invoicing.

The price of a contract is the plan's unit price × quantity × billing months for units priced by the
month (user_month, instance_month, gb_month, month), or unit price × quantity for the whole term for
other units (project, person_day, vcpu_hour), where the quantity is then the term's total. VAT is kept
separate: a plan whose price includes VAT is split into net and VAT, otherwise VAT is added on top.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3}
BASIS_POINTS = 10_000


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it has no such day (31 Jan + 1 = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def billing_periods(starts_on: date, ends_on: date, billing_period: str) -> list[tuple[date, date]]:
    """The term cut into billing periods (first and last day, inclusive); the last one may be shorter.

    `once` is one period for the whole term. Periods count from the start date: a term starting on
    15 March billed monthly has periods 15 March–14 April, 15 April–14 May, ...
    """
    if ends_on < starts_on:
        raise ValueError("the term ends before it starts")
    if billing_period == "once":
        return [(starts_on, ends_on)]
    step = MONTHS_PER_PERIOD[billing_period]
    periods: list[tuple[date, date]] = []
    index = 0
    while True:
        first = add_months(starts_on, index * step)
        if first > ends_on:
            return periods
        last = min(add_months(starts_on, (index + 1) * step) - timedelta(days=1), ends_on)
        periods.append((first, last))
        index += 1


def term_months(starts_on: date, ends_on: date) -> int:
    """Months of the term, a started month counting as one."""
    return len(billing_periods(starts_on, ends_on, "monthly"))


def priced_by_month(unit: str) -> bool:
    return unit == "month" or unit.endswith("_month")


@dataclass(frozen=True)
class Price:
    periods: int  # billing periods over the term
    months: int  # months of the term
    amount_net: int
    amount_vat: int
    amount_total: int


def vat_of(net: int, vat_rate_bp: int) -> int:
    """VAT on a net amount, rounded half up to the won."""
    return (net * vat_rate_bp + BASIS_POINTS // 2) // BASIS_POINTS


def split_gross(gross: int, vat_rate_bp: int) -> tuple[int, int]:
    """A VAT-inclusive amount as (net, VAT), the net rounded half up."""
    net = (gross * BASIS_POINTS * 2 + (BASIS_POINTS + vat_rate_bp)) // ((BASIS_POINTS + vat_rate_bp) * 2)
    return net, gross - net


def price(
    *,
    unit: str,
    unit_price: int,
    vat_included: bool,
    quantity: int,
    starts_on: date,
    ends_on: date,
    billing_period: str,
    vat_rate_bp: int,
) -> Price:
    periods = len(billing_periods(starts_on, ends_on, billing_period))
    months = term_months(starts_on, ends_on)
    base = unit_price * quantity * (months if priced_by_month(unit) else 1)
    if vat_included:
        net, vat = split_gross(base, vat_rate_bp)
    else:
        net, vat = base, vat_of(base, vat_rate_bp)
    return Price(periods=periods, months=months, amount_net=net, amount_vat=vat, amount_total=net + vat)


def split_evenly(amount: int, parts: int) -> list[int]:
    """`amount` in `parts` whole-won shares that add up exactly; the remainder goes to the first shares."""
    if parts < 1:
        raise ValueError("at least one part")
    share, remainder = divmod(amount, parts)
    return [share + (1 if index < remainder else 0) for index in range(parts)]


def _shares(amount: int, weights: list[int]) -> list[int]:
    """`amount` in proportion to `weights`, rounded down, the last share taking what remains."""
    total = sum(weights)
    shares = [amount * weight // total for weight in weights[:-1]]
    return [*shares, amount - sum(shares)]


def period_amounts(
    starts_on: date,
    ends_on: date,
    billing_period: str,
    amount_net: int,
    amount_vat: int,
) -> list[tuple[date, date, int, int, int]]:
    """Each billing period as (first day, last day, net, VAT, total): the contract's net and VAT shared in
    proportion to the months each period covers (a short last period pays less); the shares add up exactly."""
    periods = billing_periods(starts_on, ends_on, billing_period)
    # Months are counted from the contract's start, not from each period's first day: a term starting on the
    # 31st has periods starting on the 28th or 30th, which are still one month each.
    per_period = term_months(starts_on, ends_on) if billing_period == "once" else MONTHS_PER_PERIOD[billing_period]
    weights = [per_period] * (len(periods) - 1)
    weights.append(term_months(starts_on, ends_on) - sum(weights))
    nets, vats = _shares(amount_net, weights), _shares(amount_vat, weights)
    return [(first, last, net, vat, net + vat) for (first, last), net, vat in zip(periods, nets, vats, strict=True)]
