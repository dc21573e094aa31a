"""What every page handler uses: rendering with flash messages, redirects after POST, form parsing, paging."""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypedDict, TypeVar

from litestar import MediaType, Request
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.openapi import ResponseSpec
from litestar.params import Body
from litestar.response import Redirect, Template
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from market.errors import Invalid, NotFound
from market.i18n import _
from market.security import sign

FLASH_COOKIE = "market_flash"
PAGE_SIZE = 20

Form = TypeVar("Form", bound=BaseModel)

# The request's database session (one transaction, committed by the plugin on success).
DbSession = NamedDependency[AsyncSession]
# A page form's fields, validated by `parse` so that errors re-render the form.
FormBody = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def json_body(model: type[BaseModel]) -> Any:
    """Body metadata for `ApiInput[Model]`: OpenAPI documents the body as `model`."""
    schema = model.model_json_schema()
    extra: dict[str, Any] = {
        key: _inline(schema[key], schema.get("$defs", {}))
        for key in ("properties", "required", "additionalProperties")
        if key in schema
    }
    return Body(
        media_type=RequestEncodingType.JSON,
        title=model.__name__,
        description=(model.__doc__ or "").strip() or None,
        schema_extra=extra,
    )


class _ProblemFieldErrors(TypedDict, total=False):
    errors: dict[str, str]  # present only for invalid input


class ProblemDetails(_ProblemFieldErrors):
    """An error answer (RFC 9457): what went wrong, for people (`detail`) and per input field (`errors`)."""

    type: str
    title: str
    status: int
    detail: str
    instance: str


PROBLEM_JSON = "application/problem+json"


def problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=ProblemDetails, media_type=PROBLEM_JSON, description=description, generate_examples=False
    )


# The errors any /api operation may answer; `market.app` adds them to every /api handler's own `responses`
# (which win, so a handler can describe or add one: 410 for a withdrawn service, 413 for an upload).
API_ERRORS: dict[int, ResponseSpec] = {
    400: problem("The request could not be read: a malformed body or a parameter of the wrong type."),
    401: problem("No valid API token: the `Authorization: Bearer` header is missing, unknown, expired or revoked."),
    403: problem("The token's user may not do this."),
    404: problem("Nothing of that id, or nothing the token's user may see; also a page beyond the last."),
    409: problem(
        "The object's state does not allow this now (a forbidden transition), or a change made at the same time."
    ),
    422: problem("The input breaks a rule; `errors` maps each field to its message."),
    429: problem("Over the API's requests per minute for this token or address; `Retry-After` says when to try again."),
    503: problem(
        "The database is not reachable just now, or the change could not be saved; `Retry-After` says when to try again."
    ),
}


if TYPE_CHECKING:

    class ApiInput(dict[str, Any], Generic[Form]):
        """To the type checker, the JSON body as the dict `parse(Model, data)` validates."""

else:

    class ApiInput:
        """`data: ApiInput[Model]`: an /api handler's JSON body, documented as `Model` and parsed by the handler
        (with `parse`), so that bad input answers 422 with a message per field, exactly as forms do."""

        def __class_getitem__(cls, model: type[BaseModel]) -> Any:
            return Annotated[dict[str, Any], json_body(model)]


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    """A JSON schema with pydantic's `#/$defs/...` references replaced by what they name (OpenAPI has no `$defs`)."""
    if isinstance(node, dict):
        reference = node.get("$ref", "")
        if reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def _settings(request: Request) -> Any:
    from market.state import settings_of

    return settings_of(request.app)


def cookie(request: Request, name: str, value: str, max_age: int | None = None) -> Cookie:
    """One of our cookies: HttpOnly, SameSite=Lax, path /; over https Secure and named `__Host-...` (`Settings.cookie`)."""
    settings = _settings(request)
    return Cookie(
        key=settings.cookie(name),
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=max_age,
    )


def read_cookie(request: Request, name: str) -> str | None:
    return request.cookies.get(_settings(request).cookie(name))


