"""The merged OpenAPI document of every endpoint group: GET /api/v1/openapi.json."""

from mangum import Mangum

from api import (
    auth,
    catalog,
    dev,
    health,
    maintenance,
    media,
    payments,
    search,
    streaming,
    transcoding,
    users,
)
from shared.http.app import create_app
from shared.http.openapi import openapi_router

GROUPS = {
    "auth": auth.app,
    "catalog": catalog.app,
    "dev": dev.app,
    "health": health.app,
    "maintenance": maintenance.app,
    "media": media.app,
    "payments": payments.app,
    "search": search.app,
    "streaming": streaming.app,
    "transcoding": transcoding.app,
    "users": users.app,
}

app = create_app(openapi_router(GROUPS), group="openapi")
lambda_handler = Mangum(app, lifespan="off")
