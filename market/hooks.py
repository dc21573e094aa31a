"""Hooks the domain packages register into the shell (through `market.parts.Parts`), so arrows keep pointing down.

The functions here are what the shell and the packages call at run time; each finds the registered parts through
the session (or session maker) it is given, so two apps in one process never share their subscribers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market.database import utcnow
from market.parts import parts_of
from market.settings import Settings

log = logging.getLogger("market.hooks")


async def run_periodic(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    parts = parts_of(sessions)
    now = utcnow()
    for name, (function, every) in parts.periodic.items():
        last = parts.last_run.get(name)
        if last is not None and (now - last).total_seconds() < every:
            continue
        parts.last_run[name] = now
        try:
            await function(sessions, settings)
        except Exception:
            log.exception("periodic job %s failed", name)


# --- domain events ------------------------------------------------------------------------------
# A lower package announces what happened; a higher one subscribes (the committee opens a case when the
# catalogue reports a submission). Subscribers run in the announcer's transaction, so both commit or neither.


async def emit(event: str, session: AsyncSession, **data: object) -> None:
    for function in list(parts_of(session).subscribers.get(event, [])):
        await function(session, **data)


# --- home page panels ---------------------------------------------------------------------------
# A domain package adds what a role should see first on its home page (a provider's contracts to sign).
# A panel function returns the template to include and its context, or None to show nothing.


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any]


async def home_panels(session: AsyncSession, user: Any) -> list[Panel]:
    """The panels for `user` (a signed-in Principal), in registration order."""
    panels = [await source(session, user) for source in parts_of(session).home_panels]
    return [panel for panel in panels if panel is not None]


# --- service page panels ------------------------------------------------------------------------
# A higher package adds what a buyer needs on a service's page (the committee's certificate).


async def service_panels(session: AsyncSession, service_id: int) -> list[Panel]:
    panels = [await source(session, service_id) for source in parts_of(session).service_panels]
    return [panel for panel in panels if panel is not None]


# --- marks on services in lists -------------------------------------------------------------------
# A higher package marks services in the catalogue's results (the committee: a valid certificate), for many
# services at once, so a page of results costs one query per source.


@dataclass(frozen=True)
class Mark:
    kind: str  # what the mark is, for the API ("certificate")
    text: str  # in the request's language, for pages
    url: str
    data: dict[str, Any]  # the facts, for the API


async def marks_of(session: AsyncSession, service_ids: list[int]) -> dict[int, list[Mark]]:
    marks: dict[int, list[Mark]] = {}
    if not service_ids:
        return marks
    for source in parts_of(session).mark_sources:
        for service_id, mark in (await source(session, service_ids)).items():
            marks.setdefault(service_id, []).append(mark)
    return marks


# --- who reads a provider's submissions ----------------------------------------------------------
# The catalogue shows a submitted (not yet listed) version to committee and secretariat users only; a higher
# package narrows that further (the committee: its current members, never one with a tie to the provider).


async def may_read_submissions(session: AsyncSession, principal: Any, provider_id: int) -> bool:
    for check in parts_of(session).submission_checks:
        if not await check(session, principal, provider_id):
            return False
    return True
