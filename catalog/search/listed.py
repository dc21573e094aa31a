"""The search as one statement over the listed projection (`catalog_listed_service`): it counts, groups into
facets and pages the services that an engine's keyword match (`Match`) finds. SQLite's search is this; so is
PostgreSQL's for a quoted Korean phrase, which only the long text holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.facets import PRICE_THRESHOLDS
from catalog.search import results
from catalog.search.criteria import Criteria
from catalog.search.results import LISTED, Results, facets_from, load_hits
from market.web import Page, check_page


@dataclass
class Match:
    """What the keywords add to a query: the FROM clause, the conditions, and the relevance (higher is better)."""

    from_: Any
    where: list[Any]
    relevance: Any


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape "!") finding `text` anywhere."""
    return "%" + text.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"


def _filters(criteria: Criteria, source: Any = LISTED) -> dict[str, Any]:
    """One condition per active filter group, keyed by the group's parameter name, over `source`'s columns."""
    c = source.c
    conditions: dict[str, Any] = {}
    if criteria.category:
        conditions["category"] = c.category.in_(criteria.category)
    if criteria.deployment:
        conditions["deployment"] = c.deployment_model.in_(criteria.deployment)
    if criteria.certification:
        conditions["certification"] = sa.and_(*(_has_scheme(value, source) for value in criteria.certification))
    if criteria.grade:
        conditions["grade"] = c.csap_grade.in_(criteria.grade)
    if criteria.country:
        conditions["country"] = c.data_country.in_(criteria.country)
    if criteria.sla_bp is not None:
        conditions["sla"] = c.sla_availability_bp >= criteria.sla_bp
    if criteria.price_max is not None:
        conditions["price_max"] = c.min_price <= criteria.price_max
    if criteria.free_trial:
        conditions["free_trial"] = c.free_trial.is_(True)
    if criteria.sme:
        conditions["sme"] = c.is_sme.is_(True)
    return conditions


def _has_scheme(scheme: str, source: Any = LISTED) -> Any:
    return source.c.certification_schemes.like(f"%|{scheme}|%")


def _all(conditions: Iterable[Any]) -> Any:
    conditions = list(conditions)
    return sa.and_(*conditions) if conditions else sa.true()


FACET_COLUMNS = (
    "category",
    "deployment_model",
    "certification_schemes",
    "csap_grade",
    "data_country",
    "sla_availability_bp",
    "min_price",
    "free_trial",
    "is_sme",
)
GROUPED_FACETS = {  # facet -> the column its counts are grouped by
    "category": "category",
    "deployment": "deployment_model",
    "certification": "certification_schemes",
    "grade": "csap_grade",
    "country": "data_country",
    "sla": "sla_availability_bp",
}


def _price_bucket(column: Any) -> Any:
    """The smallest price threshold a price is within ("" above them all), so counts can be summed per threshold."""
    return sa.case(*((column <= price, str(price)) for price in PRICE_THRESHOLDS), else_="")


def _statement(criteria: Criteria, found: Match, number: int, size: int, with_facets: bool) -> Any:
    """One statement that reads the matching services once (a materialised CTE) and answers, as rows of
    (part, key, count, service_id, relevance): the total, every facet's counts grouped by value, and the
    page of results. A facet's counts apply every active filter but its own (certification, whose ticked
    values must all hold, applies its own too)."""
    # Each active filter is evaluated once per service, into a column the counts combine.
    conditions = _filters(criteria)
    columns = [
        LISTED.c.service_id,
        LISTED.c.tiebreak,
        LISTED.c.name,
        LISTED.c.listed_at,
        *(LISTED.c[name] for name in FACET_COLUMNS),
        found.relevance.label("relevance"),
        *(condition.label(f"ok_{name}") for name, condition in conditions.items()),
    ]
    matched = (
        sa.select(*columns).select_from(found.from_).where(*found.where).cte("matched").prefix_with("MATERIALIZED")
    )
    filters = {name: matched.c[f"ok_{name}"] for name in conditions}
    everything = _all(filters.values())

    def others(name: str) -> Any:
        return _all(condition for key, condition in filters.items() if key != name or name == "certification")

    def part(name: str, key: Any, condition: Any) -> Any:
        return sa.select(
            sa.literal(name).label("part"),
            sa.cast(key, sa.String).label("key"),
            sa.func.count().filter(condition).label("n"),
            sa.cast(sa.null(), sa.Integer).label("service_id"),
            sa.cast(sa.null(), sa.Float).label("relevance"),
        ).select_from(matched)

    parts = [part("total", sa.null(), everything)]
    if with_facets:
        for name, column in GROUPED_FACETS.items():
            parts.append(part(name, matched.c[column], others(name)).group_by(matched.c[column]))
        bucket = _price_bucket(matched.c.min_price)
        parts.append(part("price_max", bucket, others("price_max")).group_by(bucket))
        parts.append(part("free_trial", sa.literal("1"), sa.and_(others("free_trial"), matched.c.free_trial.is_(True))))
        parts.append(part("sme", sa.literal("1"), sa.and_(others("sme"), matched.c.is_sme.is_(True))))
    order = _order(criteria, matched.c)
    page = (
        sa.select(
            matched.c.service_id, matched.c.relevance, sa.func.row_number().over(order_by=order).label("position")
        )
        .where(everything)
        .order_by(*order)
        .limit(size)
        .offset((number - 1) * size)
        .subquery("page")
    )
    parts.append(
        sa.select(
            sa.literal("hit"),
            sa.cast(sa.null(), sa.String),
            page.c.position,
            page.c.service_id,
            sa.cast(page.c.relevance, sa.Float),
        )
    )
    return sa.union_all(*parts)


def _order(criteria: Criteria, c: Any) -> list[Any]:
    if criteria.sort == "price":
        return [c.min_price.asc(), c.tiebreak.asc(), c.service_id.asc()]
    if criteria.sort == "name":
        return [c.name.asc(), c.service_id.asc()]
    if criteria.sort == "newest":
        return [c.listed_at.desc(), c.service_id.desc()]
    return [c.relevance.desc(), c.tiebreak.asc(), c.service_id.asc()]


async def search(
    session: AsyncSession, criteria: Criteria, found: Match, number: int, size: int, with_facets: bool
) -> Results:
    """Page `number` of the services `found` matches that pass `criteria`'s filters, sorted as asked."""
    rows = (await session.execute(_statement(criteria, found, number, size, with_facets))).all()
    counts: dict[str, dict[str, int]] = {}
    ranked: list[tuple[int, int, float]] = []
    total = 0
    for part, key, n, service_id, relevance in rows:
        if part == "hit":
            ranked.append((n, service_id, relevance or 0.0))
        elif part == "total":
            total = int(n or 0)
        else:
            counts.setdefault(part, {})[key] = (counts.get(part, {}).get(key) or 0) + int(n or 0)
    capped = total > results.TOTAL_CAP
    total = min(total, results.TOTAL_CAP)
    current = check_page(Page(number=number, size=size, total=total))
    hits = await load_hits(session, criteria.keywords, sorted(ranked))
    return Results(
        criteria, hits, total, current, facets_from(criteria, counts) if with_facets else [], total_capped=capped
    )
