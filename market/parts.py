"""What each package adds to the shell, gathered by the app factory from every package's `include(parts)`.

One `Parts` per app: the factory (`market.assembly.assemble`) builds it, hands it to each package's include
function, and puts it in the app's state and in the `info` of every session the app opens, so the hooks
(`market.hooks.emit`, the panels, the periodic jobs) reach the subscribers of the app the session belongs to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from market.settings import Settings

if TYPE_CHECKING:
    import click

    from market.hooks import Mark, Panel
    from market.outbox import Job

PARTS_KEY = "market.parts"  # in a session's `info`: the parts of the app that opened it

Subscriber = Callable[..., Awaitable[None]]
Periodic = Callable[[async_sessionmaker[AsyncSession], Settings], Awaitable[None]]
PanelSource = Callable[[AsyncSession, Any], Awaitable["Panel | None"]]
ServicePanelSource = Callable[[AsyncSession, int], Awaitable["Panel | None"]]
MarkSource = Callable[[AsyncSession, list[int]], Awaitable[dict[int, "Mark"]]]
SubmissionCheck = Callable[[AsyncSession, Any, int], Awaitable[bool]]
OutboxHandler = Callable[["Job", Settings], Awaitable[None]]
DemoLoader = Callable[[AsyncSession, Settings, Callable[[str], None]], Awaitable[int]]


class Parts:
    """The routes, tables, event subscribers, periodic jobs, outbox handlers, panels, commands and demo data of every
    package."""

    def __init__(self) -> None:
        self.routes: list[Any] = []
        self.model_modules: list[ModuleType] = []
        self.subscribers: dict[str, list[Subscriber]] = {}
        self.periodic: dict[str, tuple[Periodic, float]] = {}
        self.last_run: dict[str, datetime] = {}  # when each periodic job last ran in this process
        self.home_panels: list[PanelSource] = []
        self.service_panels: list[ServicePanelSource] = []
        self.mark_sources: list[MarkSource] = []
        self.submission_checks: list[SubmissionCheck] = []
        self.commands: list[click.Command] = []
        self.demo_loaders: list[DemoLoader] = []
        self.outbox_handlers: dict[str, OutboxHandler] = {}

    def add_routes(self, *handlers: Any) -> None:
        self.routes.extend(handlers)

    def add_models(self, *modules: ModuleType) -> None:
        """The modules whose SQLModel tables belong on the metadata (imported by the include function itself)."""
        self.model_modules.extend(modules)

    def subscribe(self, event: str, function: Subscriber) -> None:
        """Run `function(session, **data)` whenever `event` is announced, in the announcer's transaction."""
        if function not in self.subscribers.setdefault(event, []):
            self.subscribers[event].append(function)

    def add_periodic(self, name: str, every_seconds: float, function: Periodic) -> None:
        """A sweep the worker runs at most every `every_seconds` (per process)."""
        self.periodic[name] = (function, every_seconds)

    def add_home_panel(self, source: PanelSource) -> None:
        """What a role should see first on its home page."""
        if source not in self.home_panels:
            self.home_panels.append(source)

    def add_service_panel(self, source: ServicePanelSource) -> None:
        """What a buyer needs on a service's page."""
        if source not in self.service_panels:
            self.service_panels.append(source)

    def add_service_marks(self, source: MarkSource) -> None:
        """Marks on services in the catalogue's results, for many services at once."""
        if source not in self.mark_sources:
            self.mark_sources.append(source)

    def add_submission_check(self, check: SubmissionCheck) -> None:
        """Narrows who reads a provider's submitted (not yet listed) versions."""
        if check not in self.submission_checks:
            self.submission_checks.append(check)

    def add_outbox_handler(self, kind: str, function: OutboxHandler) -> None:
        """Carries out the outbox's messages of `kind` after their transaction committed (e-mail, Stripe)."""
        self.outbox_handlers[kind] = function

    def add_command(self, command: click.Command) -> None:
        """A command (or group) under the `market` command."""
        self.commands.append(command)

    def add_demo(self, loader: DemoLoader) -> None:
        """`loader(session, settings, echo) -> records created`, run by `market demo` after the shell's own."""
        self.demo_loaders.append(loader)

    def session_info(self) -> dict[str, Any]:
        """The `info` of every session opened for this app."""
        return {PARTS_KEY: self}

    def sessions(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        """Sessions on `engine` that announce to this app's subscribers."""
        return async_sessionmaker(engine, expire_on_commit=False, info=self.session_info())


def parts_of(source: AsyncSession | async_sessionmaker[AsyncSession]) -> Parts:
    """The parts of the app a session (or a maker of sessions) belongs to."""
    info = source.info if isinstance(source, AsyncSession) else source.kw.get("info", {})
    parts = info.get(PARTS_KEY)
    if parts is None:
        raise RuntimeError("This session belongs to no app: open it with `Parts.sessions(engine)` or through the app.")
    return parts
