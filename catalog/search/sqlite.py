"""SQLite's search: FTS5 tables kept by triggers (0003_catalog_search).

English words are stemmed by FTS5's porter tokenizer (`catalog_search_words`) and ranked with bm25; Korean is
matched as a substring by its trigram tokenizer (`catalog_search_trigrams`), a fragment shorter than three letters
with LIKE. The rest of the search is the one statement of `catalog.search.listed`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.search import listed
from catalog.search.criteria import Criteria, Keywords, Term
from catalog.search.listed import Match, like_pattern
from catalog.search.results import LISTED, Results

# Weights of name, summary, body and provider name, in that order (PostgreSQL's tsvector carries A, B, C and C,
# which ts_rank_cd weighs 1.0, 0.4, 0.2 and 0.2).
BM25_WEIGHTS = (10.0, 4.0, 2.0, 2.0)


async def search(session: AsyncSession, criteria: Criteria, number: int, size: int, with_facets: bool) -> Results:
    return await listed.search(session, criteria, match(criteria.keywords), number, size, with_facets)


def _fts_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _fts(table: str, terms: list[Term], alias: str) -> Any:
    fts = sa.table(table, sa.column("rowid"))
    expression = " AND ".join(_fts_string(term.text) for term in terms)
    return (
        sa.select(fts.c.rowid.label("service_id"), sa.func.bm25(sa.literal_column(table), *BM25_WEIGHTS).label("score"))
        .select_from(fts)
        .where(sa.literal_column(table).op("MATCH")(expression))
        .subquery(alias)
    )


def _field_bonus(table: str, terms: list[Term]) -> Any:
    """bm25 weighs a term by its rarity, so a word most services contain ("cloud") ranks nothing; the name and
    summary holding every term add the weights of those fields, as PostgreSQL's weighted tsvector does."""
    fts = sa.table(table, sa.column("rowid"))
    expression = "(" + " AND ".join(_fts_string(term.text) for term in terms) + ")"
    bonus: Any = sa.literal(0.0)
    for column, weight in (("name", BM25_WEIGHTS[0]), ("summary", BM25_WEIGHTS[1])):
        ids = (
            sa.select(fts.c.rowid)
            .select_from(fts)
            .where(sa.literal_column(table).op("MATCH")(f"{{{column}}} : {expression}"))
        )
        bonus = bonus + sa.case((LISTED.c.service_id.in_(ids), weight), else_=0.0)
    return bonus


def _excluding(table: str, term: Term) -> Any:
    fts = sa.table(table, sa.column("rowid"))
    ids = sa.select(fts.c.rowid).select_from(fts).where(sa.literal_column(table).op("MATCH")(_fts_string(term.text)))
    return LISTED.c.service_id.not_in(ids)


def _contains(term: Term) -> Any:
    pattern = like_pattern(term.text)
    return sa.or_(*(LISTED.c[name].like(pattern, escape="!") for name in ("name", "summary", "body", "provider_name")))


def match(keywords: Keywords) -> Match:
    from_: Any = LISTED
    where: list[Any] = []
    relevance: Any = sa.literal(0.0)
    words = [term for term in keywords.required if not term.fragment]
    trigrams = [term for term in keywords.required if term.indexed_by_trigrams]
    if words:
        found = _fts("catalog_search_words", words, "words")
        from_ = from_.join(found, found.c.service_id == LISTED.c.service_id)
        relevance = relevance - found.c.score + _field_bonus("catalog_search_words", words)
    if trigrams:
        found = _fts("catalog_search_trigrams", trigrams, "trigrams")
        from_ = from_.join(found, found.c.service_id == LISTED.c.service_id)
        relevance = relevance - found.c.score + _field_bonus("catalog_search_trigrams", trigrams)
    where.extend(_contains(term) for term in keywords.required if term.fragment and not term.indexed_by_trigrams)
    for term in keywords.excluded:
        if term.indexed_by_trigrams:
            where.append(_excluding("catalog_search_trigrams", term))
        elif term.fragment:
            where.append(sa.not_(_contains(term)))
        else:
            where.append(_excluding("catalog_search_words", term))
    return Match(from_, where, relevance)
