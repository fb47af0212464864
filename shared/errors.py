"""The one exception tree: each error carries its HTTP status and a stable machine-readable code."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """Base of every error a client may see, rendered as RFC 9457 problem+json."""

    status: ClassVar[int] = 500
    # The class's code is the default; a raise site may name a more specific stable code (code="...").
    code: str = "internal_error"
    title: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        if code is not None:
            self.code = code
        self.extra = extra


class BadRequest(AppError):
    """The request is malformed."""

    status = 400
    code = "bad_request"
    title = "Bad request"


class ValidationFailed(AppError):
    """The request is well-formed but its fields are invalid."""

    status = 422
    code = "validation_failed"
    title = "Request validation failed"


class Unauthenticated(AppError):
    """No valid credentials were presented."""

    status = 401
    code = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"www-authenticate": 'Bearer realm="cinema"'}, code=code, **extra)


class Forbidden(AppError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    """The resource does not exist (or is invisible to the caller)."""

    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(AppError):
    """The path exists but not with this method."""

    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(AppError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    title = "Conflict"


class PayloadTooLarge(AppError):
    """The body exceeds the configured limit."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class RateLimited(AppError):
    """Too many requests."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    """A dependency is down; the client may retry later."""

    status = 503
    code = "service_unavailable"
    title = "Service unavailable"
