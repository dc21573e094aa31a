"""What the catalogue adds to the shell: its tables, pages and API, the subscriber that keeps listings in line with
their provider's standing, and its demo data."""

from __future__ import annotations

from catalog import controllers_listings, controllers_search, demo, listings, models
from market.parts import Parts


def include(parts: Parts) -> None:
    parts.add_models(models)
    parts.add_routes(*controllers_listings.routes, *controllers_search.routes)
    parts.subscribe("organisation.deactivated", listings.on_provider_standing_changed)
    parts.subscribe("organisation.activated", listings.on_provider_standing_changed)
    parts.add_demo(demo.load)
