"""SQL of the transcoding domain: jobs, their history, assets, renditions, chunks (psycopg 3 async)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.infra.db import fetch_all, fetch_one

if TYPE_CHECKING:
    from psycopg import AsyncConnection

# The job as the API shows it: joined with its source (what it belongs to) and its asset.
_JOB_VIEW = """
select j.id, j.source_id, j.asset_id, j.reason, j.priority, j.state, j.progress, j.eta_seconds,
       j.stage_detail, j.renditions_done, j.options, j.attempts, j.failure_code, j.failure_reason,
       j.dead_lettered, j.cancel_requested, j.idempotency_key, j.queue_job_id, j.worker_id,
       j.heartbeat_at, j.created_by, j.created_at, j.updated_at, j.started_at, j.finished_at,
       s.title_id, s.episode_id, s.purpose,
       a.state as asset_state, a.hls_master, a.dash_manifest
from public.transcode_jobs j
join public.media_sources s on s.id = j.source_id
left join public.media_assets a on a.id = j.asset_id
"""


async def get_source(
    conn: AsyncConnection[Any], source_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    """A media source row (locked FOR UPDATE when asked)."""
    if lock:
        return await fetch_one(
            conn, "select * from public.media_sources where id = %s for update", (source_id,)
        )
    return await fetch_one(conn, "select * from public.media_sources where id = %s", (source_id,))


async def job_by_idempotency_key(
    conn: AsyncConnection[Any], *, created_by: uuid.UUID, key: str
) -> dict[str, Any] | None:
    """The job queued earlier by this user under this Idempotency-Key."""
    return await fetch_one(
        conn, _JOB_VIEW + " where j.created_by = %s and j.idempotency_key = %s", (created_by, key)
    )


async def upload_job_of_source(conn: AsyncConnection[Any], source_id: uuid.UUID) -> dict[str, Any] | None:
    """The first-transcode job of a source (one per source: completing an upload twice queues once)."""
    return await fetch_one(
        conn,
        _JOB_VIEW + " where j.source_id = %s and j.reason = 'upload' order by j.created_at limit 1",
        (source_id,),
    )


async def active_job_of_source(conn: AsyncConnection[Any], source_id: uuid.UUID) -> dict[str, Any] | None:
    """A job of the source that is queued or running."""
    return await fetch_one(
        conn,
        "select id from public.transcode_jobs where source_id = %s"
        " and state in ('queued', 'probing', 'encoding', 'packaging', 'publishing') limit 1",
        (source_id,),
    )


async def has_jobs(conn: AsyncConnection[Any], source_id: uuid.UUID) -> bool:
    """Whether the source was ever queued for a transcode."""
    row = await fetch_one(
        conn, "select 1 as x from public.transcode_jobs where source_id = %s limit 1", (source_id,)
    )
    return row is not None


async def insert_asset(conn: AsyncConnection[Any], *, source: dict[str, Any]) -> uuid.UUID:
    """A new 'processing' asset for the source's content; its prefix is media/assets/<id>/."""
    asset_id = uuid.uuid4()
    await conn.execute(
        """
        insert into public.media_assets (id, source_id, title_id, episode_id, purpose, storage_prefix)
        values (%s, %s, %s, %s, %s, %s)
        """,
        (
            asset_id,
            source["id"],
            source["title_id"],
            source["episode_id"],
            source["purpose"],
            f"media/assets/{asset_id}/",
        ),
    )
    return asset_id


async def insert_job(
    conn: AsyncConnection[Any],
    *,
    source_id: uuid.UUID,
    asset_id: uuid.UUID,
    reason: str,
    priority: int,
    options: dict[str, Any],
    created_by: uuid.UUID | None,
    idempotency_key: str | None,
) -> uuid.UUID | None:
    """Insert a queued job; None when the (created_by, idempotency_key) pair was taken meanwhile."""
    from psycopg.types.json import Jsonb

    cursor = await conn.execute(
        """
        insert into public.transcode_jobs (source_id, asset_id, reason, priority, options, created_by,
                                           idempotency_key)
        values (%s, %s, %s, %s, %s, %s, %s)
        on conflict (created_by, idempotency_key) where idempotency_key is not null do nothing
        returning id
        """,
        (source_id, asset_id, reason, priority, Jsonb(options), created_by, idempotency_key),
    )
    row = await cursor.fetchone()
    return row[0] if row else None


