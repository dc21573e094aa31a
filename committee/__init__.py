"""The committee: reviews submitted services, certifies, renews, suspends and revokes them.

Its public surface for higher packages (contracts): whether a service is certified and listed, its certificate,
and whether a provider is barred.
"""

from committee.certificates import active_bar, certificate_by_number, certificate_json, certificate_of_service, sweep

__all__ = ["active_bar", "certificate_by_number", "certificate_json", "certificate_of_service", "sweep"]
