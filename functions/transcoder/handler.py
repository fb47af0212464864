"""Lambda entry point of the SQS-triggered transcoder: the shared job dispatch, nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.http.logging import configure_logging
from shared.infra.loop_local import reset_all
from shared.infra.queue.worker import handle_sqs_batch
from shared.jobs import load_handlers
from shared.settings import get_settings
from shared.transcoding.orchestrate import sweep_work_dirs


async def _run(event: dict[str, Any]) -> dict[str, Any]:
    try:
        return await handle_sqs_batch(event)
    finally:
        # asyncio.run gives every invocation a fresh loop: close everything this one opened (db pool,
        # queue, redis, storage) so a warm container does not pile up connections bound to dead loops.
        await reset_all()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS event source entry point (ReportBatchItemFailures)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    load_handlers()
    # One invocation at a time per environment, and /tmp outlives invocations: a job killed by the
    # timeout left its scratch behind, which would otherwise eat the 10 GB of ephemeral storage.
    sweep_work_dirs(settings)
    return asyncio.run(_run(event))
