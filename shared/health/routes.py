"""HTTP routes of the health group."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from shared.health import service
from shared.health.schemas import HealthReport
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/health", tags=["health"])


@router.get(
    "",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "A dependency is down; `down` names it"}},
    summary="Platform health: database, redis, storage, queue and build version",
)
async def get_health() -> JSONResponse:
    """200 when every dependency is up, 503 naming what is down."""
    report = await service.check_health(settings=get_settings())
    return JSONResponse(
        report.model_dump(mode="json"),
        status_code=200 if report.status == "pass" else 503,
        headers={"cache-control": "no-store"},
    )
