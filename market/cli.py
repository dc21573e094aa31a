"""The `market` command."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from market.settings import Settings, SettingsError, configure

T = TypeVar("T")


def _settings() -> Settings:
    """The settings; the command's messages are in the default language (MARKET_DEFAULT_LANGUAGE)."""
    from market import i18n

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    i18n.current_language.set(settings.default_language)
    return configure(settings)


def _where(settings: Settings) -> str:
    """The database's location without its credentials."""
    return settings.database_url.split("@")[-1]


def _unreachable(settings: Settings, exc: Exception) -> click.ClickException:
    return click.ClickException(f"Cannot reach the database at {_where(settings)}: {getattr(exc, 'orig', None) or exc}")


def _refuse_missing_sqlite(settings: Settings) -> None:
    """Connecting would create an empty file (or fail on a missing folder): say what to run instead."""
    path = make_url(settings.database_url).database if settings.is_sqlite else None
    if path and path != ":memory:" and not Path(path).exists():
        raise click.ClickException(f"The database file {path} does not exist yet. Run `market db upgrade` first.")


async def _checked_engine(settings: Settings, *, pooled: bool = False) -> AsyncEngine:
    """An engine on a reachable database whose schema is at the code's head, or a ClickException saying what to do."""
    from market import schema_version
    from market.database import create_engine

    _refuse_missing_sqlite(settings)
    engine = create_engine(settings.database_url, pooled=pooled)
    try:
        await schema_version.ensure_current(engine)
    except schema_version.SchemaBehind as exc:
        await engine.dispose()
        raise click.ClickException(str(exc)) from exc
    except (OSError, DBAPIError) as exc:
        await engine.dispose()
        raise _unreachable(settings, exc) from exc
    return engine


def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one transaction on a short-lived engine, once the schema is known to be current."""
    from market.assembly import assemble

    parts = assemble()  # the packages' tables, and their subscribers for what the work announces

    async def run() -> T:
        engine = await _checked_engine(settings)
        try:
            async with parts.sessions(engine)() as session, session.begin():
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _ensure_data_dir(settings: Settings) -> None:
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The cloud service marketplace: serve it, migrate its database, load demo data, verify its audit trail."""
    logging.basicConfig(level=os.environ.get("MARKET_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@main.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1 or $HOST")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int, show_default="8000 or $PORT")
@click.option("--workers", default=1, type=int, show_default=True, help="Server processes (use PostgreSQL for more than one).")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the marketplace over HTTP."""
    import uvicorn

    settings = _settings()
    _ensure_data_dir(settings)

    async def check() -> None:
        await (await _checked_engine(settings)).dispose()

    asyncio.run(check())  # refuse here, in words, rather than in a failing server process
    click.echo(f"Serving on http://{host}:{port} (database: {_where(settings)})")
    # proxy_headers off: the app decides the client address itself, from MARKET_TRUSTED_PROXIES (market.forwarded)
    uvicorn.run("market.app:create_app", factory=True, host=host, port=port, workers=workers, proxy_headers=False, log_level="info")


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from market import schema_version

    settings = _settings()
    _ensure_data_dir(settings)
    try:
        schema_version.upgrade(settings.database_url, revision)
    except (OSError, DBAPIError) as exc:
        raise _unreachable(settings, exc) from exc
    click.echo(f"Database upgraded to {revision}.")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. -1 or base)."""
    from market import schema_version

    settings = _settings()
    _refuse_missing_sqlite(settings)
    try:
        schema_version.downgrade(settings.database_url, revision)
    except (OSError, DBAPIError) as exc:
        raise _unreachable(settings, exc) from exc
    click.echo(f"Database downgraded to {revision}.")


@db.command()
def current() -> None:
    """Show the database's revision and the code's head."""
    from market import schema_version
    from market.database import create_engine

    settings = _settings()

    async def read() -> str | None:
        try:
            _refuse_missing_sqlite(settings)
        except click.ClickException:
            return None  # no file yet: empty, and left uncreated
        engine = create_engine(settings.database_url, pooled=False)
        try:
            return await schema_version.current(engine)
        except (OSError, DBAPIError) as exc:
            raise _unreachable(settings, exc) from exc
        finally:
            await engine.dispose()

    at, head = asyncio.run(read()), schema_version.head()
    click.echo(f"database: {at or 'empty'}\ncode head: {head}\n" + ("up to date" if at == head else "behind: run `market db upgrade`"))
    if at != head:
        sys.exit(1)


@main.command()
def demo() -> None:
    """Load the demo organisations, users and data (running it again changes nothing)."""
    from market.demo import load

    settings = _settings()
    created = _with_session(settings, lambda session: load(session, settings, echo=click.echo))
    click.echo(f"Demo data loaded ({created} new records)." if created else "Demo data already present; nothing changed.")


