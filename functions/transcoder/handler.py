"""Lambda entry point of the SQS-triggered transcoder: the shared job dispatch, nothing else."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from shared.http.logging import configure_logging
from shared.infra.loop_local import reset_all
from shared.infra.queue.worker import handle_sqs_batch
from shared.settings import get_settings

# Modules whose import registers job handlers (@register); the media handlers join this list when they land.
HANDLER_MODULES: tuple[str, ...] = ()


def _load_handlers() -> None:
    for module in HANDLER_MODULES:
        importlib.import_module(module)


async def _run(event: dict[str, Any]) -> dict[str, Any]:
    try:
        return await handle_sqs_batch(event)
    finally:
        # asyncio.run gives every invocation a fresh loop: close everything this one opened (db pool,
        # queue, redis, storage) so a warm container does not pile up connections bound to dead loops.
        await reset_all()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS event source entry point (ReportBatchItemFailures)."""
    configure_logging(get_settings().log_level)
    _load_handlers()
    return asyncio.run(_run(event))
