"""Recent search results kept by this process, so that the same search asked again costs no database work.

The search reads only the listed projection (`catalog_listed_service` and the search tables its triggers keep),
never the viewer, so a page of results can be answered again to anyone. An entry is served only while

- it is younger than `MARKET_SEARCH_CACHE_SECONDS` (its age counted from the start of the transaction that read
  it): a change made through another process is seen within that time, as in the Digital Marketplace, whose
  search index is updated by jobs;
- nothing in the listed projection changed through this process since that transaction began: `listed_changed`
  (called by `catalog.listings.refresh_listing`, the only writer of the projection) moves the generation on, at
  once and again when the writing transaction commits, so that a search made between the write and its
  commit (which still read the old rows) is never served afterwards either.

An entry is keyed by the criteria (their lists of choices in a fixed order), page, page size, whether facets are
counted, and the language (facet labels are translated). The number of entries is bounded (least recently used
goes first). Results, hits and facets are frozen dataclasses and nothing changes their lists once made: what one
request is served, another is served too.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from catalog import search as catalogue
from market import i18n
from market.web import PAGE_SIZE

ENTRIES = 256
STATE_KEY = "catalog.search_cache"
CHANGED = "catalog.listed_changed"  # session.info: the transaction wrote the listed projection
AS_OF = "catalog.search_as_of"  # session.info: (generation, clock) when the transaction began

_changes = itertools.count(1)
_generation = next(_changes)


def generation() -> int:
    return _generation


def listed_changed(session: AsyncSession | Session) -> None:
    """The listed projection changed in `session`'s transaction: no entry read before is served again, and none
    read before the commit either (the generation moves on again then)."""
    global _generation
    _generation = next(_changes)
    session.info[CHANGED] = True


@event.listens_for(Session, "after_begin")
def _remember_start(session: Session, transaction: Any, connection: Any) -> None:
    # What a transaction reads is at least as recent as its beginning (SQLite reads one snapshot from its first
    # statement); an entry is dated, and checked against the generation, from here.
    session.info[AS_OF] = (_generation, time.monotonic())


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    global _generation
    if session.info.pop(CHANGED, False):
        _generation = next(_changes)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(CHANGED, None)


@dataclass(frozen=True)
class _Entry:
    results: catalogue.Results
    generation: int
    born: float


Key = tuple[Any, ...]


class SearchCache:
    """At most `entries` searches, each served for at most `seconds` (0: none is kept)."""

    def __init__(self, seconds: float, entries: int = ENTRIES, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.entries = entries
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self._kept: OrderedDict[Key, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def clear(self) -> None:
        self._kept.clear()

    async def search(
        self,
        session: AsyncSession,
        criteria: catalogue.Criteria,
        page: int = 1,
        *,
        size: int = PAGE_SIZE,
        with_facets: bool = True,
    ) -> catalogue.Results:
        """`catalog.search.search`, answered from memory when the same search was read recently enough."""
        if self.seconds <= 0:
            return await catalogue.search(session, criteria, page, size=size, with_facets=with_facets)
        key = _key(criteria, page, size, with_facets)
        now = self.clock()
        entry = self._kept.get(key)
        if entry is not None:
            if entry.generation == _generation and now - entry.born < self.seconds:
                self._kept.move_to_end(key)
                self.hits += 1
                return (
                    entry.results if entry.results.criteria == criteria else replace(entry.results, criteria=criteria)
                )
            del self._kept[key]
        self.misses += 1
        # Dated from the start of the transaction when one is open (its reads may be that old), else from now.
        generation_then, born = _generation, now
        if session.in_transaction() and (started := session.info.get(AS_OF)) is not None:
            generation_then, began = started
            born = now - max(0.0, time.monotonic() - began)
        results = await catalogue.search(session, criteria, page, size=size, with_facets=with_facets)
        if generation_then == _generation:
            self._kept[key] = _Entry(results, generation_then, born)
            self._kept.move_to_end(key)
            while len(self._kept) > self.entries:
                self._kept.popitem(last=False)
        return results


def _key(criteria: catalogue.Criteria, page: int, size: int, with_facets: bool) -> Key:
    """The same search however its choices were ordered (they select a set), in the request's language."""
    ordered = replace(
        criteria,
        category=tuple(sorted(criteria.category)),
        deployment=tuple(sorted(criteria.deployment)),
        certification=tuple(sorted(criteria.certification)),
        grade=tuple(sorted(criteria.grade)),
        country=tuple(sorted(criteria.country)),
    )
    return (ordered, page, size, with_facets, i18n.current_language.get())


def of(app: Any) -> SearchCache:
    """The application's cache, made on first use from its settings (`MARKET_SEARCH_CACHE_SECONDS`)."""
    cache = app.state.get(STATE_KEY)
    if cache is None:
        cache = SearchCache(app.state["settings"].search_cache_seconds)
        app.state[STATE_KEY] = cache
    return cache
