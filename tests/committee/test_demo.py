"""`market demo` adds review cases in every state and a few certified services, once."""

from __future__ import annotations

import sqlalchemy as sa

from committee.models import Case, Certificate
from market import demo
from tests.helpers import count


async def test_the_demo_adds_cases_in_every_state_and_certified_services_once(sessions, settings):
    async with sessions() as session, session.begin():
        await demo.load(session, settings, echo=lambda _line: None)
    async with sessions() as session:
        states = set((await session.scalars(sa.select(Case.state))).all())
    assert {"intake", "incomplete", "assignment", "review", "certified", "rejected", "returned"} <= states
    certificates = await count(sessions, Certificate)
    assert certificates >= 3
    cases = await count(sessions, Case)
    async with sessions() as session, session.begin():
        await demo.load(session, settings, echo=lambda _line: None)
    assert (await count(sessions, Case), await count(sessions, Certificate)) == (cases, certificates)
