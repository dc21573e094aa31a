"""The committee: reviews submitted services, certifies, renews, suspends and revokes them.

Its public surface for higher packages (contracts): whether a service is certified and listed, its certificate,
and whether a provider is barred.
"""

from committee import cases as _cases  # registers the submission subscribers
from committee import (
    members as _members,  # registers the check on who reads submissions
)
from committee import panels as _panels  # the certificate on the service page
from committee.certificates import (
    active_bar,
    certificate_by_number,
    certificate_json,
    certificate_of_service,
    sweep,
)

__all__ = ["active_bar", "certificate_by_number", "certificate_json", "certificate_of_service", "sweep"]
del _cases, _members, _panels
