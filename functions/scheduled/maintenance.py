"""Scheduled Lambda: the same daily housekeeping as the Vercel cron, for AWS-only deployments."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.http.logging import configure_logging
from shared.maintenance.service import run_daily
from shared.settings import get_settings


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge schedule entry point."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return asyncio.run(run_daily(settings=settings)).model_dump()
