"""The life of a contract, of its versions and of its invoices: which changes of state exist, and nothing else.

A change not in these tables is refused with 409 and a message saying why (`check`).
"""

from __future__ import annotations

from contracts.models import ContractStatus as C
from contracts.models import InvoiceStatus as I
from contracts.models import VersionState as V
from market.errors import Conflict
from market.i18n import _

# (from, to): what the change is called in messages and audit events.
CONTRACT_TRANSITIONS: dict[tuple[str, str], str] = {
    (C.draft, C.sent): "send",
    (C.sent, C.draft): "withdraw",  # the agency takes the sent version back to change it
    (C.sent, C.declined): "decline",
    (C.declined, C.draft): "revise",
    (C.sent, C.signed): "sign",  # the second signature, before the start date
    (C.sent, C.active): "sign",  # the second signature, on or after the start date
    (C.signed, C.active): "start",
    (C.active, C.completed): "complete",
    (C.signed, C.terminated): "terminate",
    (C.active, C.terminated): "terminate",
    (C.draft, C.cancelled): "cancel",
    (C.sent, C.cancelled): "cancel",
    (C.declined, C.cancelled): "cancel",
}

VERSION_TRANSITIONS: dict[tuple[str, str], str] = {
    (V.draft, V.sent): "send",
    (V.sent, V.signed): "sign",
    (V.sent, V.declined): "decline",
    (V.sent, V.withdrawn): "withdraw",
    (V.draft, V.superseded): "supersede",
    (V.sent, V.superseded): "supersede",
    (V.signed, V.superseded): "supersede",  # an amendment signed by both sides replaces it
}

# Out-of-order webhook events must never move an invoice backwards: paid, void and uncollectible are
# final except that an uncollectible invoice may still be paid or voided (as in Stripe).
INVOICE_TRANSITIONS: dict[tuple[str, str], str] = {
    (I.open, I.paid): "pay",
    (I.open, I.void): "void",
    (I.open, I.uncollectible): "mark_uncollectible",
    (I.uncollectible, I.paid): "pay",
    (I.uncollectible, I.void): "void",
}

# A contract in these states binds both parties (amendments, invoices, termination).
IN_FORCE = frozenset({C.signed, C.active})
# Before both signatures: the agency may still cancel.
BEFORE_SIGNATURE = frozenset({C.draft, C.sent, C.declined})
# Shown in the public register.
PUBLIC = frozenset({C.signed, C.active, C.completed, C.terminated})


def check(table: dict[tuple[str, str], str], current: str, target: str, what: str) -> str:
    """The change's name, or 409 naming the states."""
    try:
        return table[(current, target)]
    except KeyError:
        raise Conflict(
            _("%(what)s cannot go from %(current)s to %(target)s.", what=what, current=current, target=target)
        ) from None


def contract_status_label(status: str) -> str:
    labels = {
        C.draft: _("Draft"), C.sent: _("Sent for signature"), C.declined: _("Declined"), C.signed: _("Signed"),
        C.active: _("Active"), C.completed: _("Completed"), C.terminated: _("Terminated"), C.cancelled: _("Cancelled"),
    }
    return labels.get(status, status)  # type: ignore[call-overload]


def invoice_status_label(status: str) -> str:
    labels = {I.open: _("Open"), I.paid: _("Paid"), I.void: _("Void"), I.uncollectible: _("Uncollectible")}
    return labels.get(status, status)  # type: ignore[call-overload]
