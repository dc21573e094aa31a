"""Searching the listed services: keywords, filters with facet counts, sorting, paging, highlighting.

The criteria (`criteria`) and the results (`results`) are the same on both databases; finding the services is
where SQLite and PostgreSQL differ, and each has its engine (`sqlite`, `postgres`), chosen here by the session's
database and nothing else:

- English words are stemmed: FTS5's porter tokenizer on SQLite, a weighted tsvector on PostgreSQL.
- Korean is matched as Koreans type it: by substring, so 클라우드 finds 클라우드를 and 공공클라우드, and a
  particle typed after a word (클라우드를) is dropped before matching. Fragments shorter than three letters, which
  no trigram index holds, are matched with LIKE.
- Field weights: name above summary above description, features, benefits and provider name.

Every word is required; "quoted phrases" match as phrases; -word excludes.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.search import postgres, sqlite
from catalog.search.criteria import MAX_QUERY_LENGTH, Criteria, describe, parse_criteria, parse_page
from catalog.search.results import Hit, Results
from market.web import PAGE_SIZE, page_number

__all__ = [
    "MAX_QUERY_LENGTH",
    "Criteria",
    "Engine",
    "Hit",
    "Results",
    "describe",
    "engine",
    "parse_criteria",
    "parse_page",
    "search",
]


class Engine(Protocol):
    """Page `number` of the listed services matching `criteria` (a page beyond the last raises NotFound)."""

    async def __call__(
        self, session: AsyncSession, criteria: Criteria, number: int, size: int, with_facets: bool
    ) -> Results: ...


def engine(session: AsyncSession) -> Engine:
    """The session's database's engine: PostgreSQL's, or SQLite's (the embedded default)."""
    return postgres.search if session.bind.dialect.name == "postgresql" else sqlite.search


async def search(
    session: AsyncSession, criteria: Criteria, page: int = 1, *, size: int = PAGE_SIZE, with_facets: bool = True
) -> Results:
    """One page of listed services matching `criteria`; a page beyond the last raises NotFound."""
    return await engine(session)(session, criteria, page_number(page), size, with_facets)
