"""The life of a service and of its versions: which changes of state exist, and nothing else.

A service's status is what buyers see (draft, submitted, listed, ...). A version's state is where one
text of the service stands (a draft being edited, a submission, the listed text, a superseded one).
A change not in these tables is refused with 409 and a message saying why.
"""

from __future__ import annotations

from catalog.models import ServiceStatus as S
from catalog.models import VersionState as V
from market.errors import Conflict
from market.i18n import _

# (from, to): what the change is called in messages and audit events.
SERVICE_TRANSITIONS: dict[tuple[str, str], str] = {
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
}

VERSION_TRANSITIONS: dict[tuple[str, str], str] = {
    (V.draft, V.submitted): "submit",
    (V.submitted, V.listed): "list",
    (V.submitted, V.refused): "refuse",
    (V.submitted, V.draft): "return",  # sent back to the provider to change
    (V.listed, V.superseded): "supersede",
}

# A service in these states may have a draft opened, edited and submitted by its provider.
EDITABLE_SERVICE = frozenset({S.draft, S.listed, S.suspended})
# A revision can be started from these, when no other draft or submission is open.
REVISABLE_SERVICE = frozenset({S.draft, S.listed, S.suspended})
# A service that has left the catalogue for good: its page answers 410 Gone.
GONE = frozenset({S.withdrawn, S.expired, S.revoked})
# The service is (still) offered to buyers, though perhaps not in search (suspended).
ON_OFFER = frozenset({S.listed, S.suspended})


def status_label(status: str) -> str:
    labels = {
        S.draft: _("Draft"), S.submitted: _("Submitted"), S.listed: _("Listed"), S.suspended: _("Suspended"),
        S.withdrawn: _("Withdrawn"), S.expired: _("Expired"), S.revoked: _("Revoked"),
    }
    return labels.get(status, status)  # type: ignore[call-overload]


def state_label(state: str) -> str:
    labels = {
        V.draft: _("Draft"), V.submitted: _("Submitted"), V.listed: _("Listed"), V.superseded: _("Superseded"),
        V.refused: _("Refused"),
    }
    return labels.get(state, state)  # type: ignore[call-overload]


def check_service(current: str, target: str) -> str:
    """The name of the change from `current` to `target`, or Conflict if there is no such change."""
    name = SERVICE_TRANSITIONS.get((current, target))
    if name is None:
        raise Conflict(
            _("A service that is %(current)s cannot become %(target)s.",
              current=status_label(current).lower(), target=status_label(target).lower())
        )
    return name


def check_version(current: str, target: str) -> str:
    name = VERSION_TRANSITIONS.get((current, target))
    if name is None:
        raise Conflict(
            _("A version that is %(current)s cannot become %(target)s.",
              current=state_label(current).lower(), target=state_label(target).lower())
        )
    return name


def status_when_version_listed(current: str) -> str:
    """A first listing makes the service listed; a revision listed while suspended leaves it suspended."""
    if current == S.submitted:
        check_service(current, S.listed)
        return S.listed
    if current in ON_OFFER:
        return current
    raise Conflict(_("A service that is %(current)s cannot have a version listed.", current=status_label(current).lower()))


def check_editable(status: str) -> None:
    if status not in EDITABLE_SERVICE:
        if status == S.submitted:
            raise Conflict(_("The service is with the committee; it cannot be changed until they decide."))
        raise Conflict(_("A service that is %(current)s cannot be changed.", current=status_label(status).lower()))
