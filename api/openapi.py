"""The merged OpenAPI document of every endpoint group: GET /api/v1/openapi.json."""

from mangum import Mangum

from api import health, maintenance
from shared.http.app import create_app
from shared.http.openapi import openapi_router

GROUPS = {"health": health.app, "maintenance": maintenance.app}

app = create_app(openapi_router(GROUPS), group="openapi")
lambda_handler = Mangum(app, lifespan="off")
