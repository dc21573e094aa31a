"""What contracts add to the shell: their tables, pages and API, the OCDS releases and agencies' notices written on
other packages' events, the home page panels, the daily sweep, their commands and demo data."""

from __future__ import annotations

from contracts import (
    cli,
    controllers,
    dashboards,
    demo,
    models,
    notices,
    ocds,
    payments,
    sweep,
)
from market.parts import Parts


def include(parts: Parts) -> None:
    parts.add_models(models)
    parts.add_routes(*controllers.routes())
    parts.subscribe("contract.signed", ocds.on_contract_signed)
    parts.subscribe("contract.amended", ocds.on_contract_amended)
    parts.subscribe("contract.started", ocds.on_contract_started)
    parts.subscribe("contract.completed", ocds.on_contract_completed)
    parts.subscribe("contract.terminated", ocds.on_contract_terminated)
    parts.subscribe("invoice.paid", ocds.on_invoice_paid)
    parts.subscribe("service.delisted", notices.tell_agencies)
    parts.add_outbox_handler(payments.STRIPE_JOB, payments.bill_in_stripe)
    parts.add_home_panel(dashboards.contracts_panel)
    parts.add_periodic("contracts.sweep", 24 * 3600, sweep.periodic_sweep)
    parts.add_command(cli.commands)
    parts.add_command(cli.payment_commands)
    parts.add_demo(demo.load)
