"""The catalogue: providers' service listings, their versions, plans and documents; search, compare, projects.

Its public surface for higher packages, and nothing else of it may be imported from outside:
- the committee lists, refuses, returns and changes the status of services (`listings`), and reads what was
  submitted (`submissions`);
- contracts read what a listed service offers to be contracted, its plans and prices (`offers`), and the
  labels of categories and units (`facets`);
- search relies on the projection kept by `refresh_listing`.
"""

from catalog.diff import Change
from catalog.diff import changes as version_changes
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
    "CATEGORIES",
    "MAX_UNIT_PRICE",
    "Change",
    "ContractedService",
    "ListedOffer",
    "OfferedPlan",
    "ProjectAward",
    "ServiceStatus",
    "ServiceView",
    "StaleEdit",
    "SubmittedService",
    "SubmittedVersion",
    "VersionState",
    "VersionSummary",
    "add_demo_submission",
    "category_label",
    "change_status",
    "compare_versions",
    "contracted_service",
    "list_version",
    "listed_offer",
    "listed_service_ids",
    "may_see_version",
    "offered_plan",
    "offered_plans",
    "previous_listed_version_id",
    "project_award",
    "refresh_listing",
    "refresh_provider_listings",
    "refuse_revision",
    "return_to_provider",
    "service_version_names",
    "submission_details",
    "submitted_service",
    "submitted_version",
    "tiebreak",
    "unit_label",
    "version_changes",
    "version_content",
    "view_service",
]
