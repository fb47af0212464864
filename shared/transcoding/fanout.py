"""Chunked encoding fanned out over the queue (MEDIA_CHUNK_FANOUT=true, e.g. one Lambda per chunk).

    transcode.run (phase 2 of a long source) --> N x transcode.chunk --> (the last one) transcode.join

The run hands the job to the fan-out (worker_id 'fanout:<attempt>') and returns. Each chunk job encodes
its time range of every remaining rung (encode_chunk), uploads the chunk files to a work prefix in
storage and marks its transcode_chunks row done under the job row's lock, so exactly one chunk sees
"all done" and queues the join. The join downloads the chunk files, joins them (-c copy), packages and
publishes like a local run; the result is the same as encode_chunked's. Chunks keep the job's heartbeat
fresh; a join that dies is found by the watchdog like any stalled run (the job starts a new attempt,
whose chunk and join messages are the only ones that still count).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.infra.queue.worker import PermanentJobError
from shared.transcoding import repository
from shared.transcoding.orchestrate import Run, parse_job_id, settle, source_info, work_root
from shared.transcoding.pipeline.model import EncodedOutput, Rung
from shared.transcoding.tracking import JobLost, Tracker

if TYPE_CHECKING:
    from shared.infra.queue.base import Job

logger = logging.getLogger("cinema.transcoding")

CHUNK_KIND = "transcode.chunk"
JOIN_KIND = "transcode.join"
_INDEX = "index.json"


def holder_of(attempt: int) -> str:
    """The worker_id of a job while its chunks are out on the queue."""
    return f"fanout:{attempt}"


def work_prefix(job_id: uuid.UUID, attempt: int | None = None) -> str:
    """Where chunk outputs wait for the join (private; removed once joined)."""
    return f"media/work/{job_id}/" + (f"{attempt}/" if attempt is not None else "")


async def fan_out(run: Run, rungs: list[Rung], *, trickplay: bool, start: float) -> None:
    """Queue one chunk job per planned chunk and hand the job over to them (called by the run)."""
    from shared.infra.queue.postgres import enqueue_in_transaction
    from shared.transcoding.pipeline.chunks import chunk_grid, plan_chunks

    assert run.info is not None
    plan = plan_chunks(
        run.info.duration_seconds,
        chunk_seconds=run.settings.media_chunk_seconds,
        segment_seconds=chunk_grid(run.settings),
    )
    attempt = int(run.claimed["attempts"])
    holder = holder_of(attempt)
    detail = f"encoding in {len(plan)} chunks"
    await run.stage("encoding", detail, start, 90.0)
    await run.tracker.pause()  # from the hand-over on, the heartbeat belongs to the chunks
    base = {
        "transcode_job_id": str(run.job_id),
        "attempt": attempt,
        "rungs": [dataclasses.asdict(rung) for rung in rungs],
        "trickplay": trickplay,
        "progress_start": start,
    }
    async with run.pool.connection() as conn, conn.transaction():
        if not await repository.hand_over(
            conn, run.job_id, worker_id=run.worker_id, holder=holder, detail=detail
        ):
            raise JobLost()
        for index, (offset, length) in enumerate(plan):
            prefix = f"{work_prefix(run.job_id, attempt)}{index:05d}/"
            await repository.insert_chunk(
                conn,
                run.job_id,
                attempt=attempt,
                index=index,
                start=offset,
                duration=length,
                output_prefix=prefix,
            )
            await enqueue_in_transaction(
                conn,
                CHUNK_KIND,
                {**base, "index": index},
                priority=int(run.claimed["priority"]),
                dedup_key=f"chunk:{run.job_id}:{attempt}:{index}",
            )
        await repository.add_event(
            conn, run.job_id, "encoding", f"{len(plan)} chunks queued for parallel encoding"
        )


def _chunk_payload(payload: dict[str, Any]) -> tuple[uuid.UUID, int, list[Rung], bool, float]:
    job_id = parse_job_id(payload)
    try:
        attempt = int(payload["attempt"])
        rungs = [Rung(**rung) for rung in payload.get("rungs", [])]
        trickplay = bool(payload.get("trickplay", False))
        start = float(payload.get("progress_start", 30.0))
    except (KeyError, TypeError, ValueError) as error:
        raise PermanentJobError(f"malformed payload: {error}") from error
    return job_id, attempt, rungs, trickplay, start


async def _context() -> tuple[Any, Any, Any]:
    from shared.infra.db import get_pool
    from shared.infra.storage import get_storage
    from shared.settings import get_settings

    return get_settings(), await get_pool(), await get_storage()


async def run_chunk(payload: dict[str, Any], job: Job) -> None:
    """The transcode.chunk handler: encode one time range of the remaining rungs, upload it, count it."""
    job_id, attempt, rungs, trickplay, start = _chunk_payload(payload)
    try:
        index = int(payload["index"])
    except (KeyError, TypeError, ValueError) as error:
        raise PermanentJobError("malformed payload: index") from error
    holder = holder_of(attempt)
    settings, pool, storage = await _context()
    async with pool.connection() as conn:
        row = await repository.get_job(conn, job_id)
        if row is None:
            raise PermanentJobError(f"unknown transcode job {job_id}")
        chunk = await repository.get_chunk(conn, job_id, attempt, index)
        if chunk is None:
            raise PermanentJobError(f"unknown chunk {index} of attempt {attempt} of job {job_id}")
    if row["worker_id"] != holder or row["state"] != "encoding" or chunk["state"] == "done":
        logger.info(
            "chunk delivery ignored", extra={"job_id": str(job_id), "chunk": index, "attempt": attempt}
        )
        return
    run = Run(
        job_id=job_id,
        claimed=row,
        queue_attempts=job.attempts,
        worker_id=holder,
        settings=settings,
        pool=pool,
        storage=storage,
    )

    async def step() -> None:
        run.work_dir = work_root(settings)
        await run.load_rows()
        info = source_info(run.source.get("probe") or {}, await run.download_source(staged=False))
        from shared.transcoding.pipeline.chunks import encode_chunk

        outputs = await encode_chunk(
            info,
            rungs=rungs,
            trickplay=trickplay,
            start=float(chunk["start_seconds"]),
            duration=float(chunk["duration_seconds"]),
            out_dir=run.work / "chunk",
            settings=settings,
        )
        prefix = str(chunk["output_prefix"])
        for output in outputs:
            await storage.upload_file(f"{prefix}{output.name}.mp4", output.path, content_type="video/mp4")
        index_json = [
            {
                "name": output.name,
                "kind": output.kind,
                "rung": dataclasses.asdict(output.rung) if output.rung else None,
            }
            for output in outputs
        ]
        await storage.put_bytes(
            prefix + _INDEX, json.dumps(index_json).encode(), content_type="application/json"
        )
        await _count_chunk(run, attempt=attempt, index=index, start=start)

    # A chunk's transient failure retries that chunk alone; the job stays with the fan-out meanwhile.
    await settle(run, step, attempts=job.attempts, release=None)


async def _count_chunk(run: Run, *, attempt: int, index: int, start: float) -> None:
    """Mark the chunk done; the one that completes the set queues the join."""
    from shared.infra.queue.postgres import enqueue_in_transaction

    holder = holder_of(attempt)
    async with run.pool.connection() as conn, conn.transaction():
        # The job row's lock orders concurrent completions: exactly one of them sees the last chunk done.
        row = await repository.job_for_update(conn, run.job_id)
        if row is None or row["worker_id"] != holder or row["state"] != "encoding":
            return
        changed, done, total = await repository.finish_chunk(conn, run.job_id, attempt, index)
        await repository.fanout_progress(
            conn, run.job_id, holder=holder, progress=start + (90.0 - start) * done / total
        )
        if changed and done == total:
            await enqueue_in_transaction(
                conn,
                JOIN_KIND,
                {"transcode_job_id": str(run.job_id), "attempt": attempt},
                priority=int(row["priority"]),
                dedup_key=f"join:{run.job_id}:{attempt}",
            )
            await repository.add_event(conn, run.job_id, "encoding", f"all {total} chunks encoded, joining")


async def run_join(payload: dict[str, Any], job: Job) -> None:
    """The transcode.join handler: join the chunk files, package, publish, finish the job."""
    from shared.infra.queue.postgres import default_worker_id

    job_id, attempt, *_ = _chunk_payload({**payload, "rungs": []})
    holder = holder_of(attempt)
    joiner = default_worker_id()
    settings, pool, storage = await _context()
    async with pool.connection() as conn:
        row = await repository.get_job(conn, job_id)
        if row is None:
            raise PermanentJobError(f"unknown transcode job {job_id}")
        taken = await repository.hand_over(
            conn, job_id, worker_id=holder, holder=joiner, detail="joining chunks"
        )
    if not taken:
        logger.info("join delivery ignored", extra={"job_id": str(job_id), "attempt": attempt})
        return
    run = Run(
        job_id=job_id,
        claimed=row,
        queue_attempts=job.attempts,
        worker_id=joiner,
        settings=settings,
        pool=pool,
        storage=storage,
    )
    run.tracker = Tracker(job_id, worker_id=joiner)

    async def step() -> None:
        from shared.transcoding.keys import asset_keys
        from shared.transcoding.orchestrate import packaged_from_json
        from shared.transcoding.pipeline.chunks import join_chunks

        run.work_dir = work_root(settings)
        await run.load_rows()
        run.info = source_info(run.source.get("probe") or {}, run.work / "source-not-needed")
        async with pool.connection() as conn:
            run.keys = await asset_keys(conn, asset_id=run.asset["id"], settings=settings)
            chunks = await repository.chunks_of(conn, job_id, attempt)
        for rendition in packaged_from_json(run.asset.get("packaging")):
            run.packaged[rendition.name] = rendition
        await run.stage("encoding", f"joining {len(chunks)} chunks", 88.0, 90.0)
        parts = [
            await _download_chunk(run, chunk, run.work / "chunks" / f"{chunk['chunk_index']:05d}")
            for chunk in chunks
        ]
        joined = await join_chunks(parts, out_dir=run.work / "joined", settings=settings)
        await run.package(joined, 90.0, 94.0)
        await run.publish(final=True, start=94.0)
        await storage.delete_prefix(work_prefix(job_id))

    async def release(reason: str) -> bool:
        # Back to the fan-out, so the join's retry can take the job again.
        async with pool.connection() as conn:
            released = await repository.hand_over(
                conn, job_id, worker_id=joiner, holder=holder, detail="join retrying"
            )
            if released:
                await repository.add_event(
                    conn, job_id, "encoding", f"join attempt {job.attempts} failed: {reason}"
                )
        return released

    await settle(run, step, attempts=job.attempts, release=release)


async def _download_chunk(run: Run, chunk: dict[str, Any], folder: Path) -> list[EncodedOutput]:
    """A chunk's files, back from storage, as the EncodedOutput list encode_chunk returned."""
    import asyncio

    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    prefix = str(chunk["output_prefix"])
    listed = json.loads(await run.storage.get_bytes(prefix + _INDEX))
    outputs = []
    for item in listed:
        path = folder / f"{item['name']}.mp4"
        await run.storage.download_file(f"{prefix}{item['name']}.mp4", path)
        rung = Rung(**item["rung"]) if item.get("rung") else None
        outputs.append(EncodedOutput(name=item["name"], kind=item["kind"], path=path, rung=rung))
    return outputs
