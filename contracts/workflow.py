"""The life of a contract, of its versions and of its invoices: which changes of state exist, and nothing else.

A change not in these tables is refused with 409 and a message naming both states (`check`). The named sets
below are the only spelling of a group of states: the rest of the package asks them, never lists states itself.
"""

from __future__ import annotations

from contracts.models import ContractStatus as C
from contracts.models import InvoiceStatus as I
from contracts.models import VersionState as V
from market.i18n import N_
from market.workflow import Workflow

CONTRACT = Workflow(
    transitions={
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
    },
    labels={
        C.draft: N_("Draft"),
        C.sent: N_("Sent for signature"),
        C.declined: N_("Declined"),
        C.signed: N_("Signed"),
        C.active: N_("Active"),
        C.completed: N_("Completed"),
        C.terminated: N_("Terminated"),
        C.cancelled: N_("Cancelled"),
    },
    refusal=N_("A contract that is %(current)s cannot become %(target)s."),
)

VERSION = Workflow(
    transitions={
        (V.draft, V.sent): "send",
        (V.sent, V.signed): "sign",
        (V.sent, V.declined): "decline",
        (V.sent, V.withdrawn): "withdraw",
        (V.draft, V.superseded): "supersede",
        (V.sent, V.superseded): "supersede",
        (V.signed, V.superseded): "supersede",  # an amendment signed by both sides replaces it
    },
    labels={
        V.draft: N_("Draft"),
        V.sent: N_("Sent for signature"),
        V.signed: N_("Signed by both parties"),
        V.declined: N_("Declined"),
        V.withdrawn: N_("Withdrawn"),
        V.superseded: N_("Superseded"),
    },
    refusal=N_("A version of the contract that is %(current)s cannot become %(target)s."),
)

# Out-of-order webhook events must never move an invoice backwards: paid, void and uncollectible are
# final except that an uncollectible invoice may still be paid or voided (as in Stripe).
INVOICE = Workflow(
    transitions={
        (I.open, I.paid): "pay",
        (I.open, I.void): "void",
        (I.open, I.uncollectible): "mark_uncollectible",
        (I.uncollectible, I.paid): "pay",
        (I.uncollectible, I.void): "void",
    },
    labels={I.open: N_("Open"), I.paid: N_("Paid"), I.void: N_("Void"), I.uncollectible: N_("Uncollectible")},
    refusal=N_("An invoice that is %(current)s cannot become %(target)s."),
)

# A contract in these states binds both parties (amendments, invoices, termination).
IN_FORCE = CONTRACT.named({C.signed, C.active})
# Before both signatures: the agency may still cancel.
BEFORE_SIGNATURE = CONTRACT.named({C.draft, C.sent, C.declined})
# Both parties signed it once: shown in the public register, and the agency may draft its renewal.
PUBLIC = CONTRACT.named({C.signed, C.active, C.completed, C.terminated})
RENEWABLE = PUBLIC
# Ended without running its course: the reason given is shown with it.
ENDED_WITH_REASON = CONTRACT.named({C.declined, C.terminated, C.cancelled})
# Its term has come to a close, at its end or earlier.
CLOSED = CONTRACT.named({C.completed, C.terminated})
# A sent version waits for signatures: an original before both signed, or an amendment to a contract in force.
AWAITING_SIGNATURES = CONTRACT.named({C.sent, *IN_FORCE})
# The service is being supplied or was: its billing periods are invoiced.
INVOICED = CONTRACT.named({C.active, C.completed})

# A version not yet signed or refused: the one being prepared or waiting for signatures.
PENDING_VERSION = VERSION.named({V.draft, V.sent})

# An invoice the agency still owes.
PAYABLE = INVOICE.named({I.open, I.uncollectible})
# An invoice nothing more is owed on.
SETTLED = INVOICE.named({I.paid, I.void})
