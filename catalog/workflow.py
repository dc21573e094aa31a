"""The life of a service and of its versions: which changes of state exist, and nothing else.

A service's status is what buyers see (draft, submitted, listed, ...). A version's state is where one
text of the service stands (a draft being edited, a submission, the listed text, a superseded one).
A change not in these tables is refused with 409 and a message saying why.
"""

from __future__ import annotations

from catalog.models import ServiceStatus as S
from catalog.models import VersionState as V
from market.errors import Conflict
from market.i18n import N_, _
from market.workflow import Workflow

SERVICE = Workflow(
    transitions={
        (S.draft, S.submitted): "submit",
        (S.submitted, S.listed): "list",
        (S.submitted, S.draft): "return",  # the committee returned or refused the first submission
        (S.listed, S.suspended): "suspend",
        (S.suspended, S.listed): "reinstate",
        (S.listed, S.withdrawn): "withdraw",
        (S.suspended, S.withdrawn): "withdraw",
        (S.listed, S.expired): "expire",
        (S.suspended, S.expired): "expire",
        (S.listed, S.revoked): "revoke",
        (S.suspended, S.revoked): "revoke",
    },
    labels={
        S.draft: N_("Draft"),
        S.submitted: N_("Submitted"),
        S.listed: N_("Listed"),
        S.suspended: N_("Suspended"),
        S.withdrawn: N_("Withdrawn"),
        S.expired: N_("Expired"),
        S.revoked: N_("Revoked"),
    },
    refusal=N_("A service that is %(current)s cannot become %(target)s."),
)

VERSION = Workflow(
    transitions={
        (V.draft, V.submitted): "submit",
        (V.submitted, V.listed): "list",
        (V.submitted, V.refused): "refuse",
        (V.submitted, V.draft): "return",  # sent back to the provider to change
        (V.listed, V.superseded): "supersede",
    },
    labels={
        V.draft: N_("Draft"),
        V.submitted: N_("Submitted"),
        V.listed: N_("Listed"),
        V.superseded: N_("Superseded"),
        V.refused: N_("Refused"),
    },
    refusal=N_("A version that is %(current)s cannot become %(target)s."),
)

# A service in these states may have a draft opened, edited and submitted by its provider.
EDITABLE_SERVICE = SERVICE.named({S.draft, S.listed, S.suspended})
# A revision can be started from these (the states a draft may be edited in), when no other draft or submission
# is open.
REVISABLE_SERVICE = EDITABLE_SERVICE
# A service that has left the catalogue for good: its page answers 410 Gone.
GONE = SERVICE.named({S.withdrawn, S.expired, S.revoked})
# The service is (still) offered to buyers, though perhaps not in search (suspended).
ON_OFFER = SERVICE.named({S.listed, S.suspended})

# Versions buyers saw (the listed one and those it replaced): everyone may read them.
EVER_LISTED = VERSION.named({V.listed, V.superseded})
# Versions the committee has or had in hand and did not list: besides the owner, only reviewers may read them.
REVIEWERS_ONLY = VERSION.named({V.submitted, V.refused})


def status_when_version_listed(current: str) -> str:
    """A first listing makes the service listed; a revision listed while suspended leaves it suspended."""
    if current == S.submitted:
        SERVICE.check(current, S.listed)
        return S.listed
    if current in ON_OFFER:
        return current
    raise Conflict(
        _("A service that is %(current)s cannot have a version listed.", current=SERVICE.label(current).lower())
    )


def check_editable(status: str) -> None:
    if status not in EDITABLE_SERVICE:
        if status == S.submitted:
            raise Conflict(_("The service is with the committee; it cannot be changed until they decide."))
        raise Conflict(_("A service that is %(current)s cannot be changed.", current=SERVICE.label(status).lower()))
