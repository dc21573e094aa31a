"""The committee's commands under `market committee`."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from committee import certificates
from market.commands import in_transaction, settings_from_env


@click.group("committee")
def commands() -> None:
    """The committee's periodic work."""


@commands.command("sweep")
def committee_sweep() -> None:
    """Expire certificates, send expiry reminders, end suspensions and bring listings in line (the worker runs it daily)."""
    settings = settings_from_env()

    async def work(session: AsyncSession) -> Any:
        return await certificates.sweep(session, settings)

    report = in_transaction(settings, work)
    click.echo(
        f"Committee sweep: {report.expired} certificates expired, {report.reminded} reminders sent, "
        f"{report.resumed} suspensions ended, {report.listings_changed} listings changed."
    )
