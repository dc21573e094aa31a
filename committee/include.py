"""What the committee adds to the shell: its tables, pages and API, the cases opened on the catalogue's submissions,
who reads submissions, the certificate on a service's page and in search results, the daily sweep and its command, its demo data."""

from __future__ import annotations

from committee import cases, certificates, cli, controllers, demo, members, models, panels
from market.parts import Parts


def include(parts: Parts) -> None:
    parts.add_models(models)
    parts.add_routes(*controllers.routes())
    parts.subscribe("service.submitted", cases.on_service_submitted)
    parts.subscribe("revision.submitted", cases.on_revision_submitted)
    parts.add_submission_check(members.may_read_submissions)
    parts.add_service_panel(panels.certificate_panel)
    parts.add_service_marks(panels.certificate_marks)
    parts.add_periodic("committee.sweep", 24 * 3600, certificates.periodic_sweep)
    parts.add_command(cli.commands)
    parts.add_demo(demo.load)
