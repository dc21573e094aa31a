"""Contracts' commands under `market contracts` and `market payments`."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncSession

from market.commands import in_transaction, settings_from_env


@click.group("contracts")
def commands() -> None:
    """The contracts' periodic work, and checking a signature's evidence."""


@commands.command("sweep")
@click.option(
    "--today",
    "on",
    default=None,
    help="The day to sweep for, as YYYY-MM-DD (default: today in the marketplace's time zone).",
)
def contracts_sweep(on: str | None) -> None:
    """Start and complete contracts on their dates and issue the invoices of begun billing periods (the worker runs it daily)."""
    from datetime import date

    settings = settings_from_env()
    try:
        day = date.fromisoformat(on) if on else None
    except ValueError as exc:
        raise click.BadParameter(f"{on!r} is not a date as YYYY-MM-DD", param_hint="--today") from exc

    async def work(session: AsyncSession) -> Any:
        from contracts import sweep

        return await sweep.sweep(session, settings, day)

    report = in_transaction(settings, work)
    click.echo("\n".join(report.lines()))


@commands.command("verify-signature")
@click.argument("bundle", type=click.File("rb"))
@click.option(
    "--document",
    type=click.File("rb"),
    default=None,
    help="The signed document, to check it is the one the signature names.",
)
def contracts_verify_signature(bundle: Any, document: Any) -> None:
    """Check a signature's evidence bundle (the contract page's "Evidence (JSON)"), with no database and no network.
    Exits 0 when it verifies, 1 when it does not, 2 for a password signature (no cryptographic proof)."""
    import json

    from contracts import verify_signature

    try:
        data = json.load(bundle)
    except ValueError as exc:
        raise click.ClickException(f"{bundle.name} is not JSON: {exc}") from exc
    verdict = verify_signature.verify(data, document.read() if document else None)
    click.echo(verdict.summary())
    sys.exit(verify_signature.exit_code(verdict))


@click.group("payments")
def payment_commands() -> None:
    """Payments through Stripe."""


@payment_commands.command("reconcile")
def payments_reconcile() -> None:
    """Compare Stripe's invoices with ours and repair ours (status, payment, Stripe id); print what differed."""
    from contracts import payments as stripe_payments

    settings = settings_from_env()
    if not settings.stripe_api_key:
        raise click.ClickException(
            "MARKET_STRIPE_API_KEY is not set: payments are manual and there is nothing to reconcile."
        )
    try:
        found = asyncio.run(stripe_payments.fetch_stripe_invoices(settings))
    except Exception as exc:  # the SDK's errors and network failures alike: say what happened, exit non-zero
        raise click.ClickException(f"Cannot list Stripe's invoices at {settings.stripe_api_base}: {exc}") from exc

    async def work(session: AsyncSession) -> Any:
        return await stripe_payments.reconcile(session, found, zone=settings.zone)

    report = in_transaction(settings, work)
    click.echo(f"Stripe invoices checked: {report.checked}")
    for title, lines in (
        ("Repaired", report.repaired),
        ("Linked to their Stripe invoice", report.linked),
        ("Differing, left as they are (ours cannot move back)", report.disagreeing),
        ("In Stripe but not ours", report.unknown),
        ("Ours (Stripe mode) missing from Stripe", report.missing),
        ("Of those, sent again (their sending had given up)", report.requeued),
    ):
        click.echo(f"{title}: {len(lines)}")
        for line in lines:
            click.echo(f"  {line}")
