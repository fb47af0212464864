"""The one app factory every api/<group>.py calls: conventions shared by all endpoint groups."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from shared.http.logging import configure_logging
from shared.http.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from shared.http.problems import install_problem_handlers
from shared.settings import get_settings

API_PREFIX = "/api/v1"


def create_app(*routers: APIRouter, group: str, title: str | None = None) -> FastAPI:
    """Assemble a group's ASGI app from its routers (matched in order) with the shared conventions."""
    # Routes under /api/v1/<group>, problem+json errors, request ids, JSON logs, CORS allowlist,
    # body size limit and the group's own OpenAPI document.
    settings = get_settings()  # fails fast, naming the bad variable
    configure_logging(settings.log_level)
    app = FastAPI(
        title=title or f"Cinema Online — {group}",
        version=settings.version,
        openapi_url=f"{API_PREFIX}/{group}/openapi.json",
        docs_url=f"{API_PREFIX}/{group}/docs",
        redoc_url=None,
    )
    for router in routers:
        app.include_router(router)
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Every response, even a 413 or a 500, gets a request id, then CORS headers so browsers can read it.
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["authorization", "content-type", "idempotency-key", "x-request-id"],
        expose_headers=["x-request-id", "location", "retry-after"],
        max_age=600,
    )
    return app
