"""PostgreSQL's search (0003_catalog_search, 0006_search_speed).

English words are stemmed into a weighted tsvector (`search_document`: name A, summary B, the rest C), and
searched through a narrow copy of what counting and sorting read (`catalog_search_rows`: the stemmed words as
hashes, GIN-indexed), ranked by the field each word stands in, with the total and facet counts capped and relevance
ranked over a bounded set (see "the narrow search table" below). Korean is matched as a substring: the words of
the catalogue containing the fragment, found in a trigram-indexed vocabulary (`catalog_search_vocabulary`), then
looked up like English words. A quoted Korean phrase is matched by pg_trgm over the long text, in the one
statement of `catalog.search.listed`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.facets import PRICE_THRESHOLDS, SLA_THRESHOLDS_BP
from catalog.search import listed, results
from catalog.search.criteria import WORD, Criteria, Keywords, Term
from catalog.search.listed import Match, like_pattern
from catalog.search.results import LISTED, Results, facets_from, load_hits
from market.web import Page, check_page

# The expression PostgreSQL's trigram index is built on (0003_catalog_search): queries must repeat it exactly.
TEXT = (
    "(catalog_listed_service.name || ' ' || catalog_listed_service.summary || ' ' || "
    "catalog_listed_service.body || ' ' || catalog_listed_service.provider_name)"
)
DOCUMENT = "catalog_listed_service.search_document"


async def search(session: AsyncSession, criteria: Criteria, number: int, size: int, with_facets: bool) -> Results:
    keywords = criteria.keywords
    if not any(term.fragment and " " in term.text for term in (*keywords.required, *keywords.excluded)):
        return await _search_rows(session, criteria, number, size, with_facets)
    # A quoted Korean phrase is a substring of the long text: matched in catalog_listed_service (pg_trgm).
    await session.execute(sa.text("SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)"))
    return await listed.search(session, criteria, match(keywords), number, size, with_facets)


# --- the long text: a quoted Korean phrase --------------------------------------------------------


def _tsquery(term: Term) -> Any:
    return sa.func.phraseto_tsquery(sa.literal_column("'english'::regconfig"), term.text)


def _contains(text: Any, term: Term) -> Any:
    """Substring match (pg_trgm answers both): LIKE when the fragment has no letter case to ignore (Hangul,
    digits), for ILIKE folds the case of every character of every candidate and costs much more."""
    pattern = like_pattern(term.text)
    if term.text == term.text.upper():
        return text.like(pattern, escape="!")
    return text.ilike(pattern, escape="!")


def _in_field(term: Term, weight: str) -> Any:
    """The term stands in the field of that weight (A name, B summary): a lookup in the stored tsvector."""
    pieces = " & ".join(f"'{piece}':{weight}" for piece in WORD.findall(term.text))
    return sa.literal_column(DOCUMENT).op("@@")(sa.func.to_tsquery(sa.literal_column("'english'::regconfig"), pieces))


def _field_score(term: Term) -> Any:
    """1.0 when the term is in the name, 0.4 in the summary, 0.2 elsewhere (ts_rank_cd's weights for A, B, C).

    Ranking by the best field rather than with ts_rank_cd keeps a very common word ("cloud", most of the
    catalogue) cheap: ts_rank_cd would rank every matching service to find the first twenty."""
    if term.fragment:
        return sa.case((_contains(LISTED.c.name, term), 1.0), (_contains(LISTED.c.summary, term), 0.4), else_=0.2)
    return sa.case((_in_field(term, "A"), 1.0), (_in_field(term, "B"), 0.4), else_=0.2)


def match(keywords: Keywords) -> Match:
    document: sa.ColumnClause[Any] = sa.literal_column(DOCUMENT)  # a tsvector
    text: sa.ColumnClause[str] = sa.literal_column(TEXT)
    where: list[Any] = []
    words = [term for term in keywords.required if not term.fragment]
    if words:
        query = _tsquery(words[0])
        for term in words[1:]:
            query = query.op("&&")(_tsquery(term))
        where.append(document.op("@@")(query))
    for term in keywords.required:
        if term.fragment:
            where.append(_contains(text, term))
    for term in keywords.excluded:
        if term.fragment:
            where.append(sa.not_(_contains(text, term)))
        else:
            where.append(sa.not_(document.op("@@")(_tsquery(term))))
    relevance: Any = sa.literal(0.0)
    for term in keywords.required:
        if term.fragment or WORD.search(term.text):
            relevance = relevance + _field_score(term)
    return Match(LISTED, where, relevance)


# --- the narrow search table (0006_search_speed) --------------------------------------------------
#
# The search reads `catalog_search_rows` (filter columns, sort keys, the stemmed words as 64-bit hashes)
# instead of the wide `catalog_listed_service`, and bounds the work of a search matching most of the
# catalogue: the total is counted exactly up to TOTAL_CAP, facets over the first FACET_SAMPLE services that
# fail at most one filter, and relevance ranks a prefix of the matches in tiebreak order when that prefix
# provably holds the page (see `_page`). A Korean or partial word becomes the catalogue's words containing it
# (`catalog_search_vocabulary`), found in the same hashes.

FACET_SAMPLE = (
    2 * results.TOTAL_CAP
)  # enough, in most searches, to see more than TOTAL_CAP services passing every filter
# A search the planner expects to match more than FACET_SAMPLE_ABOVE services counts its facets over fewer: the
# counts are "at least" either way, and its total is counted (up to TOTAL_CAP) by a cheaper query.
FACET_SAMPLE_ABOVE = 2 * FACET_SAMPLE
FACET_SAMPLE_COMMON = 5_000
RANK_PREFIX = 1_000  # services ranked before the whole set is ranked (see `_page`)
RANK_FEW = 200  # at most this many matches with a term in their name or summary: ranked on their own
ROWS = "catalog_search_rows"
FACET_FILTERS = {  # facet -> the filter that it leaves out of its own counts (certification keeps its own)
    "category": "category",
    "deployment": "deployment",
    "grade": "grade",
    "country": "country",
    "sla": "sla",
    "price_max": "price_max",
    "free_trial": "free_trial",
    "sme": "sme",
    "certification": None,
}


class _Sql:
    """Collects bound parameters while a statement is written as text."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


@dataclass
class _Words:
    """A word or phrase of the query: the hashes of its lexemes in the whole text, the name and the summary."""

    term: Term
    words: list[int]
    name: list[int]
    summary: list[int]

    @property
    def phrase(self) -> bool:
        return len(self.words) > 1 and not self.term.fragment

    @property
    def operator(self) -> str:
        """Every lexeme of a word or phrase is required; any word containing a fragment will do."""
        return "&&" if self.term.fragment else "@>"


@dataclass
class _Query:
    """The FROM clause and keyword conditions over `r` (catalog_search_rows), and the relevance."""

    from_: str
    where: list[str]
    relevance: str
    best: float  # the highest relevance a service can reach: every term in its name
    lowest: Decimal  # the lowest: every term elsewhere than in the name and summary (exact, as PostgreSQL sums it)
    heading: list[int]  # the name and summary hashes of every required word
    names: list[int]  # the name hashes alone


async def _prepare(session: AsyncSession, keywords: Keywords) -> list[_Words]:
    """Sets the transaction up for the search and stems and hashes the query's words, in one round trip."""
    sql = _Sql()
    columns = [
        # Compiling these short queries to machine code costs more than it saves; parameters are planned with
        # their values (a very common word and a rare one need different plans).
        "set_config('jit', 'off', true)",
        "set_config('work_mem', '32MB', true)",
        "set_config('plan_cache_mode', 'force_custom_plan', true)",
    ]
    terms = [*keywords.required, *keywords.excluded]
    for term in terms:
        if term.fragment:
            # the words of the catalogue containing the fragment (particles and longer words included)
            pattern = sql.bind(like_pattern(term.text.lower()))
            found = f"SELECT lexeme FROM catalog_search_vocabulary WHERE lexeme LIKE {pattern} ESCAPE '!'"
            columns.extend(f"ARRAY(SELECT hashtextextended(lexeme, {seed}) FROM ({found}) AS v)" for seed in (0, 1, 2))
            continue
        vector = f"to_tsvector('english'::regconfig, translate({sql.bind(term.text)}, '/', ' '))"
        columns.extend(f"catalog_search_hashes({vector}, {seed})" for seed in (0, 1, 2))
    row = (await session.execute(sa.text("SELECT " + ", ".join(columns)), sql.params)).one()
    hashes = list(row[len(row) - 3 * len(terms) :])
    return [_Words(term, *hashes[index * 3 : index * 3 + 3]) for index, term in enumerate(terms)]


def _phrase(sql: _Sql, term: Term) -> str:
    return (
        "EXISTS (SELECT 1 FROM catalog_listed_service WHERE catalog_listed_service.service_id = r.service_id AND "
        f"{DOCUMENT} @@ phraseto_tsquery('english'::regconfig, translate({sql.bind(term.text)}, '/', ' ')))"
    )


def _query(sql: _Sql, keywords: Keywords, words: list[_Words]) -> _Query:
    """Words, phrases and fragments (a quoted Korean phrase reads the long text instead: `match`)."""
    where: list[str] = []
    relevance: list[str] = []
    stemmed = {item.term: item for item in words}
    for term in keywords.required:
        item = stemmed[term]
        if not item.words:  # nothing but punctuation or stop words after stemming: matches nothing
            where.append("false")
            continue
        where.append(f"r.words {item.operator} {sql.bind(item.words)}")
        if item.phrase:
            where.append(_phrase(sql, term))
        relevance.append(
            f"CASE WHEN r.heading {item.operator} {sql.bind(item.name)} THEN 1.0 "
            f"WHEN r.heading {item.operator} {sql.bind(item.summary)} THEN 0.4 ELSE 0.2 END"
        )
    for term in keywords.excluded:
        item = stemmed[term]
        if item.words:
            contains = f"r.words {item.operator} {sql.bind(item.words)}"
            where.append(f"NOT ({contains} AND {_phrase(sql, term)})" if item.phrase else f"NOT {contains}")
    required = [item for item in words if item.term in keywords.required]
    heading = [value for item in required for value in (*item.name, *item.summary)]
    names = [value for item in required for value in item.name]
    return _Query(
        f"{ROWS} AS r",
        where,
        " + ".join(relevance) or "0.0",
        float(len(relevance)),
        Decimal("0.2") * len(relevance),
        heading,
        names,
    )


def _filters(sql: _Sql, criteria: Criteria) -> dict[str, str]:
    """One condition per active filter group over `r`, keyed like those of `catalog.search.listed`."""
    conditions: dict[str, str] = {}
    if criteria.category:
        conditions["category"] = f"r.category = ANY({sql.bind(list(criteria.category))})"
    if criteria.deployment:
        conditions["deployment"] = f"r.deployment_model = ANY({sql.bind(list(criteria.deployment))})"
    if criteria.certification:
        conditions["certification"] = (
            "("
            + " AND ".join(
                f"r.certification_schemes LIKE {sql.bind(f'%|{scheme}|%')}" for scheme in criteria.certification
            )
            + ")"
        )
    if criteria.grade:
        conditions["grade"] = f"r.csap_grade = ANY({sql.bind(list(criteria.grade))})"
    if criteria.country:
        conditions["country"] = f"r.data_country = ANY({sql.bind(list(criteria.country))})"
    if criteria.sla_bp is not None:
        conditions["sla"] = f"r.sla_availability_bp >= {sql.bind(criteria.sla_bp)}"
    if criteria.price_max is not None:
        conditions["price_max"] = f"r.min_price <= CAST({sql.bind(criteria.price_max)} AS bigint)"
    if criteria.free_trial:
        conditions["free_trial"] = "r.free_trial"
    if criteria.sme:
        conditions["sme"] = "r.is_sme"
    return conditions


def _where(conditions: Iterable[str]) -> str:
    conditions = list(conditions)
    return " WHERE " + " AND ".join(conditions) if conditions else ""


async def _estimate(session: AsyncSession, sql: _Sql, query: _Query) -> float:
    """The planner's estimate of the services the keywords match (the word index's statistics are good)."""
    statement = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {query.from_}{_where(query.where)}"
    plan = (await session.execute(sa.text(statement), sql.params)).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


async def _scan(
    session: AsyncSession,
    sql: _Sql,
    criteria: Criteria,
    query: _Query,
    filters: dict[str, str],
    offset: int,
    size: int,
    with_facets: bool,
    sample: int,
) -> tuple[dict[str, dict[str, int]], int, bool, list[tuple[int, float]]]:
    """Facet counts, the number of services passing every filter, whether both are exact, and the page when
    the scan saw every match (empty otherwise: `_page` reads it).

    One statement reads, once, the services failing at most one filter (the only ones any count includes), at
    most `sample` of them: `fail` has a bit for each filter a service fails, so a facet's counts are the groups of
    services failing nothing or only that facet's own filter, and the page is ranked among those failing
    nothing. Three grouping sets instead of one per facet: the groups are summed per facet here."""
    names = list(filters) if with_facets else []
    conditions = [*query.where]
    if names:
        # one bit per filter the service fails; each filter is evaluated once (OFFSET 0 keeps the subquery)
        fail = " | ".join(
            f"(CASE WHEN {filters[name]} THEN 0 ELSE {1 << index} END)" for index, name in enumerate(names)
        )
        keep = "s.fail & (s.fail - 1) = 0"
    else:
        fail, keep = "0", "true"
        conditions.extend(filters.values())
    thresholds = sorted(SLA_THRESHOLDS_BP, reverse=True)
    sla = "CASE " + " ".join(f"WHEN r.sla_availability_bp >= {bp} THEN {bp}" for bp in thresholds) + " ELSE 0 END"
    price = (
        "CASE " + " ".join(f"WHEN r.min_price <= {value} THEN '{value}'" for value in PRICE_THRESHOLDS) + " ELSE '' END"
    )
    order = _order(criteria, query).replace("r.", "m.")
    # only the sort's own key is carried (each column held costs), and relevance only for services on the page
    key = {"price": "s.min_price, ", "name": "s.name, ", "newest": "s.listed_at, "}.get(criteria.sort, "")
    relevance = query.relevance.replace("r.", "s.") if criteria.sort == "relevance" else "0.0"
    matched = (
        f"WITH m AS MATERIALIZED (SELECT s.fail, s.service_id, s.tiebreak, {key}"
        "s.category, s.deployment_model, s.csap_grade, s.free_trial, s.is_sme, s.certification_schemes, s.data_country, s.sla, "
        f"s.price, CASE WHEN s.fail = 0 THEN {relevance} END AS relevance "
        f"FROM (SELECT {fail} AS fail, r.service_id, r.tiebreak, r.name, r.listed_at, r.min_price, "
        f"r.category, r.deployment_model, r.csap_grade, r.free_trial, r.is_sme, r.certification_schemes, r.data_country, "
        f"{sla} AS sla, {price} AS price, r.heading "
        f"FROM {query.from_}{_where(conditions)} OFFSET 0) AS s WHERE {keep} LIMIT {sample + 1}) "
    )
    if with_facets:
        counting = (
            "SELECT 0 AS part, m.fail, m.category, m.deployment_model, m.csap_grade, m.free_trial, m.is_sme, "
            "m.certification_schemes, m.data_country, m.sla, m.price, count(*) AS n, NULL::integer AS service_id, "
            "NULL::float AS relevance FROM m GROUP BY GROUPING SETS ("
            "(m.fail, m.category, m.deployment_model, m.csap_grade, m.free_trial, m.is_sme), "
            "(m.fail, m.certification_schemes, m.data_country), (m.fail, m.sla, m.price))"
        )
    else:
        counting = (
            "SELECT 0, 0, '', '', '', false, false, NULL, NULL, NULL, NULL, count(*), NULL::integer, NULL::float FROM m"
        )
    page = (
        f"SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, p.service_id, p.relevance::float "
        f"FROM (SELECT m.service_id, m.relevance FROM m WHERE m.fail = 0 ORDER BY {order} LIMIT {size} OFFSET {offset}) AS p "
        f"WHERE (SELECT count(*) FROM m) <= {sample}"  # ranked here only when the scan saw every match
    )
    rows = (await session.execute(sa.text(f"{matched}{counting} UNION ALL {page}"), sql.params)).all()
    own = {name: 1 << index for index, name in enumerate(names)}
    counts: dict[str, dict[str, int]] = {}
    seen = passing = 0
    ranked: list[tuple[int, float]] = []

    def add(facet: str, key: str, failed: int, n: int) -> None:
        wanted = FACET_FILTERS[facet]
        if failed == 0 or (wanted is not None and own.get(wanted) == failed):
            group = counts.setdefault(facet, {})
            group[key] = group.get(key, 0) + n

    for row in rows:
        part, failed, category, deployment, grade, free_trial, is_sme, schemes, country, sla_bp, price_key, n = row[:12]
        service_id, relevance = row[12:]
        if part == 1:
            ranked.append((service_id, relevance))
        elif category is not None:
            seen += n
            passing += n if failed == 0 else 0
            add("category", category, failed, n)
            add("deployment", deployment, failed, n)
            add("grade", grade, failed, n)
            if free_trial:
                add("free_trial", "1", failed, n)
            if is_sme:
                add("sme", "1", failed, n)
        elif schemes is not None:
            add("certification", schemes, failed, n)
            add("country", country, failed, n)
        elif sla_bp is not None:
            add("sla", str(sla_bp), failed, n)
            add("price_max", price_key, failed, n)
    exact = seen <= sample
    return counts, passing, exact, ranked if exact else []


async def _total(session: AsyncSession, sql: _Sql, query: _Query, filters: dict[str, str]) -> int:
    """The number of services passing every filter, counted up to TOTAL_CAP + 1."""
    statement = (
        f"SELECT count(*) FROM (SELECT 1 FROM {query.from_}{_where([*query.where, *filters.values()])} "
        f"LIMIT {results.TOTAL_CAP + 1}) AS c"
    )
    return int((await session.execute(sa.text(statement), sql.params)).scalar_one())


ORDERS = {
    "relevance": "relevance DESC, r.tiebreak, r.service_id",
    "price": "r.min_price, r.tiebreak, r.service_id",
    "name": "r.name, r.service_id",
    "newest": "r.listed_at DESC, r.service_id DESC",
}


def _order(criteria: Criteria, query: _Query) -> str:
    if criteria.sort == "relevance" and query.relevance == "0.0":
        return "r.tiebreak, r.service_id"  # no keywords: an order an index holds
    return ORDERS[criteria.sort]


async def _page(
    session: AsyncSession,
    sql: _Sql,
    criteria: Criteria,
    query: _Query,
    filters: dict[str, str],
    capped: bool,
    offset: int,
    size: int,
) -> list[tuple[int, float]]:
    """(service id, relevance) of one page, when the scan of `_scan` did not see every match.

    Relevance over more than TOTAL_CAP matches is ranked over a bounded set, giving the page a full ranking
    gives. When at most RANK_FEW matches have a term in their name or summary, those are ranked and the
    rest (all of the lowest relevance) follow in tiebreak order. Otherwise the matches are first taken in
    tiebreak order (an index scan that stops after RANK_PREFIX of them) and ranked among themselves: a match
    outside that prefix has a larger tiebreak than every one in it, so it belongs on the page only if its
    relevance is higher than the page's last. None can be when the last has every term in its name; otherwise
    a count through the name and summary index tells. If one is, every match is ranked."""
    conditions = [*query.where, *filters.values()]
    select = f"SELECT r.service_id, {query.relevance} AS relevance, r.tiebreak FROM {query.from_}"
    if criteria.sort == "relevance" and query.relevance != "0.0" and capped:
        # A service with no term in its name or summary has the lowest relevance there is (0.2 a term), below
        # every service with one: when few have one, they come first, ranked, then the rest in tiebreak order.
        raised = f"(r.heading && {sql.bind(query.heading)} AND {query.relevance} > {sql.bind(query.lowest)})"
        count = f"SELECT count(*) FROM (SELECT 1 FROM {query.from_}{_where([*conditions, raised])} LIMIT {RANK_FEW + 1}) AS c"
        if (few := int((await session.execute(sa.text(count), sql.params)).scalar_one())) <= RANK_FEW:
            first: list[tuple[int, float]] = []
            if offset < few:
                statement = (
                    f"{select}{_where([*conditions, raised])} ORDER BY relevance DESC, r.tiebreak, r.service_id "
                    f"LIMIT {size} OFFSET {offset}"
                )
                first = await _ranked(session, sql, statement)
            if len(first) == size:
                return first
            statement = (
                f"{select}{_where([*conditions, f'NOT {raised}'])} ORDER BY r.tiebreak, r.service_id "
                f"LIMIT {size - len(first)} OFFSET {max(0, offset - few)}"
            )
            return first + await _ranked(session, sql, statement)
        prefix = max(RANK_PREFIX, 4 * (offset + size))
        statement = (
            f"SELECT p.service_id, p.relevance, p.tiebreak FROM ({select}{_where(conditions)} ORDER BY r.tiebreak, r.service_id "
            f"LIMIT {prefix}) AS p ORDER BY p.relevance DESC, p.tiebreak, p.service_id LIMIT {size} OFFSET {offset}"
        )
        rows = (await session.execute(sa.text(statement), sql.params)).all()
        if len(rows) == size:
            last_id, last, tiebreak = rows[-1]
            better = last < query.best - 1e-9
            if better:
                # above every term in the summary, only a term in the name ranks higher
                hashes = query.names if last >= 2 * query.lowest else query.heading
                later = [
                    *conditions,
                    f"r.heading && {sql.bind(hashes)}",
                    f"(r.tiebreak, r.service_id) > ({sql.bind(tiebreak)}, {sql.bind(last_id)})",
                    f"{query.relevance} > {sql.bind(last)}",
                ]
                # counted rather than LIMIT 1: the planner then reads the few services with a term in their name or
                # summary through the index, where "find one" would scan the table in tiebreak order for a row
                # that is usually not there
                found = await session.execute(sa.text(f"SELECT count(*) FROM {query.from_}{_where(later)}"), sql.params)
                better = found.scalar_one() > 0
            if not better:
                return [(service_id, float(relevance)) for service_id, relevance, _tiebreak in rows]
    statement = f"{select}{_where(conditions)} ORDER BY {_order(criteria, query)} LIMIT {size} OFFSET {offset}"
    return await _ranked(session, sql, statement)


async def _ranked(session: AsyncSession, sql: _Sql, statement: str) -> list[tuple[int, float]]:
    rows = (await session.execute(sa.text(statement), sql.params)).all()
    return [(service_id, float(relevance)) for service_id, relevance, *_rest in rows]


async def _search_rows(session: AsyncSession, criteria: Criteria, number: int, size: int, with_facets: bool) -> Results:
    keywords = criteria.keywords
    words = await _prepare(session, keywords)
    sql = _Sql()
    query = _query(sql, keywords, words)
    filters = _filters(sql, criteria)
    offset = (number - 1) * size
    sample = FACET_SAMPLE
    if with_facets and await _estimate(session, sql, query) > FACET_SAMPLE_ABOVE:
        sample = FACET_SAMPLE_COMMON
    counts, total, exact, ranked = await _scan(
        session, sql, criteria, query, filters, offset, size, with_facets, sample
    )
    if not exact and total <= results.TOTAL_CAP:
        total = await _total(session, sql, query, filters)
    capped = total > results.TOTAL_CAP
    total = min(total, results.TOTAL_CAP)
    current = check_page(Page(number=number, size=size, total=total))
    if not exact:
        ranked = await _page(session, sql, criteria, query, filters, capped, offset, size)
    positions = [(offset + index, service_id, relevance) for index, (service_id, relevance) in enumerate(ranked, 1)]
    hits = await load_hits(session, keywords, positions)
    facets = facets_from(criteria, counts) if with_facets else []
    return Results(criteria, hits, total, current, facets, total_capped=capped, facets_exact=exact or not with_facets)
