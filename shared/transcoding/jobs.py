"""Queued-job handlers of the transcoding domain (registered on import; see shared.jobs.HANDLER_MODULES)."""

from __future__ import annotations

from typing import Any

from shared.infra.queue.base import Job
from shared.infra.queue.worker import PermanentJobError, register
from shared.transcoding.service import MANIFESTS_KIND, RUN_KIND

WATCHDOG_KIND = "transcode.watchdog"
# As in shared.transcoding.fanout (kept here too: importing it at start-up would load the pipeline).
CHUNK_KIND = "transcode.chunk"
JOIN_KIND = "transcode.join"


@register(RUN_KIND)
async def run(payload: dict[str, Any], job: Job) -> None:
    """Run (or resume) one transcode job."""
    from shared.transcoding.orchestrate import run_transcode

    await run_transcode(payload, job)


@register(MANIFESTS_KIND)
async def manifests(payload: dict[str, Any], job: Job) -> None:
    """Rewrite a content's manifests with its current subtitles (no re-encode)."""
    from shared.transcoding.manifests import parse_content, refresh_manifests

    try:
        title_id, episode_id = parse_content(payload)
    except (KeyError, ValueError, TypeError) as error:
        raise PermanentJobError(f"malformed payload: {payload!r}") from error
    await refresh_manifests(title_id=title_id, episode_id=episode_id)


@register(WATCHDOG_KIND)
async def watchdog(payload: dict[str, Any], job: Job) -> None:
    """Re-queue jobs whose worker died (a scheduled or self-rescheduling run)."""
    from shared.transcoding.watchdog import requeue_stalled

    await requeue_stalled()


@register(CHUNK_KIND)
async def chunk(payload: dict[str, Any], job: Job) -> None:
    """Encode one chunk of a fanned-out transcode."""
    from shared.transcoding.fanout import run_chunk

    await run_chunk(payload, job)


@register(JOIN_KIND)
async def join(payload: dict[str, Any], job: Job) -> None:
    """Join a fanned-out transcode's chunks, package and publish."""
    from shared.transcoding.fanout import run_join

    await run_join(payload, job)
