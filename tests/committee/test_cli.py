"""`market committee sweep` runs the expiry sweep from the command line."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
from click.testing import CliRunner

from committee.models import Certificate
from market import clock
from market.cli import main
from tests.committee.factories import certified_service, world


def test_the_sweep_command_expires_certificates_past_their_end(sessions, database_url, tmp_path, monkeypatch):
    async def arrange() -> int:
        w = await world(sessions)
        _service_id, case_id = await certified_service(w)
        async with sessions() as session, session.begin():
            certificate = await session.scalar(sa.select(Certificate).where(Certificate.case_id == case_id))
            certificate.valid_to = clock.today() - timedelta(days=1)
        return case_id

    case_id = asyncio.run(arrange())
    monkeypatch.setenv("MARKET_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["committee", "sweep"])
    assert result.exit_code == 0, result.output
    assert "1 certificates expired" in result.output

    async def status() -> str:
        async with sessions() as session:
            return await session.scalar(sa.select(Certificate.status).where(Certificate.case_id == case_id))

    assert asyncio.run(status()) == "expired"