async def set_queue_job_id(conn: AsyncConnection[Any], job_id: uuid.UUID, queue_job_id: str) -> None:
    """Remember which queue message runs the job (for people reading the row)."""
    await conn.execute(
        "update public.transcode_jobs set queue_job_id = %s where id = %s", (queue_job_id, job_id)
    )


async def add_event(conn: AsyncConnection[Any], job_id: uuid.UUID, state: str, message: str) -> None:
    """Append to the job's history."""
    await conn.execute(
        "insert into public.transcode_job_events (job_id, state, message) values (%s, %s, %s)",
        (job_id, state, message[:2000]),
    )


async def get_job(
    conn: AsyncConnection[Any], job_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    """The job with its source's content ids and its asset's state."""
    query = _JOB_VIEW + " where j.id = %s" + (" for update of j" if lock else "")
    return await fetch_one(conn, query, (job_id,))


async def job_events(conn: AsyncConnection[Any], job_id: uuid.UUID) -> list[dict[str, Any]]:
    """The job's history, oldest first."""
    return await fetch_all(
        conn,
        "select at, state, message from public.transcode_job_events where job_id = %s order by id",
        (job_id,),
    )


async def list_jobs(
    conn: AsyncConnection[Any],
    *,
    source_id: uuid.UUID | None,
    title_id: uuid.UUID | None,
    states: Sequence[str] | None,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Jobs newest first, keyset-paginated on (created_at, id)."""
    conditions: list[str] = []
    params: list[Any] = []
    if source_id is not None:
        conditions.append("j.source_id = %s")
        params.append(source_id)
    if title_id is not None:
        conditions.append("s.title_id = %s")
        params.append(title_id)
    if states:
        conditions.append("j.state = any(%s)")
        params.append(list(states))
    if after is not None:
        conditions.append("(j.created_at, j.id) < (%s::timestamptz, %s::uuid)")
        params.extend(after)
    where = (" where " + " and ".join(conditions)) if conditions else ""
    params.append(limit)
    return await fetch_all(
        conn, _JOB_VIEW + where + " order by j.created_at desc, j.id desc limit %s", params
    )


async def cancel_queued(conn: AsyncConnection[Any], job_id: uuid.UUID) -> bool:
    """Queued job -> cancelled at once; False when the job was no longer queued."""
    cursor = await conn.execute(
        """
        update public.transcode_jobs set state = 'cancelled', cancel_requested = true, finished_at = now(),
               eta_seconds = null, stage_detail = 'cancelled'
        where id = %s and state = 'queued'
        """,
        (job_id,),
    )
    return cursor.rowcount > 0


async def request_cancel(conn: AsyncConnection[Any], job_id: uuid.UUID) -> bool:
    """A running job: ask its worker to stop; False when it is not running any more."""
    cursor = await conn.execute(
        """
        update public.transcode_jobs set cancel_requested = true
        where id = %s and state in ('probing', 'encoding', 'packaging', 'publishing')
        """,
        (job_id,),
    )
    return cursor.rowcount > 0


async def fail_asset(conn: AsyncConnection[Any], asset_id: uuid.UUID | None) -> None:
    """An asset whose job ended before it was ever playable is marked failed (a playable one stays)."""
    if asset_id is None:
        return
    await conn.execute(
        "update public.media_assets set state = 'failed' where id = %s and state = 'processing'", (asset_id,)
    )


# --- the worker side ------------------------------------------------------------------------------------

_ACTIVE = "('probing', 'encoding', 'packaging', 'publishing')"


async def claim_job(
    conn: AsyncConnection[Any], job_id: uuid.UUID, *, worker_id: str, stall_seconds: int
) -> dict[str, Any] | None:
    """Take the job for this worker: queued, or active with a heartbeat older than the stall limit."""
    return await fetch_one(
        conn,
        f"""
        update public.transcode_jobs set
            state = 'probing', attempts = attempts + 1, worker_id = %(worker)s, heartbeat_at = now(),
            -- progress is kept: a retry resumes below what was shown and the bar never moves back.
            started_at = coalesce(started_at, now()), eta_seconds = null,
            stage_detail = 'starting', failure_code = null, failure_reason = null
        where id = %(id)s and not cancel_requested
          and (state = 'queued'
               or (state in {_ACTIVE} and heartbeat_at < now() - %(stall)s * interval '1 second'))
        returning id, attempts, asset_id, source_id, options, reason, priority
        """,  # noqa: S608  # _ACTIVE is a constant
        {"id": job_id, "worker": worker_id, "stall": float(stall_seconds)},
    )


async def heartbeat(
    conn: AsyncConnection[Any],
    job_id: uuid.UUID,
    *,
    worker_id: str,
    progress: float,
    eta_seconds: int | None,
    stage_detail: str | None,
) -> bool | None:
    """Write progress and the heartbeat; cancel_requested, or None when the job is no longer ours."""
    row = await fetch_one(
        conn,
        f"""
        update public.transcode_jobs set
            progress = greatest(progress, least(%(progress)s, 100)), eta_seconds = %(eta)s,
            stage_detail = coalesce(%(detail)s, stage_detail), heartbeat_at = now()
        where id = %(id)s and worker_id = %(worker)s and state in {_ACTIVE}
        returning cancel_requested
        """,  # noqa: S608
        {"id": job_id, "worker": worker_id, "progress": progress, "eta": eta_seconds, "detail": stage_detail},
    )
    return None if row is None else bool(row["cancel_requested"])


async def set_state(
    conn: AsyncConnection[Any],
    job_id: uuid.UUID,
    *,
    worker_id: str,
    state: str,
    detail: str,
    progress: float = 0.0,
    eta_seconds: int | None = None,
) -> bool:
    """Move our running job to another active state (progress at least `progress`); False when not ours."""
    cursor = await conn.execute(
        f"""
        update public.transcode_jobs set state = %s, stage_detail = %s, heartbeat_at = now(),
            progress = greatest(progress, least(%s, 100)), eta_seconds = %s
        where id = %s and worker_id = %s and state in {_ACTIVE}
        """,  # noqa: S608
        (state, detail, progress, eta_seconds, job_id, worker_id),
    )
    return cursor.rowcount > 0


async def hold_job(conn: AsyncConnection[Any], job_id: uuid.UUID, *, worker_id: str) -> bool:
    """Lock our running job's row until the transaction ends; False when it is not ours and active."""
    row = await fetch_one(
        conn,
        f"""
        select id from public.transcode_jobs where id = %s and worker_id = %s and state in {_ACTIVE}
        for update
        """,  # noqa: S608
        (job_id, worker_id),
    )
    return row is not None


async def holds_job(conn: AsyncConnection[Any], job_id: uuid.UUID, *, worker_id: str) -> bool:
    """Whether the worker still holds the running job (a cheap check before long uploads)."""
    row = await fetch_one(
        conn,
        f"select id from public.transcode_jobs where id = %s and worker_id = %s and state in {_ACTIVE}",  # noqa: S608
        (job_id, worker_id),
    )
    return row is not None


async def set_renditions_done(conn: AsyncConnection[Any], job_id: uuid.UUID, names: list[str]) -> None:
    """Record the renditions published so far for the job."""
    await conn.execute("update public.transcode_jobs set renditions_done = %s where id = %s", (names, job_id))


async def finish_job(
    conn: AsyncConnection[Any],
    job_id: uuid.UUID,
    *,
    worker_id: str | None,
    state: str,
    failure_code: str | None = None,
    failure_reason: str | None = None,
    dead_lettered: bool = False,
) -> bool:
    """End the job (ready, failed or cancelled); with a worker id only while that worker holds it."""
    cursor = await conn.execute(
        """
        update public.transcode_jobs set
            state = %(state)s, finished_at = now(), eta_seconds = null, heartbeat_at = null,
            progress = case when %(state)s = 'ready' then 100 else progress end,
            stage_detail = %(state)s, failure_code = %(code)s, failure_reason = %(reason)s,
            dead_lettered = %(dead)s
        where id = %(id)s and state not in ('ready', 'failed', 'cancelled')
          and (%(worker)s::text is null or worker_id = %(worker)s)
        """,
        {
            "id": job_id,
            "worker": worker_id,
            "state": state,
            "code": failure_code,
            "reason": failure_reason[:2000] if failure_reason else None,
            "dead": dead_lettered,
        },
    )
    return cursor.rowcount > 0


async def release_for_retry(
    conn: AsyncConnection[Any], job_id: uuid.UUID, *, worker_id: str, reason: str
) -> bool:
    """A transient failure: back to queued (the queue redelivers after its backoff), reason kept.

    False when the job is not ours any more, or when a cancel was requested: such a job must end as
    cancelled, never wait in 'queued' for a delivery that the claim would then refuse.
    """
    cursor = await conn.execute(
        f"""
        update public.transcode_jobs set state = 'queued', worker_id = null, heartbeat_at = null,
            eta_seconds = null, stage_detail = 'waiting to retry', failure_reason = %s
        where id = %s and worker_id = %s and state in {_ACTIVE} and not cancel_requested
        """,  # noqa: S608
        (reason[:2000], job_id, worker_id),
    )
    return cursor.rowcount > 0


async def save_probe(conn: AsyncConnection[Any], source_id: uuid.UUID, probe: dict[str, Any]) -> None:
    """Keep what probing found on the source."""
    from psycopg.types.json import Jsonb

    await conn.execute("update public.media_sources set probe = %s where id = %s", (Jsonb(probe), source_id))


async def reject_source(conn: AsyncConnection[Any], source_id: uuid.UUID, reason: str) -> None:
    """Probing refused the file: the source is rejected (no re-encode of it)."""
    await conn.execute(
        "update public.media_sources set state = 'rejected', rejection_reason = %s where id = %s",
        (reason[:2000], source_id),
    )


async def mark_source_deleted(conn: AsyncConnection[Any], source_id: uuid.UUID) -> None:
    """The source object was removed (MEDIA_KEEP_SOURCES=false)."""
    await conn.execute(
        "update public.media_sources set deleted_at = now() where id = %s and deleted_at is null",
        (source_id,),
    )


async def get_asset(
    conn: AsyncConnection[Any], asset_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    """An asset row (locked FOR UPDATE when asked)."""
    if lock:
        query = "select * from public.media_assets where id = %s for update"
        return await fetch_one(conn, query, (asset_id,))
    return await fetch_one(conn, "select * from public.media_assets where id = %s", (asset_id,))


async def lock_asset_manifests(conn: AsyncConnection[Any], asset_id: uuid.UUID) -> None:
    """Serialise manifest writers of one asset (the transcode and subtitle refreshes) until tx end."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"asset-manifests:{asset_id}",)
    )


async def content_subtitles(
    conn: AsyncConnection[Any], *, title_id: uuid.UUID, episode_id: uuid.UUID | None
) -> list[dict[str, Any]]:
    """The content's live subtitle tracks, in a stable order."""
    return await fetch_all(
        conn,
        """
        select id, language, label, forced, sdh, storage_key from public.media_subtitles
        where title_id = %s and episode_id is not distinct from %s and deleted_at is null
        order by language, forced, sdh, created_at
        """,
        (title_id, episode_id),
    )


async def publishable_assets(
    conn: AsyncConnection[Any], *, title_id: uuid.UUID, episode_id: uuid.UUID | None
) -> list[dict[str, Any]]:
    """The content's main assets with published manifests (playable or ready)."""
    return await fetch_all(
        conn,
        """
        select * from public.media_assets
        where title_id = %s and episode_id is not distinct from %s and purpose = 'main'
          and state in ('playable', 'ready')
        """,
        (title_id, episode_id),
    )


async def save_renditions(
    conn: AsyncConnection[Any], asset_id: uuid.UUID, rows: list[dict[str, Any]]
) -> None:
    """Insert or refresh the asset's rendition rows."""
    for row in rows:
        await conn.execute(
            """
            insert into public.media_renditions (
                asset_id, name, kind, codec, codecs, width, height, frame_rate, bandwidth, average_bandwidth,
                language, label, is_default)
            values (%(asset_id)s, %(name)s, %(kind)s, %(codec)s, %(codecs)s, %(width)s, %(height)s,
                    %(frame_rate)s, %(bandwidth)s, %(average_bandwidth)s, %(language)s, %(label)s,
                    %(is_default)s)
            on conflict (asset_id, name) do update set
                kind = excluded.kind, codec = excluded.codec, codecs = excluded.codecs,
                width = excluded.width, height = excluded.height, frame_rate = excluded.frame_rate,
                bandwidth = excluded.bandwidth,
                average_bandwidth = excluded.average_bandwidth, language = excluded.language,
                label = excluded.label, is_default = excluded.is_default
            """,
            {**row, "asset_id": asset_id},
        )


async def publish_asset(
    conn: AsyncConnection[Any],
    asset_id: uuid.UUID,
    *,
    state: str,
    hls_master: str,
    dash_manifest: str,
    duration_seconds: float | None,
    packaging: dict[str, Any],
    images: dict[str, Any] | None,
    drm: dict[str, Any],
) -> bool:
    """Store the asset's manifests and facts and move it to playable or ready (never back from ready).

    False when the asset is no longer publishable (retired by a newer asset, failed): nothing changed.
    """
    from psycopg.types.json import Jsonb

    cursor = await conn.execute(
        """
        update public.media_assets set
            state = %(state)s, hls_master = %(hls)s, dash_manifest = %(dash)s,
            duration_seconds = coalesce(%(duration)s, duration_seconds), packaging = %(packaging)s,
            images = coalesce(%(images)s, images), drm = %(drm)s,
            playable_at = coalesce(playable_at, now()),
            ready_at = case when %(state)s = 'ready' then now() else ready_at end
        where id = %(id)s and state in ('processing', 'playable')
        """,
        {
            "id": asset_id,
            "state": state,
            "hls": hls_master,
            "dash": dash_manifest,
            "duration": duration_seconds,
            "packaging": Jsonb(packaging),
            "images": Jsonb(images) if images is not None else None,
            "drm": Jsonb(drm),
        },
    )
    return cursor.rowcount > 0


async def lock_content(conn: AsyncConnection[Any], asset: dict[str, Any]) -> None:
    """Serialise changes of which asset is current for the asset's content (title, episode, purpose)."""
    content = f"asset-current:{asset['title_id']}:{asset['episode_id']}:{asset['purpose']}"
    await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (content,))


async def make_current(conn: AsyncConnection[Any], asset_id: uuid.UUID) -> bool:
    """Make the asset its content's current one when that is right; whether it is current afterwards.

    Under the content's lock, with the asset read afresh: only a playable or ready asset may become
    current. With no current asset it becomes current at once (playable is enough); a current one is
    replaced (and retired) only by a ready asset created no earlier than it, so the newest ready
    encode wins whichever finishes first, and a retired asset never comes back.
    """
    asset = await get_asset(conn, asset_id)
    if asset is None:
        return False
    await lock_content(conn, asset)
    asset = await get_asset(conn, asset_id, lock=True)
    if asset is None or asset["state"] not in ("playable", "ready"):
        return False
    if asset["is_current"]:
        return True
    current = await fetch_one(
        conn,
        """
        select id, created_at from public.media_assets
        where title_id = %s and episode_id is not distinct from %s and purpose = %s and is_current
        for update
        """,
        (asset["title_id"], asset["episode_id"], asset["purpose"]),
    )
    if current is not None:
        if asset["state"] != "ready" or current["created_at"] > asset["created_at"]:
            return False
        await conn.execute(
            "update public.media_assets set is_current = false, state = 'retired' where id = %s",
            (current["id"],),
        )
    await conn.execute("update public.media_assets set is_current = true where id = %s", (asset["id"],))
    return True


async def stalled_jobs(
    conn: AsyncConnection[Any], *, stall_seconds: int, fanout_grace_seconds: float = 0.0
) -> list[dict[str, Any]]:
    """Active jobs whose worker stopped beating, locked for the watchdog (others skip them).

    A fanned-out job (held by 'fanout:<attempt>') beats only while one of its chunks runs; between a
    chunk's failed try and its retry the queue's backoff passes in silence, so such a job has
    `fanout_grace_seconds` more before it counts as stalled.
    """
    return await fetch_all(
        conn,
        f"""
        select id, attempts, priority, worker_id, state, asset_id, cancel_requested
        from public.transcode_jobs
        where state in {_ACTIVE}
          and heartbeat_at < now() - (%(stall)s + case when worker_id like 'fanout:%%' then %(grace)s
                                                      else 0 end) * interval '1 second'
        order by heartbeat_at
        for update skip locked
        """,  # noqa: S608
        {"stall": float(stall_seconds), "grace": float(fanout_grace_seconds)},
    )


async def requeue_job(conn: AsyncConnection[Any], job_id: uuid.UUID) -> None:
    """The watchdog gives a stalled job back to the queue."""
    await conn.execute(
        """
        update public.transcode_jobs set state = 'queued', worker_id = null, heartbeat_at = null,
            eta_seconds = null, stage_detail = 're-queued: worker lost'
        where id = %s
        """,
        (job_id,),
    )


# --- chunked fan-out ------------------------------------------------------------------------------------


async def hand_over(
    conn: AsyncConnection[Any], job_id: uuid.UUID, *, worker_id: str, holder: str, detail: str
) -> bool:
    """Pass our running job to another holder (the chunk fan-out, a joiner); False when it is not ours."""
    cursor = await conn.execute(
        f"""
        update public.transcode_jobs set worker_id = %s, heartbeat_at = now(), stage_detail = %s
        where id = %s and worker_id = %s and state in {_ACTIVE}
        """,  # noqa: S608
        (holder, detail, job_id, worker_id),
    )
    return cursor.rowcount > 0


async def insert_chunk(
    conn: AsyncConnection[Any],
    job_id: uuid.UUID,
    *,
    attempt: int,
    index: int,
    start: float,
    duration: float,
    output_prefix: str,
) -> None:
    """One chunk of a fanned-out encode (kept when already there: a repeated fan-out of the same attempt)."""
    await conn.execute(
        """
        insert into public.transcode_chunks (job_id, attempt, chunk_index, start_seconds, duration_seconds,
                                             output_prefix)
        values (%s, %s, %s, %s, %s, %s)
        on conflict (job_id, attempt, chunk_index) do nothing
        """,
        (job_id, attempt, index, start, duration, output_prefix),
    )


async def get_chunk(
    conn: AsyncConnection[Any], job_id: uuid.UUID, attempt: int, index: int
) -> dict[str, Any] | None:
    """One chunk row."""
    return await fetch_one(
        conn,
        "select * from public.transcode_chunks where job_id = %s and attempt = %s and chunk_index = %s",
        (job_id, attempt, index),
    )


async def job_for_update(conn: AsyncConnection[Any], job_id: uuid.UUID) -> dict[str, Any] | None:
    """The job row locked, so chunk completions of one job are counted one at a time."""
    return await fetch_one(conn, "select * from public.transcode_jobs where id = %s for update", (job_id,))


async def finish_chunk(
    conn: AsyncConnection[Any], job_id: uuid.UUID, attempt: int, index: int
) -> tuple[bool, int, int]:
    """Mark a chunk done: (changed by us, chunks done, chunks in all) for this attempt."""
    cursor = await conn.execute(
        """
        update public.transcode_chunks set state = 'done', finished_at = now()
        where job_id = %s and attempt = %s and chunk_index = %s and state = 'queued'
        """,
        (job_id, attempt, index),
    )
    row = await fetch_one(
        conn,
        "select count(*) filter (where state = 'done') as done, count(*) as total"
        " from public.transcode_chunks where job_id = %s and attempt = %s",
        (job_id, attempt),
    )
    assert row is not None
    return cursor.rowcount > 0, int(row["done"]), int(row["total"])


async def chunks_of(conn: AsyncConnection[Any], job_id: uuid.UUID, attempt: int) -> list[dict[str, Any]]:
    """The chunks of one attempt, in order."""
    return await fetch_all(
        conn,
        "select * from public.transcode_chunks where job_id = %s and attempt = %s order by chunk_index",
        (job_id, attempt),
    )


async def fanout_progress(
    conn: AsyncConnection[Any], job_id: uuid.UUID, *, holder: str, progress: float
) -> None:
    """Progress and heartbeat of a fanned-out job (written by its chunks)."""
    await conn.execute(
        """
        update public.transcode_jobs set progress = greatest(progress, least(%s, 100)), heartbeat_at = now()
        where id = %s and worker_id = %s
        """,
        (progress, job_id, holder),
    )


# --- storage sweep (daily maintenance) ---------------------------------------------------------------


async def sweepable_assets(
    conn: AsyncConnection[Any], *, older_than_seconds: float, limit: int
) -> list[dict[str, Any]]:
    """Failed or retired assets, in that state for longer than the grace, whose files are still stored."""
    return await fetch_all(
        conn,
        """
        select id, storage_prefix from public.media_assets
        where state in ('failed', 'retired') and not is_current
          and updated_at < now() - %s * interval '1 second' and not packaging ? 'purged_at'
        order by updated_at
        limit %s
        """,
        (older_than_seconds, limit),
    )


async def mark_asset_purged(conn: AsyncConnection[Any], asset_id: uuid.UUID) -> None:
    """The asset's files are gone: say so (the row stays for history) and drop its manifest keys."""
    await conn.execute(
        """
        update public.media_assets set
            packaging = packaging || jsonb_build_object('purged_at', now()),
            hls_master = null, dash_manifest = null
        where id = %s and state in ('failed', 'retired')
        """,
        (asset_id,),
    )


async def sweepable_work(
    conn: AsyncConnection[Any], *, older_than_seconds: float, limit: int
) -> list[uuid.UUID]:
    """Ended jobs (past the grace) whose fan-out chunk files may still wait under media/work/<job>/."""
    rows = await fetch_all(
        conn,
        """
        select j.id from public.transcode_jobs j
        where j.state in ('ready', 'failed', 'cancelled')
          and j.finished_at < now() - %s * interval '1 second'
          and exists (select 1 from public.transcode_chunks c
                      where c.job_id = j.id and c.output_prefix is not null)
        order by j.finished_at
        limit %s
        """,
        (older_than_seconds, limit),
    )
    return [row["id"] for row in rows]


async def mark_work_purged(conn: AsyncConnection[Any], job_id: uuid.UUID) -> None:
    """The job's chunk files are gone (the chunk rows stay, without a prefix)."""
    await conn.execute("update public.transcode_chunks set output_prefix = null where job_id = %s", (job_id,))