@main.group()
def user() -> None:
    """User accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--role", "kind", required=True, type=click.Choice(["operator", "committee", "agency", "provider"]), help="The kind of organisation the user belongs to.")
@click.option("--org", "org_name", required=True, help="Organisation name; created when missing.")
@click.option("--name", default="", help="Display name (defaults to the e-mail's local part).")
@click.option("--registration-number", default=None, help="For a new agency (institution code) or provider (business number).")
@click.option("--member", is_flag=True, help="Make a member with the organisation kind's first role (an agency's buyer, a provider's signer, committee or operator member) instead of an administrator.")
@click.password_option(envvar="MARKET_NEW_USER_PASSWORD", help="Password (asked for when not given; or $MARKET_NEW_USER_PASSWORD).")
def create_user(email: str, kind: str, org_name: str, name: str, registration_number: str | None, member: bool, password: str) -> None:
    """Create a user (the first operator, for example) and its organisation if needed."""
    import sqlalchemy as sa

    from market import accounts
    from market.auth import SystemActor
    from market.errors import DomainError
    from market.models import Organisation

    settings = _settings()

    async def work(session: AsyncSession) -> Any:
        actor = SystemActor(email="cli")
        organisation = await session.scalar(sa.select(Organisation).where(Organisation.name == org_name, Organisation.kind == kind))
        if organisation is None:
            organisation = await accounts.create_organisation(session, actor, kind=kind, name=org_name, registration_number=registration_number)
        return await accounts.create_user(
            session, actor, organisation=organisation, email=email, name=name or email.split("@")[0],
            password=password, role=None if member else "admin",
        )

    try:
        created = _with_session(settings, work)
    except DomainError as exc:
        details = "; ".join(f"{key}: {value}" for key, value in exc.errors.items())
        raise click.ClickException(f"{exc.detail} {details}".strip()) from exc
    click.echo(f"Created user {created.email} ({kind}, {created.role}) in {org_name}.")


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit non-zero naming the first broken link."""
    from market import audit as audit_log

    result = _with_session(_settings(), audit_log.verify)
    if result.ok:
        click.echo(f"Audit chain intact: {result.checked} events verified.")
        return
    click.echo(f"Audit chain BROKEN at event {result.broken_seq}: {result.reason} ({result.checked} events verified before it).", err=True)
    sys.exit(1)


@main.command()
@click.option("--once", is_flag=True, help="Carry out the due jobs once and exit.")
def worker(once: bool) -> None:
    """Carry out outbox jobs (e-mail, webhooks, payments) and periodic sweeps."""
    from market import hooks, outbox
    from market.assembly import assemble

    settings = _settings()
    parts = assemble()

    async def run() -> None:
        engine = await _checked_engine(settings, pooled=True)
        sessions = parts.sessions(engine)
        try:
            if once:
                await hooks.run_periodic(sessions, settings)
                count = 0
                while done := await outbox.run_once(sessions, settings):
                    count += done
                click.echo(f"{count} jobs attempted.")
            else:
                click.echo("Worker running; Ctrl+C stops it.")
                await outbox.run_forever(sessions, settings)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        click.echo("Worker stopped.")


@main.group()
def committee() -> None:
    """The committee's periodic work."""


@committee.command("sweep")
def committee_sweep() -> None:
    """Expire certificates, send expiry reminders, end suspensions and bring listings in line (the worker runs it daily)."""
    settings = _settings()

    async def work(session: AsyncSession) -> Any:
        from committee import service

        return await service.sweep(session, settings)

    report = _with_session(settings, work)
    click.echo(
        f"Committee sweep: {report.expired} certificates expired, {report.reminded} reminders sent, "
        f"{report.resumed} suspensions ended, {report.listings_changed} listings changed."
    )


@main.group()
def contracts() -> None:
    """The contracts' periodic work, and checking a signature's evidence."""


@contracts.command("sweep")
@click.option("--today", "on", default=None, help="The day to sweep for, as YYYY-MM-DD (default: today in the marketplace's time zone).")
def contracts_sweep(on: str | None) -> None:
    """Start and complete contracts on their dates and issue the invoices of begun billing periods (the worker runs it daily)."""
    from datetime import date

    settings = _settings()
    try:
        day = date.fromisoformat(on) if on else None
    except ValueError as exc:
        raise click.BadParameter(f"{on!r} is not a date as YYYY-MM-DD", param_hint="--today") from exc

    async def work(session: AsyncSession) -> Any:
        from contracts import sweep

        return await sweep.sweep(session, settings, day)

    report = _with_session(settings, work)
    click.echo("\n".join(report.lines()))


@contracts.command("verify-signature")
@click.argument("bundle", type=click.File("rb"))
@click.option("--document", type=click.File("rb"), default=None, help="The signed document, to check it is the one the signature names.")
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


@main.group()
def payments() -> None:
    """Payments through Stripe."""


@payments.command("reconcile")
def payments_reconcile() -> None:
    """Compare Stripe's invoices with ours and repair ours (status, payment, Stripe id); print what differed."""
    from contracts import payments as stripe_payments

    settings = _settings()
    if not settings.stripe_api_key:
        raise click.ClickException("MARKET_STRIPE_API_KEY is not set: payments are manual and there is nothing to reconcile.")
    try:
        found = asyncio.run(stripe_payments.fetch_stripe_invoices(settings))
    except Exception as exc:  # the SDK's errors and network failures alike: say what happened, exit non-zero
        raise click.ClickException(f"Cannot list Stripe's invoices at {settings.stripe_api_base}: {exc}") from exc

    async def work(session: AsyncSession) -> Any:
        return await stripe_payments.reconcile(session, found, zone=settings.zone)

    report = _with_session(settings, work)
    click.echo(f"Stripe invoices checked: {report.checked}")
    for title, lines in (("Repaired", report.repaired), ("Linked to their Stripe invoice", report.linked),
                         ("Differing, left as they are (ours cannot move back)", report.disagreeing),
                         ("In Stripe but not ours", report.unknown), ("Ours (Stripe mode) missing from Stripe", report.missing),
                         ("Of those, sent again (their sending had given up)", report.requeued)):
        click.echo(f"{title}: {len(lines)}")
        for line in lines:
            click.echo(f"  {line}")


if __name__ == "__main__":
    main()
