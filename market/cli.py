"""The `market` command."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import sys
from typing import Any

import click
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from market.commands import (
    checked_engine,
    ensure_data_dir,
    in_transaction,
    refuse_missing_sqlite,
    settings_from_env,
    unreachable,
    where,
)


class MarketCommands(click.Group):
    """The shell's commands, and the packages' (`Parts.add_command`), assembled when first asked for: a shell command
    (`market db upgrade`) imports no package."""

    @functools.cached_property
    def packages(self) -> dict[str, click.Command]:
        from market.assembly import assemble

        return {command.name: command for command in assemble().commands if command.name}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.packages})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self.packages.get(cmd_name)


@click.group(cls=MarketCommands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The cloud service marketplace: serve it, migrate its database, load demo data, verify its audit trail."""
    logging.basicConfig(
        level=os.environ.get("MARKET_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


@main.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="127.0.0.1 or $HOST")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "8000")), type=int, show_default="8000 or $PORT")
@click.option(
    "--workers", default=1, type=int, show_default=True, help="Server processes (use PostgreSQL for more than one)."
)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the marketplace over HTTP."""
    import uvicorn

    settings = settings_from_env()
    ensure_data_dir(settings)

    async def check() -> None:
        await (await checked_engine(settings)).dispose()

    asyncio.run(check())  # refuse here, in words, rather than in a failing server process
    click.echo(f"Serving on http://{host}:{port} (database: {where(settings)})")
    # proxy_headers off: the app decides the client address itself, from MARKET_TRUSTED_PROXIES (market.forwarded)
    uvicorn.run(
        "market.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        log_level="info",
    )


@main.group()
def db() -> None:
    """Database schema migrations."""


@db.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from market import schema_version

    settings = settings_from_env()
    ensure_data_dir(settings)
    try:
        schema_version.upgrade(settings.database_url, revision)
    except (OSError, DBAPIError) as exc:
        raise unreachable(settings, exc) from exc
    click.echo(f"Database upgraded to {revision}.")


@db.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (e.g. -1 or base)."""
    from market import schema_version

    settings = settings_from_env()
    refuse_missing_sqlite(settings)
    try:
        schema_version.downgrade(settings.database_url, revision)
    except (OSError, DBAPIError) as exc:
        raise unreachable(settings, exc) from exc
    click.echo(f"Database downgraded to {revision}.")


@db.command()
def current() -> None:
    """Show the database's revision and the code's head."""
    from market import schema_version
    from market.database import create_engine

    settings = settings_from_env()

    async def read() -> str | None:
        try:
            refuse_missing_sqlite(settings)
        except click.ClickException:
            return None  # no file yet: empty, and left uncreated
        engine = create_engine(settings.database_url, pooled=False)
        try:
            return await schema_version.current(engine)
        except (OSError, DBAPIError) as exc:
            raise unreachable(settings, exc) from exc
        finally:
            await engine.dispose()

    at, head = asyncio.run(read()), schema_version.head()
    click.echo(
        f"database: {at or 'empty'}\ncode head: {head}\n"
        + ("up to date" if at == head else "behind: run `market db upgrade`")
    )
    if at != head:
        sys.exit(1)


@main.command()
def demo() -> None:
    """Load the demo organisations, users and data (running it again changes nothing)."""
    from market.demo import load

    settings = settings_from_env()
    created = in_transaction(settings, lambda session: load(session, settings, echo=click.echo))
    click.echo(
        f"Demo data loaded ({created} new records)." if created else "Demo data already present; nothing changed."
    )


@main.group()
def user() -> None:
    """User accounts."""


@user.command("create")
@click.option("--email", required=True)
@click.option(
    "--role",
    "kind",
    required=True,
    type=click.Choice(["operator", "committee", "agency", "provider"]),
    help="The kind of organisation the user belongs to.",
)
@click.option("--org", "org_name", required=True, help="Organisation name; created when missing.")
@click.option("--name", default="", help="Display name (defaults to the e-mail's local part).")
@click.option(
    "--registration-number", default=None, help="For a new agency (institution code) or provider (business number)."
)
@click.option(
    "--member",
    is_flag=True,
    help="Make a member with the organisation kind's first role (an agency's buyer, a provider's signer, committee or operator member) instead of an administrator.",
)
@click.password_option(
    envvar="MARKET_NEW_USER_PASSWORD", help="Password (asked for when not given; or $MARKET_NEW_USER_PASSWORD)."
)
def create_user(
    email: str, kind: str, org_name: str, name: str, registration_number: str | None, member: bool, password: str
) -> None:
    """Create a user (the first operator, for example) and its organisation if needed."""
    import sqlalchemy as sa

    from market import accounts
    from market.auth import SystemActor
    from market.errors import DomainError
    from market.models import Organisation

    settings = settings_from_env()

    async def work(session: AsyncSession) -> Any:
        actor = SystemActor(email="cli")
        organisation = await session.scalar(
            sa.select(Organisation).where(col(Organisation.name) == org_name, col(Organisation.kind) == kind)
        )
        if organisation is None:
            organisation = await accounts.create_organisation(
                session, actor, kind=kind, name=org_name, registration_number=registration_number
            )
        return await accounts.create_user(
            session,
            actor,
            organisation=organisation,
            email=email,
            name=name or email.split("@")[0],
            password=password,
            role=None if member else "admin",
        )

    try:
        created = in_transaction(settings, work)
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

    result = in_transaction(settings_from_env(), audit_log.verify)
    if result.ok:
        click.echo(f"Audit chain intact: {result.checked} events verified.")
        return
    click.echo(
        f"Audit chain BROKEN at event {result.broken_seq}: {result.reason} ({result.checked} events verified before it).",
        err=True,
    )
    sys.exit(1)


@main.command()
@click.option("--once", is_flag=True, help="Carry out the due jobs once and exit.")
def worker(once: bool) -> None:
    """Carry out outbox jobs (e-mail, webhooks, payments) and periodic sweeps."""
    from market import hooks, outbox
    from market.assembly import assemble

    settings = settings_from_env()
    parts = assemble()

    async def run() -> None:
        engine = await checked_engine(settings, pooled=True)
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


if __name__ == "__main__":
    main()
