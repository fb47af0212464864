"""RFC 9457 problem+json rendering for the one error tree, and for what the framework raises."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.errors import AppError
from shared.http.logging import request_id_var

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("cinema.http")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
}


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Build a problem+json response with our stable `code` and the request id."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def app_error_response(
    error: AppError, *, instance: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """Render one of our errors; server-side ones are logged for the engineer on call."""
    if error.status >= 500:
        logger.error("request failed: %s", error.detail, extra={"code": error.code})
    return problem_response(
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        instance=instance,
        headers={**(headers or {}), **error.headers},
        **error.extra,
    )


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return app_error_response(exc, instance=request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": error.get("msg"),
            "type": error.get("type"),
        }
        for error in exc.errors()
    ]
    return problem_response(
        status=422,
        code="validation_failed",
        title="Request validation failed",
        detail="; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request",
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    title = code.replace("_", " ").capitalize()
    detail = exc.detail if isinstance(exc.detail, str) else title
    return problem_response(
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers or {}),
    )


def internal_error_response(path: str) -> JSONResponse:
    """The 500 answer: nothing of the failure leaks, the request id lets the engineer on call find it."""
    return problem_response(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="An unexpected error occurred; quote the request id when reporting it.",
        instance=path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Register the renderers so no error leaves as HTML or a stack trace."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Unexpected exceptions are caught by RequestContextMiddleware, where the request id is still known.
