"""One OpenAPI document for the whole platform, merged from every group's own document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from shared.settings import get_settings


def merge_openapi(apps: dict[str, FastAPI]) -> dict[str, Any]:
    """Union of the groups' paths and components; a clash between groups is a bug, so it raises."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Cinema Online API", "version": get_settings().version},
        "paths": {},
        "components": {},
        "tags": [],
    }
    for group, app in sorted(apps.items()):
        spec = app.openapi()
        for path, operations in spec.get("paths", {}).items():
            if path in merged["paths"]:
                raise ValueError(f"path {path} is defined by two groups (one is {group})")
            merged["paths"][path] = operations
        for section, items in spec.get("components", {}).items():
            target = merged["components"].setdefault(section, {})
            for name, schema in items.items():
                if name in target and target[name] != schema:
                    raise ValueError(f"component {section}.{name} differs between groups (one is {group})")
                target[name] = schema
        merged["tags"].append({"name": group})
    return merged


def openapi_router(apps: dict[str, FastAPI]) -> APIRouter:
    """Router serving the merged document at /api/v1/openapi.json (built once per instance)."""
    router = APIRouter()
    cache: dict[str, Any] = {}

    @router.get("/api/v1/openapi.json", include_in_schema=False)
    async def merged_openapi() -> JSONResponse:
        if "spec" not in cache:
            cache["spec"] = merge_openapi(apps)
        return JSONResponse(cache["spec"], headers={"cache-control": "public, max-age=300"})

    return router


_STATUS_TEXT = {
    400: "Bad request",
    401: "Not signed in, or the credentials are invalid",
    403: "Signed in but not allowed",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body too large",
    422: "Invalid fields",
    429: "Too many requests (see Retry-After)",
    501: "Not configured on this deployment",
    502: "An upstream service answered with an error or not at all",
    503: "A dependency is unavailable; retry later",
}


def problem_schema() -> dict[str, Any]:
    """JSON schema of an RFC 9457 problem document with our extensions."""
    return {
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "description": "stable machine-readable error code"},
            "instance": {"type": "string"},
            "request_id": {"type": "string"},
        },
    }


def errors(by_status: dict[int, list[str]]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route: each status with the stable problem codes it may carry."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status, codes in sorted(by_status.items()):
        listed = ", ".join(f"`{code}`" for code in codes)
        responses[status] = {
            "description": f"{_STATUS_TEXT.get(status, 'Error')}. Problem codes: {listed}.",
            "content": {"application/problem+json": {"schema": problem_schema()}},
        }
    return responses


# What any endpoint behind a bearer token may answer 401 with (Supabase Auth tokens add the last two).
BEARER_ERRORS = ["unauthenticated", "invalid_token", "supabase_account_conflict", "mfa_required_locally"]
