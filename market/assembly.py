"""The one place that names the packages: the shell's own parts, then each domain package's `include(parts)`.

Every app (and the command line) assembles its own `Parts`; a package that fails to import fails the start.
"""

from __future__ import annotations

from market.parts import Parts


def include_shell(parts: Parts) -> None:
    from market import controllers, models, outbox

    parts.add_models(models)
    parts.add_routes(*controllers.routes())
    parts.add_outbox_handler("email", outbox.deliver_email)


def assemble() -> Parts:
    """A fresh registry holding the shell's parts and every package's, in the order of the arrows."""
    import catalog.include
    import committee.include
    import contracts.include

    parts = Parts()
    for include in (include_shell, catalog.include.include, committee.include.include, contracts.include.include):
        include(parts)
    return parts
