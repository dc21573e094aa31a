"""The catalogue: providers' service listings, their versions, plans and documents; search, compare, projects.

The public surface for higher packages (the committee lists, refuses, returns and changes the status of
services; search relies on the projection kept by `refresh_listing`):
"""

from catalog.diff import Change
from catalog.diff import changes as version_changes

# read by contracts
from catalog.facets import CATEGORIES, category_label, unit_label
from catalog.listings import (
    ServiceView,
    StaleEdit,
    VersionSummary,
    change_status,
    compare_versions,
    list_version,
    may_see_version,
    refresh_listing,
    refresh_provider_listings,
    refuse_revision,
    return_to_provider,
    tiebreak,
    version_content,
    view_service,
)
from catalog.models import ServiceStatus, VersionState
from catalog.offers import (
    ContractedService,
    ListedOffer,
    OfferedPlan,
    ProjectAward,
    contracted_service,
    listed_offer,
    listed_service_ids,
    offered_plan,
    offered_plans,
    project_award,
    service_version_names,
)
from catalog.schemas import MAX_UNIT_PRICE

# read by the committee
from catalog.submissions import (
    SubmittedService,
    SubmittedVersion,
    add_demo_submission,
    previous_listed_version_id,
    submission_details,
    submitted_service,
    submitted_version,
)

__all__ = [
    "Change",
    "ServiceStatus",
    "ServiceView",
    "StaleEdit",
    "VersionState",
    "VersionSummary",
    "change_status",
    "compare_versions",
    "list_version",
    "may_see_version",
    "refresh_listing",
    "refresh_provider_listings",
    "refuse_revision",
    "return_to_provider",
    "tiebreak",
    "version_changes",
    "version_content",
    "view_service",
    # read by the committee
    "SubmittedService",
    "SubmittedVersion",
    "add_demo_submission",
    "previous_listed_version_id",
    "submission_details",
    "submitted_service",
    "submitted_version",
    # read by contracts
    "CATEGORIES",
    "MAX_UNIT_PRICE",
    "ContractedService",
    "ListedOffer",
    "OfferedPlan",
    "ProjectAward",
    "category_label",
    "contracted_service",
    "listed_offer",
    "listed_service_ids",
    "offered_plan",
    "offered_plans",
    "project_award",
    "service_version_names",
    "unit_label",
]