def _read_flash(request: Request) -> list[dict[str, str]]:
    raw = read_cookie(request, FLASH_COOKIE)
    if not raw or "." not in raw:
        return []
    value, signature = raw.rsplit(".", 1)
    if sign(_settings(request).secret_key, value) != signature:
        return []
    try:
        return json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        return []


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Template:
    """Render a page; flash messages left by the previous redirect are shown once."""
    messages = _read_flash(request)
    cookies = [cookie(request, FLASH_COOKIE, "", max_age=0)] if messages else []
    return Template(
        template,
        context={"flashes": messages, **context},
        status_code=status_code,
        cookies=cookies,
        media_type=MediaType.HTML,
    )


def redirect(
    request: Request,
    path: str,
    message: str | None = None,
    category: str = "success",
    cookies: list[Cookie] | None = None,
) -> Redirect:
    """Post, redirect, get: 303 with an optional flash message in a signed cookie."""
    all_cookies = list(cookies or [])
    if message:
        value = base64.urlsafe_b64encode(json.dumps([{"category": category, "text": message}]).encode()).decode()
        signed = f"{value}.{sign(_settings(request).secret_key, value)}"
        all_cookies.append(cookie(request, FLASH_COOKIE, signed))
    return Redirect(path, status_code=303, cookies=all_cookies)


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths, so a login link cannot send the user elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return default


CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tab, line feed and carriage return pass


def _control_characters(value: Any, path: str = "") -> list[str]:
    """The dotted paths of text values holding a control character (NUL among them: PostgreSQL cannot store it)."""
    if isinstance(value, str):
        return [path or "form"] if CONTROL_CHARACTERS.search(value) else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [found for key, item in items for found in _control_characters(item, f"{path}.{key}" if path else str(key))]


def parse(model: type[Form], data: dict[str, Any]) -> Form:
    """Validate form or JSON input; every problem becomes a field message in one `Invalid`."""
    if bad := _control_characters(data):
        refused = {field: _("Remove the control characters from this text.") for field in bad}
        raise Invalid(_("Please correct: %(fields)s.", fields=", ".join(refused)), errors=refused)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "form"
            errors.setdefault(field, _field_message(error))
        names = ", ".join(errors)
        raise Invalid(_("Please correct: %(fields)s.", fields=names), errors=errors) from None


def _field_message(error: Any) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    if kind == "missing":
        return _("This field is required.")
    if kind == "string_too_long":
        return _("At most %(n)s characters.", n=context.get("max_length"))
    if kind == "string_too_short":
        return _("At least %(n)s characters.", n=context.get("min_length"))
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return _("Enter a whole number.")
    if kind in {"bool_parsing", "bool_type"}:
        return _("Choose yes or no.")
    if kind in {"date_parsing", "date_from_datetime_parsing", "date_type"}:
        return _("Enter a date as YYYY-MM-DD.")
    if kind in {"literal_error", "enum"}:
        return _("Choose one of the offered values.")
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        return _("The number is out of range.")
    if kind == "value_error":
        return str(context.get("error", error["msg"]))
    return str(error["msg"])


def form_dict(data: Any) -> dict[str, Any]:
    """Litestar form data to a plain dict (the last value wins; `_csrf_token` dropped)."""
    items = data.items() if hasattr(data, "items") else []
    return {key: value for key, value in items if key != "_csrf_token"}


@dataclass(frozen=True)
class Page:
    number: int
    size: int
    total: int

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def count(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.count


def page_number(raw: int | None) -> int:
    if raw is None:
        return 1
    if raw < 1:
        raise NotFound(_("There is no page %(n)s.", n=raw))
    return raw


def check_page(page: Page) -> Page:
    """A page beyond the end answers 404 (page 1 of an empty list exists: it shows the empty state)."""
    if page.number > page.count:
        raise NotFound(_("There is no page %(n)s; the last page is %(last)s.", n=page.number, last=page.count))
    return page
