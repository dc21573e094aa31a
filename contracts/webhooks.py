"""Stripe's webhook: `POST /webhooks/stripe`, no login (Stripe signs it), no CSRF (excluded for /webhooks).

The signature is checked on the raw body before anything else. The event id is stored in the same
transaction as its effect, and the answer is sent only after that transaction committed: a redelivery
finds the id and does nothing, and any failure (the database unreachable) answers 5xx so Stripe retries."""

from __future__ import annotations

import json
import logging
from datetime import UTC, tzinfo
from typing import Any

import stripe
from litestar import Request, post
from sqlalchemy.ext.asyncio import AsyncSession

from contracts import payments
from market.errors import BadRequest, Unavailable
from market.i18n import _
from market.web import DbSession

log = logging.getLogger("contracts.webhooks")

TOLERANCE_SECONDS = 300
# The events that change an invoice, and the status each reports.
INVOICE_EVENTS = {"invoice.paid": "paid", "invoice.voided": "void", "invoice.marked_uncollectible": "uncollectible"}


def verified_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, once its signature matches and is recent; 400 otherwise."""
    if not secret:
        raise Unavailable(_("Stripe webhooks are not configured here."))
    try:
        stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE_SECONDS)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise BadRequest(_("The Stripe signature does not match or is too old.")) from exc
    except ValueError as exc:  # not UTF-8, not JSON, not an event
        raise BadRequest(_("The body is not a Stripe event.")) from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise BadRequest(_("The body is not a Stripe event."))
    return event


async def handle_event(session: AsyncSession, event: dict[str, Any], zone: tzinfo = UTC) -> dict[str, Any]:
    created = int(event.get("created") or 0)
    if not await payments.store_event(session, event["id"], event["type"], created):
        return {"received": True, "duplicate": True}
    applied = None
    target = INVOICE_EVENTS.get(event["type"])
    stripe_invoice = (event.get("data") or {}).get("object") or {}
    if target and isinstance(stripe_invoice, dict) and stripe_invoice.get("id"):
        invoice = await payments.find_invoice(session, stripe_invoice)
        if invoice is None:
            log.warning("Stripe event %s names invoice %s, which is not ours", event["id"], stripe_invoice.get("id"))
        else:
            applied = await payments.apply_stripe_status(
                session, invoice, {**stripe_invoice, "status": target}, created, f"webhook {event['id']}", zone
            )
    return {"received": True, "duplicate": False, "applied": applied}


@post("/webhooks/stripe", include_in_schema=False, status_code=200)
async def stripe_webhook(request: Request, db_session: DbSession) -> dict[str, Any]:
    from market.state import settings_of

    settings = settings_of(request.app)
    event = verified_event(
        await request.body(), request.headers.get("stripe-signature"), settings.stripe_webhook_secret
    )
    result = await handle_event(db_session, event, settings.zone)
    await db_session.commit()  # before answering: a 2xx tells Stripe the effect is kept
    return result
