"""Scheduled Lambda, every minute: forward the outbox's jobs to SQS, then re-queue stalled transcodes."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.http.logging import configure_logging
from shared.infra.loop_local import reset_all
from shared.maintenance.service import run_frequent
from shared.settings import Settings, get_settings


async def _run(settings: Settings) -> dict[str, Any]:
    try:
        return dict(await run_frequent(settings=settings))
    finally:
        # A fresh loop per invocation: close its clients so a warm container holds no dead connections.
        await reset_all()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """EventBridge schedule entry point."""
    settings = get_settings()
    configure_logging(settings.log_level)
    return asyncio.run(_run(settings))
