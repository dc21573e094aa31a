"""Domain exceptions raised by services; `market.error_handlers` renders them as HTML pages or problem JSON."""

from __future__ import annotations


class DomainError(Exception):
    status_code = 400
    title = "Bad request"

    def __init__(self, detail: str, *, errors: dict[str, str] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}
        self.headers = headers or {}


class BadRequest(DomainError):
    status_code = 400
    title = "Bad request"


class NotAuthenticated(DomainError):
    status_code = 401
    title = "Not signed in"


class Forbidden(DomainError):
    status_code = 403
    title = "Forbidden"


class NotFound(DomainError):
    status_code = 404
    title = "Not found"


class Refused(NotFound):
    """Another organisation's object: answered 404 like a missing one (its existence is not disclosed), and
    written to the audit trail as `security.refused` with the caller and address."""


class Conflict(DomainError):
    status_code = 409
    title = "Conflict"


class Gone(DomainError):
    status_code = 410
    title = "Gone"


class Invalid(DomainError):
    """Input that parsed but breaks a rule; `errors` maps field names to messages."""

    status_code = 422
    title = "Invalid input"


class TooManyRequests(DomainError):
    status_code = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class Unavailable(DomainError):
    status_code = 503
    title = "Service unavailable"
