"""HTTP routes of the maintenance group (called by Vercel Cron)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header

from shared.maintenance import service
from shared.maintenance.schemas import MaintenanceReport
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/maintenance", tags=["maintenance"])


@router.get("/daily", response_model=MaintenanceReport, summary="Daily housekeeping (Vercel Cron)")
async def daily(authorization: Annotated[str | None, Header()] = None) -> MaintenanceReport:
    """Run the daily housekeeping; Vercel Cron calls this with the cron secret."""
    settings = get_settings()
    service.authorize_cron(settings=settings, authorization=authorization)
    return await service.run_daily(settings=settings)
