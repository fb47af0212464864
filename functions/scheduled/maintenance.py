"""Scheduled Lambda: the same daily housekeeping as the Vercel cron, for AWS-only deployments."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.http.logging import configure_logging
from shared.infra.loop_local import reset_all
from shared.maintenance.service import run_daily
from shared.settings import Settings, get_settings


async def _run(settings: Settings) -> dict[str, Any]:
    try:
        return (await run_daily(settings=settings)).model_dump()
    finally:
        # asyncio.run gives every invocation a fresh loop: close what this one opened (db pool, queue,
        # redis, storage) so a warm container does not keep connections bound to dead loops.
        await reset_all()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge schedule entry point."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return asyncio.run(_run(settings))
