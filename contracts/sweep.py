"""The contracts' daily sweep: contracts start and complete on their dates, then each begun billing period
is invoiced. The worker runs it once a day; `market contracts sweep` runs it by hand. Running it again the
same day changes nothing."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts import invoices
from contracts.lifecycle import advance_contracts
from market import clock
from market.settings import Settings

log = logging.getLogger("contracts.sweep")


@dataclass
class SweepReport:
    today: date
    lifecycle: Any = None  # what the contracts' own sweep reports (started, completed)
    issued: list[str] = field(default_factory=list)  # invoice numbers
    skipped: int = 0

    def lines(self) -> list[str]:
        lines = [f"Contracts sweep for {self.today.isoformat()}:"]
        if isinstance(self.lifecycle, tuple) and len(self.lifecycle) == 2:
            lines.append(f"  {self.lifecycle[0]} contracts started, {self.lifecycle[1]} completed")
        elif self.lifecycle is not None:
            lines.append(f"  contracts: {self.lifecycle}")
        lines.append(f"  {len(self.issued)} invoices issued" + (f": {', '.join(self.issued)}" if self.issued else ""))
        if self.skipped:
            lines.append(f"  {self.skipped} periods were being issued by another process at the same moment")
        return lines


async def sweep(session: AsyncSession, settings: Settings, today: date | None = None) -> SweepReport:
    today = today or clock.today(settings.zone)  # a period starting on 1 March starts at midnight in Seoul
    report = SweepReport(today)
    report.lifecycle = await advance_contracts(session, today)
    issued = await invoices.issue_due_invoices(session, settings, today)
    report.issued = [invoice.number for invoice in issued.invoices]
    report.skipped = issued.skipped
    return report


async def periodic_sweep(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    async with sessions() as session, session.begin():
        report = await sweep(session, settings)
    log.info("%s", " ".join(report.lines()))
