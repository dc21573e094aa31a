"""The life of a review case and of a certificate: which changes of state exist, and nothing else.

A case opens at intake (a revision skips the completeness check and opens waiting for members), is checked,
assigned and reviewed, and ends in its decision; a session may override a listing's decision (certified or
rejected) once. A certificate is valid until it is suspended, expires, is revoked or is replaced by its renewal.
A change not in these tables is refused with 409 and a message saying why.
"""

from __future__ import annotations

from committee.models import CaseState as C
from committee.models import CertificateStatus as Z
from market.i18n import N_
from market.workflow import Workflow

CASE = Workflow(
    transitions={
        (C.intake, C.assignment): "complete",
        (C.intake, C.incomplete): "incomplete",
        (C.incomplete, C.intake): "resubmit",
        (C.assignment, C.review): "assign",
        (C.assignment, C.returned): "return",  # the chair returns it for revision
        (C.review, C.returned): "return",
        (C.review, C.certified): "certify",
        (C.review, C.rejected): "reject",
        (C.review, C.approved): "approve",  # a revision
        (C.review, C.refused): "refuse",  # a revision
        (C.certified, C.rejected): "override",  # a session overrides the rule's decision
        (C.rejected, C.certified): "override",
    },
    labels={
        C.intake: N_("Waiting for the completeness check"),
        C.incomplete: N_("Incomplete"),
        C.assignment: N_("Waiting for members"),
        C.review: N_("Under review"),
        C.certified: N_("Certified"),
        C.rejected: N_("Rejected"),
        C.returned: N_("Returned for revision"),
        C.approved: N_("Approved"),
        C.refused: N_("Refused"),
    },
    refusal=N_("A case that is %(current)s cannot become %(target)s."),
)

CERTIFICATE = Workflow(
    transitions={
        (Z.valid, Z.suspended): "suspend",
        (Z.suspended, Z.valid): "reinstate",  # the suspension ran out
        (Z.valid, Z.expired): "expire",
        (Z.suspended, Z.expired): "expire",
        (Z.valid, Z.revoked): "revoke",
        (Z.suspended, Z.revoked): "revoke",
        (Z.valid, Z.renewed): "renew",
        (Z.suspended, Z.renewed): "renew",
        (Z.expired, Z.renewed): "renew",  # a renewal applied for before expiry, decided after
    },
    labels={
        Z.valid: N_("Valid"),
        Z.suspended: N_("Suspended"),
        Z.expired: N_("Expired"),
        Z.revoked: N_("Revoked"),
        Z.renewed: N_("Renewed"),
    },
    refusal=N_("A certificate that is %(current)s cannot become %(target)s."),
)

# A case still before its decision: at most one a service; its members have work to do.
OPEN = CASE.named({C.intake, C.incomplete, C.assignment, C.review})
# A case that has its decision (or was returned): closed for good.
DECIDED = CASE.named(CASE.states - OPEN)
# Complete and not yet decided: members can be assigned, and the chair can return it for revision.
BEFORE_DECISION = CASE.named({C.assignment, C.review})
# With the provider: the case's message says what to supply or revise.
WITH_PROVIDER = CASE.named({C.incomplete, C.returned})
# The outcomes a session may choose between for a listing or a renewal, and those of a revision's light review.
SESSION_OUTCOMES = CASE.named({C.certified, C.rejected})
REVISION_OUTCOMES = CASE.named({C.approved, C.refused})

# A certificate that still stands behind a listing: the sweep and a bar look at these.
LIVE = CERTIFICATE.named({Z.valid, Z.suspended})

case_label = CASE.label
certificate_label = CERTIFICATE.label
