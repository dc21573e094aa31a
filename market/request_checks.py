"""The checks every route's input passes before its handler (the app's `before_request`)."""

from __future__ import annotations

from litestar import Request

from market import i18n
from market.error_handlers import explanation
from market.errors import Invalid, NotFound
from market.schemas import ID_RANGE
from market.web import CONTROL_CHARACTERS


async def refuse_ids_out_of_range(request: Request) -> None:
    """A number in a path beyond the ids the database holds names nothing (`ID_RANGE`)."""
    for value in request.path_params.values():
        if isinstance(value, int) and value not in ID_RANGE:
            raise NotFound(explanation(404))


async def refuse_control_characters(request: Request) -> None:
    """Every query parameter and text in the path, before it reaches a handler (and a database): 422 naming it.
    Control characters (NUL among them) have no place there; the databases refuse some of them. Bodies are checked
    by `web.parse`."""
    values = [(name, value) for name, value in request.query_params.multi_items()]
    values += [(name, value) for name, value in request.path_params.items() if isinstance(value, str)]
    bad = {
        name: i18n._("Remove the control characters from this text.")
        for name, value in values
        if CONTROL_CHARACTERS.search(value)
    }
    if bad:
        raise Invalid(i18n._("Please correct: %(fields)s.", fields=", ".join(bad)), errors=bad)


async def check_request(request: Request) -> None:
    """The app's `before_request`: the checks every route's input passes first."""
    await refuse_ids_out_of_range(request)
    await refuse_control_characters(request)
