"""Hooks the domain packages register into the shell, so arrows keep pointing down."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from market.database import utcnow
from market.settings import Settings

log = logging.getLogger("market.hooks")

Periodic = Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[None]]
_periodic: dict[str, tuple[Periodic, float]] = {}
_last_run: dict[str, datetime] = {}


def periodic(name: str, every_seconds: float) -> Callable[[Periodic], Periodic]:
    """Register a sweep the worker runs at most every `every_seconds` (per process)."""

    def register(function: Periodic) -> Periodic:
        _periodic[name] = (function, every_seconds)
        return function

    return register


async def run_periodic(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    now = utcnow()
    for name, (function, every) in _periodic.items():
        last = _last_run.get(name)
        if last is not None and (now - last).total_seconds() < every:
            continue
        _last_run[name] = now
        try:
            await function(sessions, settings)
        except Exception:
            log.exception("periodic job %s failed", name)


# --- domain events ------------------------------------------------------------------------------
# A lower package announces what happened; a higher one subscribes (the committee opens a case when the
# catalogue reports a submission). Subscribers run in the announcer's transaction, so both commit or neither.

Subscriber = Callable[..., Awaitable[None]]
_subscribers: dict[str, list[Subscriber]] = {}


def subscribe(event: str) -> Callable[[Subscriber], Subscriber]:
    def register(function: Subscriber) -> Subscriber:
        if function not in _subscribers.setdefault(event, []):
            _subscribers[event].append(function)
        return function

    return register


async def emit(event: str, session: AsyncSession, **data: object) -> None:
    for function in _subscribers.get(event, []):
        await function(session, **data)


# --- home page panels ---------------------------------------------------------------------------
# A domain package adds what a role should see first on its home page (a provider's contracts to sign).
# A panel function returns the template to include and its context, or None to show nothing.

@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any]


PanelSource = Callable[[AsyncSession, Any], Awaitable[Panel | None]]
_panels: list[PanelSource] = []


def home_panel(function: PanelSource) -> PanelSource:
    if function not in _panels:
        _panels.append(function)
    return function


async def home_panels(session: AsyncSession, user: Any) -> list[Panel]:
    """The panels for `user` (a signed-in Principal), in registration order."""
    panels = [await source(session, user) for source in _panels]
    return [panel for panel in panels if panel is not None]


# --- service page panels ------------------------------------------------------------------------
# A higher package adds what a buyer needs on a service's page (the committee's certificate).

ServicePanelSource = Callable[[AsyncSession, int], Awaitable[Panel | None]]
_service_panels: list[ServicePanelSource] = []


def service_panel(function: ServicePanelSource) -> ServicePanelSource:
    if function not in _service_panels:
        _service_panels.append(function)
    return function


async def service_panels(session: AsyncSession, service_id: int) -> list[Panel]:
    panels = [await source(session, service_id) for source in _service_panels]
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


MarkSource = Callable[[AsyncSession, list[int]], Awaitable[dict[int, Mark]]]
_mark_sources: list[MarkSource] = []


def service_marks(function: MarkSource) -> MarkSource:
    if function not in _mark_sources:
        _mark_sources.append(function)
    return function


async def marks_of(session: AsyncSession, service_ids: list[int]) -> dict[int, list[Mark]]:
    marks: dict[int, list[Mark]] = {}
    if not service_ids:
        return marks
    for source in _mark_sources:
        for service_id, mark in (await source(session, service_ids)).items():
            marks.setdefault(service_id, []).append(mark)
    return marks


# --- who reads a provider's submissions ----------------------------------------------------------
# The catalogue shows a submitted (not yet listed) version to committee and secretariat users only; a higher
# package narrows that further (the committee: its current members, never one with a tie to the provider).

SubmissionCheck = Callable[[AsyncSession, Any, int], Awaitable[bool]]
_submission_checks: list[SubmissionCheck] = []


def submission_check(function: SubmissionCheck) -> SubmissionCheck:
    if function not in _submission_checks:
        _submission_checks.append(function)
    return function


async def may_read_submissions(session: AsyncSession, principal: Any, provider_id: int) -> bool:
    for check in _submission_checks:
        if not await check(session, principal, provider_id):
            return False
    return True
