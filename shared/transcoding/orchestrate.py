"""One transcode job run: claim, download, probe, encode (low rungs first), package, publish, finish.

    queued -> probing -> encoding -> packaging -> publishing (asset 'playable')
           -> encoding -> packaging -> publishing (asset 'ready') -> ready | failed | cancelled

Idempotent under redelivery: the claim is one atomic UPDATE, so a message for a job another live
worker holds, or for a finished job, changes nothing; a ready asset is never touched again, and a retry
of a job whose asset is already playable resumes at the remaining rungs. Permanent pipeline errors
(hostile, corrupt or refused files: the uploader's to fix) fail the job at once and the message is
acknowledged; anything else is retried with the queue's backoff and dead-lettered on the last attempt.
The job keeps a human reason; internal details go to the log only, with the job id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shared.infra.queue.worker import PermanentJobError
from shared.transcoding import keys as content_keys
from shared.transcoding import repository
from shared.transcoding.pipeline.dash import drm_signalling
from shared.transcoding.pipeline.model import (
    ContentKeys,
    EncodedOutput,
    ImageSet,
    PackagedRendition,
    PipelineError,
    Rung,
    SourceInfo,
    SubtitleTrack,
)
from shared.transcoding.publish import is_manifest, local_files, publish_files
from shared.transcoding.tracking import JobCancelled, JobLost, Tracker, run_watched

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from shared.infra.queue.base import Job
    from shared.infra.storage.base import Storage
    from shared.settings import Settings

logger = logging.getLogger("cinema.transcoding")

_HASH_CHUNK = 4 * 1024 * 1024
# Scratch space a run needs per source byte: the source itself, the encoded renditions and their
# packaged copies (HLS and DASH) stay on disk together until published.
DISK_FACTOR = 3


def parse_job_id(payload: dict[str, Any], field: str = "transcode_job_id") -> uuid.UUID:
    """The job id of a payload; a malformed one can never succeed, so it is a permanent failure."""
    try:
        return uuid.UUID(str(payload[field]))
    except (KeyError, ValueError, TypeError) as error:
        raise PermanentJobError(f"malformed payload: {field} missing or not a UUID") from error


def work_root(settings: Settings) -> Path:
    """A fresh scratch folder under MEDIA_WORK_DIR (Lambda: /tmp), else the system temp folder."""
    base = settings.media_work_dir
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="transcode-", dir=str(base) if base else None))


def sweep_work_dirs(settings: Settings) -> int:
    """Remove every transcode scratch folder left in the work dir; only where no job runs concurrently.

    A Lambda environment runs one invocation at a time and keeps /tmp between invocations: a job killed
    by the function timeout leaves its folder behind, which the next invocation removes before it starts.
    """
    base = settings.media_work_dir or Path(tempfile.gettempdir())
    removed = 0
    for folder in base.glob("transcode-*"):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def packaged_to_json(renditions: list[PackagedRendition]) -> dict[str, Any]:
    """The packaged facts stored on the asset (media_assets.packaging)."""
    return {"version": 1, "renditions": [dataclasses.asdict(rendition) for rendition in renditions]}


def packaged_from_json(data: dict[str, Any] | None) -> list[PackagedRendition]:
    """PackagedRendition values back from media_assets.packaging (unknown fields ignored)."""
    names = {field.name for field in dataclasses.fields(PackagedRendition)}
    return [
        PackagedRendition(**{key: value for key, value in item.items() if key in names})
        for item in (data or {}).get("renditions", [])
    ]


def codec_of(codecs: str) -> str:
    """'h264' / 'hevc' / 'aac' from an RFC 6381 string."""
    head = codecs.split(".", 1)[0]
    return {"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc", "mp4a": "aac"}.get(head, head)


def rendition_row(rendition: PackagedRendition) -> dict[str, Any]:
    """A media_renditions row of a packaged rendition."""
    return {
        "name": rendition.name,
        "kind": rendition.kind,
        "codec": codec_of(rendition.codecs),
        "codecs": rendition.codecs,
        "width": rendition.width,
        "height": rendition.height,
        "frame_rate": rendition.frame_rate,
        "bandwidth": rendition.bandwidth,
        "average_bandwidth": rendition.average_bandwidth,
        "language": rendition.language,
        "label": rendition.label,
        "is_default": rendition.is_default,
    }


def images_json(images: ImageSet, prefix: str) -> dict[str, Any]:
    """media_assets.images: storage keys of posters, storyboard sheets and the thumbnails track."""
    return {
        "posters": [prefix + path for path in images.posters],
        "storyboards": [prefix + path for path in images.storyboards],
        "thumbnails_vtt": prefix + images.thumbnails_vtt if images.thumbnails_vtt else None,
        "tile_width": images.tile_width,
        "tile_height": images.tile_height,
        "interval_seconds": images.interval_seconds,
    }


def probe_json(info: SourceInfo) -> dict[str, Any]:
    """What probing found, for media_sources.probe (the local path left out)."""
    data = dataclasses.asdict(info)
    data.pop("path", None)
    return data


def source_info(probe: dict[str, Any], path: Path) -> SourceInfo:
    """The SourceInfo probing accepted, back from media_sources.probe (chunk and join jobs)."""
    from shared.transcoding.pipeline.model import AudioTrack

    fields = {field.name for field in dataclasses.fields(SourceInfo)} - {"path", "audio"}
    return SourceInfo(
        path=path,
        audio=[AudioTrack(**track) for track in probe.get("audio", [])],
        **{key: value for key, value in probe.items() if key in fields},
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _label(rungs: list[Rung], audio: bool, trickplay: bool) -> str:
    parts = [f"{rung.codec} {rung.height}p" for rung in rungs]
    if audio:
        parts.append("audio")
    if trickplay:
        parts.append("trick play")
    return "encoding " + ", ".join(parts) if parts else "encoding"


async def download_subtitles(
    conn: AsyncConnection[Any],
    storage: Storage,
    *,
    title_id: uuid.UUID,
    episode_id: uuid.UUID | None,
    folder: Path,
) -> list[SubtitleTrack]:
    """The content's current subtitle files, downloaded for write_manifests."""
    tracks = []
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    for row in await repository.content_subtitles(conn, title_id=title_id, episode_id=episode_id):
        path = folder / f"{row['id']}.vtt"
        await storage.download_file(row["storage_key"], path)
        tracks.append(
            SubtitleTrack(
                language=row["language"],
                label=row["label"],
                forced=row["forced"],
                sdh=row["sdh"],
                vtt_path=path,
            )
        )
    return tracks


class AssetSuperseded(Exception):
    """The job's asset was retired (a newer encode of the content became current) or failed meanwhile."""


SUPERSEDED_REASON = (
    "A newer transcode of this content became current first, so this job's asset was retired and the"
    " job stopped without publishing more."
)


def internal_reason(attempts: int, *, final: bool) -> str:
    """The human sentence stored for an internal error (its details are in the log, never in the API)."""
    if final:
        retried = attempts - 1
        return (
            f"An internal error stopped the job; it was retried {retried} time{'s' if retried != 1 else ''}"
            " and then given up. The details are in the worker's log under the job id."
        )
    return f"An internal error interrupted attempt {attempts}; the job will be retried."


def _gigabytes(size: int) -> str:
    """A byte count for people: '3.2 GB'."""
    return f"{size / 1e9:.1f} GB"


class Run:
    """The state of one job run on this worker."""

    def __init__(
        self,
        *,
        job_id: uuid.UUID,
        claimed: dict[str, Any],
        queue_attempts: int,
        worker_id: str,
        settings: Settings,
        pool: AsyncConnectionPool,
        storage: Storage,
    ) -> None:
        self.job_id = job_id
        self.claimed = claimed
        self.attempts = max(int(claimed["attempts"]), queue_attempts)
        self.worker_id = worker_id
        self.settings = settings
        self.pool = pool
        self.storage = storage
        self.tracker = Tracker(job_id, worker_id=worker_id)
        self.work_dir: Path | None = None
        self.source: dict[str, Any] = {}
        self.asset: dict[str, Any] = {}
        self.info: SourceInfo | None = None
        self.keys: ContentKeys | None = None
        self.packaged: dict[str, PackagedRendition] = {}
        self.published: set[str] = set()
        self.images: ImageSet | None = None
        self.state = "probing"

    @property
    def work(self) -> Path:
        """The scratch folder of the run (created by execute)."""
        if self.work_dir is None:
            raise RuntimeError("the run has no work folder yet")
        return self.work_dir

    @property
    def asset_dir(self) -> Path:
        """Where the asset is packaged before publishing."""
        return self.work / "asset"

    @property
    def prefix(self) -> str:
        """The asset's storage prefix (ends with '/')."""
        return str(self.asset["storage_prefix"])

    # --- bookkeeping -------------------------------------------------------------------------------

    async def event(self, state: str, message: str) -> None:
        """Append to the job's history in a transaction of its own."""
        async with self.pool.connection() as conn:
            await repository.add_event(conn, self.job_id, state, message)

    async def stage(self, state: str, detail: str, start: float, end: float) -> None:
        """Enter a state (history entry on change) and map progress onto start..end."""
        self.tracker.stage(start, end, detail)
        async with self.pool.connection() as conn:
            if not await repository.set_state(
                conn,
                self.job_id,
                worker_id=self.worker_id,
                state=state,
                detail=detail,
                progress=start,
                eta_seconds=self.tracker.eta_seconds,
            ):
                raise JobLost()
            if state != self.state:
                await repository.add_event(conn, self.job_id, state, detail)
        self.state = state

    # --- the flow ----------------------------------------------------------------------------------

    async def execute(self) -> None:
        """Everything between the claim and the end state."""
        self.work_dir = await asyncio.to_thread(work_root, self.settings)
        await self.load_rows()
        source_path = await self.download_source()
        self.info = await self.probe(source_path)
        self.keys = await self.content_keys()
        await self.encode_and_publish()

    async def load_rows(self) -> None:
        """The job's source and asset rows."""
        async with self.pool.connection() as conn:
            self.source = await repository.get_source(conn, self.claimed["source_id"]) or {}
            asset_id = self.claimed["asset_id"]
            asset = await repository.get_asset(conn, asset_id) if asset_id else None
        if asset is None or not self.source:
            raise PipelineError("The job has no source or asset any more.", code="asset_missing")
        if asset["state"] not in ("processing", "playable"):
            raise AssetSuperseded()  # retired while the job waited: encoding it would be wasted
        self.asset = asset

    async def download_source(self, *, staged: bool = True) -> Path:
        """Fetch the source into the work folder and check it is the file that was uploaded."""
        from shared.infra.storage.rules import ObjectNotFound

        if self.source.get("deleted_at") is not None:
            raise PipelineError("The source file was deleted; upload it again.", code="source_gone")
        if staged:
            await self.stage("probing", "downloading the source", 0.0, 3.0)
        path = self.work / "source" / "source.media"
        path.parent.mkdir(parents=True)
        self.check_disk(int(self.source["size_bytes"]))
        try:
            await self.storage.download_file(self.source["storage_key"], path)
        except ObjectNotFound as error:
            raise PipelineError("The source file is missing from storage.", code="source_missing") from error
        size = path.stat().st_size
        if size != self.source["size_bytes"]:
            raise PipelineError(
                f"The stored source has {size} bytes, not the {self.source['size_bytes']} uploaded.",
                code="source_corrupted",
            )
        expected = self.source.get("sha256")
        if expected and await asyncio.to_thread(_sha256, path) != expected:
            raise PipelineError("The stored source does not match its SHA-256.", code="source_corrupted")
        return path

    def check_disk(self, size: int) -> None:
        """Refuse before downloading a source this worker's scratch disk cannot hold with its outputs."""
        free = shutil.disk_usage(self.work).free
        need = size * DISK_FACTOR
        if need > free:
            raise PipelineError(
                f"The source ({_gigabytes(size)}) needs about {_gigabytes(need)} of scratch space to"
                f" transcode, but this worker has {_gigabytes(free)} free. Give the transcoder more disk"
                " (MEDIA_WORK_DIR, Lambda's ephemeral storage) or upload a smaller file.",
                code="source_too_large_for_worker",
            )

    async def probe(self, path: Path) -> SourceInfo:
        """Judge the file by content; a refusal rejects the source (no re-encode of it either)."""
        from shared.transcoding.pipeline.probing import inspect_source

        await self.stage("probing", "probing the source", 3.0, 5.0)
        try:
            info = await inspect_source(path, settings=self.settings)
        except PipelineError as error:
            if not error.transient:
                async with self.pool.connection() as conn:
                    await repository.reject_source(conn, self.source["id"], str(error))
            raise
        async with self.pool.connection() as conn:
            await repository.save_probe(conn, self.source["id"], probe_json(info))
            await repository.add_event(
                conn,
                self.job_id,
                "probing",
                f"source: {info.demuxer}, {info.duration_seconds:.1f} s"
                + (f", {info.width}x{info.height}" if info.width else "")
                + f", {len(info.audio)} audio track(s)",
            )
        return info

    async def content_keys(self) -> ContentKeys:
        """The asset's keys: the stored ones (a retry), else new ones stored wrapped first."""
        async with self.pool.connection() as conn:
            try:
                return await content_keys.asset_keys(conn, asset_id=self.asset["id"], settings=self.settings)
            except content_keys.KeysMissing:
                pass
            await content_keys.store_keys(
                conn, asset_id=self.asset["id"], keys=content_keys.new_content_keys(), settings=self.settings
            )
        # Read back: a concurrent writer (impossible under the claim, but cheap to respect) wins.
        async with self.pool.connection() as conn:
            return await content_keys.asset_keys(conn, asset_id=self.asset["id"], settings=self.settings)

    async def encode_and_publish(self) -> None:
        """Phase 1 (lowest rungs + audio, then playable) and phase 2 (the rest + trick play, then ready)."""
        from shared.transcoding.pipeline.ladder import build_ladder

        info = self.info
        assert info is not None
        options = dict(self.claimed["options"] or {})
        hevc = options.get("hevc")
        ladder = build_ladder(
            info,
            hevc=self.settings.media_hevc_enabled if hevc is None else bool(hevc),
            max_height=options.get("max_height"),
        )
        has_video = info.video_stream_index is not None and bool(ladder)
        first_count = self.settings.media_first_rungs
        resumed = self.asset["state"] == "playable" and bool(packaged_from_json(self.asset.get("packaging")))
        if resumed:
            # A retry after the asset became playable: its published renditions stay as they are.
            for rendition in packaged_from_json(self.asset["packaging"]):
                self.packaged[rendition.name] = rendition
            await self.event("encoding", "resuming: the asset is already playable")
        # Audio-only sources are done in one phase; with MEDIA_FIRST_RUNGS=0 everything waits for phase 2.
        phase_one = ladder[:first_count] if has_video else []
        run_phase_one = not resumed and (bool(phase_one) or not has_video)
        rest = [rung for rung in ladder if rung.name not in self.packaged and rung not in phase_one]
        if run_phase_one:
            outputs = await self.encode(
                phase_one, audio=True, trickplay=False, start=5.0, end=27.0, chunked=False
            )
            await self.package(outputs, 27.0, 28.0)
            await self.make_images(outputs)
            final = not rest and not has_video
            await self.publish(final=final, start=28.0 if not final else 90.0)
            if final:
                return
        start = 30.0 if (run_phase_one or resumed) else 5.0
        chunked = info.duration_seconds > self.settings.media_chunk_min_seconds
        audio_pending = not run_phase_one and not resumed
        if chunked and self.settings.media_chunk_fanout and not audio_pending:
            from shared.transcoding.fanout import fan_out

            # Chunks become queue jobs (other Lambdas); the last one to finish queues the join.
            await fan_out(self, rest, trickplay=has_video, start=start)
            return
        outputs = await self.encode(
            rest, audio=audio_pending, trickplay=has_video, start=start, end=90.0, chunked=chunked
        )
        await self.package(outputs, 90.0, 94.0)
        if self.images is None and not resumed:
            await self.make_images(outputs)
        await self.publish(final=True, start=94.0)

    async def encode(
        self, rungs: list[Rung], *, audio: bool, trickplay: bool, start: float, end: float, chunked: bool
    ) -> list[EncodedOutput]:
        """One encode phase (one ffmpeg process, or a chunk pool for long sources)."""
        from shared.transcoding.pipeline.encode import encode_renditions

        info = self.info
        assert info is not None
        tracks = list(info.audio) if audio else []
        await self.stage("encoding", _label(rungs, bool(tracks), trickplay), start, end)
        out_dir = self.work / f"encode-{int(start)}"
        out_dir.mkdir()
        if chunked and (rungs or trickplay):
            import os

            from shared.transcoding.pipeline.chunks import encode_chunked

            workers = self.settings.media_chunk_workers or os.cpu_count() or 1
            return await encode_chunked(
                info,
                rungs=rungs,
                audio=tracks,
                trickplay=trickplay,
                out_dir=out_dir,
                settings=self.settings,
                workers=workers,
                on_progress=self.tracker.on_progress,
            )
        return await encode_renditions(
            info,
            rungs=rungs,
            audio=tracks,
            trickplay=trickplay,
            out_dir=out_dir,
            settings=self.settings,
            on_progress=self.tracker.on_progress,
        )

    async def package(self, outputs: list[EncodedOutput], start: float, end: float) -> None:
        """CMAF segments for HLS (AES-128) and DASH (CENC) of each encoded output."""
        from shared.transcoding.pipeline.package import package_rendition

        assert self.keys is not None
        await self.stage("packaging", "packaging " + ", ".join(output.name for output in outputs), start, end)
        for index, output in enumerate(outputs):
            self.packaged[output.name] = await package_rendition(
                output, asset_dir=self.asset_dir, keys=self.keys, settings=self.settings
            )
            await self.tracker.on_progress((index + 1) / len(outputs), None)

    async def make_images(self, outputs: list[EncodedOutput]) -> None:
        """Posters and the storyboard from the lowest video rung; a failure here does not fail the job."""
        from shared.transcoding.pipeline.images import make_images

        assert self.info is not None
        videos = [output for output in outputs if output.kind == "video" and output.rung is not None]
        if not videos:
            return
        lowest = min(videos, key=lambda output: output.rung.height if output.rung else 0)
        try:
            self.images = await make_images(
                video=lowest.path, source=self.info, out_dir=self.asset_dir / "images", settings=self.settings
            )
        except PipelineError as error:
            logger.warning("images failed", extra={"job_id": str(self.job_id), "error": str(error)})
            await self.event(self.state, f"images skipped: {error}")

    def ordered_renditions(self) -> list[PackagedRendition]:
        """Packaged renditions, video by height (lowest first), then audio, then trick play."""
        order = {"video": 0, "audio": 1, "iframe": 2}
        return sorted(
            self.packaged.values(), key=lambda item: (order.get(item.kind, 3), item.height or 0, item.name)
        )

    async def publish(self, *, final: bool, start: float) -> None:
        """Upload media first, then manifests, rows and the asset state holding the job and the locks.

        Fenced: a worker that lost the job (the watchdog gave it to another) uploads and writes nothing,
        and an asset retired meanwhile (a newer encode of the content became current) is left alone.
        """
        from shared.transcoding.pipeline.package import write_manifests
        from shared.transcoding.service import emit_finished

        assert self.keys is not None and self.info is not None
        await self.stage("publishing", "publishing", start, 100.0 if final else 30.0)
        await self.ensure_held()
        media = [
            path
            for path in local_files(self.asset_dir)
            if not is_manifest(path) and path not in self.published
        ]
        await publish_files(self.storage, self.asset_dir, self.prefix, media)
        self.published.update(media)
        renditions = self.ordered_renditions()
        if final:
            # The transaction below ends the job: no tick may cancel it half way (a cancel request
            # arriving now is too late, the job finishes).
            await self.tracker.pause()
        async with self.pool.connection() as conn, conn.transaction():
            # Lock order (job row, content, asset manifests, asset row) is the same for every writer.
            if not await repository.hold_job(conn, self.job_id, worker_id=self.worker_id):
                raise JobLost()
            await repository.lock_content(conn, self.asset)
            await repository.lock_asset_manifests(conn, self.asset["id"])
            asset = await repository.get_asset(conn, self.asset["id"], lock=True)
            if asset is None or asset["state"] not in ("processing", "playable"):
                raise AssetSuperseded()
            subtitles = await self.subtitles(conn)
            written = write_manifests(
                self.asset_dir,
                renditions=renditions,
                subtitles=subtitles,
                keys=self.keys,
                settings=self.settings,
            )
            playlists = [path for path in local_files(self.asset_dir) if is_manifest(path)]
            await publish_files(
                self.storage, self.asset_dir, self.prefix, sorted(set(written) | set(playlists))
            )
            await repository.save_renditions(
                conn, self.asset["id"], [rendition_row(item) for item in renditions]
            )
            if not await repository.publish_asset(
                conn,
                self.asset["id"],
                state="ready" if final else "playable",
                hls_master=self.prefix + "hls/master.m3u8",
                dash_manifest=self.prefix + "dash/manifest.mpd",
                duration_seconds=self.info.duration_seconds,
                packaging=packaged_to_json(renditions),
                images=images_json(self.images, self.prefix) if self.images else None,
                drm=drm_signalling(self.keys),
            ):
                raise AssetSuperseded()
            current = await repository.make_current(conn, self.asset["id"])
            names = [item.name for item in renditions]
            await repository.set_renditions_done(conn, self.job_id, names)
            await repository.add_event(
                conn,
                self.job_id,
                "publishing",
                ("ready" if final else "playable")
                + f": {', '.join(names)}"
                + (" (current)" if current else " (not current yet)"),
            )
            if final:
                if not await repository.finish_job(
                    conn, self.job_id, worker_id=self.worker_id, state="ready"
                ):
                    raise JobLost()
                await repository.add_event(conn, self.job_id, "ready", "transcode finished")
                await emit_finished(conn, job_id=self.job_id, outcome="ready")
        if final:
            await self.drop_source()

    async def ensure_held(self) -> None:
        """Checks before long uploads: the job is still ours (else JobLost), its asset still publishable.

        Both are checked again, under lock, before the manifests go up.
        """
        async with self.pool.connection() as conn:
            if not await repository.holds_job(conn, self.job_id, worker_id=self.worker_id):
                raise JobLost()
            asset = await repository.get_asset(conn, self.asset["id"])
        if asset is None or asset["state"] not in ("processing", "playable"):
            raise AssetSuperseded()

    async def subtitles(self, conn: AsyncConnection[Any]) -> list[SubtitleTrack]:
        """The content's current subtitles (main content only; trailers carry none)."""
        if self.asset["purpose"] != "main":
            return []
        folder = self.work / f"subtitles-{uuid.uuid4().hex[:8]}"
        return await download_subtitles(
            conn,
            self.storage,
            title_id=self.asset["title_id"],
            episode_id=self.asset["episode_id"],
            folder=folder,
        )

    async def drop_source(self) -> None:
        """MEDIA_KEEP_SOURCES=false: the source object goes once its asset is ready.

        Runs after the job was committed ready: a failure here must not fail it (nor be retried as if
        the transcode had failed), but it is logged, as the source then stays stored.
        """
        if self.settings.media_keep_sources:
            return
        try:
            await self.storage.delete(self.source["storage_key"])
            async with self.pool.connection() as conn:
                await repository.mark_source_deleted(conn, self.source["id"])
        except Exception:
            logger.warning(
                "dropping the source after the transcode failed; it stays stored",
                exc_info=True,
                extra={"job_id": str(self.job_id), "source_id": str(self.source.get("id"))},
            )

    # --- endings -----------------------------------------------------------------------------------

    async def end(
        self,
        outcome: Literal["failed", "cancelled"],
        *,
        code: str | None = None,
        reason: str | None = None,
        dead: bool = False,
    ) -> bool:
        """Finish the job as failed or cancelled (history, asset, event); False when it was not ours."""
        from shared.transcoding.service import end_job

        async with self.pool.connection() as conn, conn.transaction():
            return await end_job(
                conn,
                job_id=self.job_id,
                asset_id=self.asset.get("id") or self.claimed["asset_id"],
                outcome=outcome,
                reason=reason or outcome,
                code=code,
                dead_lettered=dead,
                worker_id=self.worker_id,
            )

    async def retry_later(self, reason: str) -> bool:
        """Back to queued for the queue's retry; False when the job is not ours or had to end instead.

        A job whose cancel was requested is not retried: it ends cancelled here.
        """
        from shared.transcoding.service import end_job

        async with self.pool.connection() as conn, conn.transaction():
            if await repository.release_for_retry(conn, self.job_id, worker_id=self.worker_id, reason=reason):
                await repository.add_event(
                    conn, self.job_id, "queued", f"attempt {self.attempts} failed: {reason}"
                )
                return True
            await end_job(
                conn,
                job_id=self.job_id,
                asset_id=self.asset.get("id") or self.claimed["asset_id"],
                outcome="cancelled",
                reason=f"cancelled after attempt {self.attempts} failed",
                worker_id=self.worker_id,
            )
        return False

    def cleanup(self) -> None:
        """Remove the work folder, whatever happened."""
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return text if text else type(error).__name__


async def run_transcode(payload: dict[str, Any], job: Job) -> None:
    """The transcode.run handler: claim the job, run it, and settle it for the queue."""
    from shared.infra.db import get_pool
    from shared.infra.queue.postgres import default_worker_id
    from shared.infra.storage import get_storage
    from shared.settings import get_settings

    job_id = parse_job_id(payload)
    settings = get_settings()
    pool = await get_pool()
    worker_id = default_worker_id()
    async with pool.connection() as conn:
        claimed = await repository.claim_job(
            conn, job_id, worker_id=worker_id, stall_seconds=settings.media_job_stall_seconds
        )
        if claimed is None:
            await _unclaimed(conn, job_id)
            return
        await repository.add_event(
            conn, job_id, "probing", f"attempt {claimed['attempts']} started on {worker_id.rsplit(':', 1)[0]}"
        )
    run = Run(
        job_id=job_id,
        claimed=claimed,
        queue_attempts=job.attempts,
        worker_id=worker_id,
        settings=settings,
        pool=pool,
        storage=await get_storage(),
    )
    await settle(run, run.execute, attempts=run.attempts, release=run.retry_later)


async def _unclaimed(conn: AsyncConnection[Any], job_id: uuid.UUID) -> None:
    """A delivery the claim refused: unknown job (poisoned), a queued job to cancel, or a duplicate."""
    from shared.transcoding.service import end_job

    async with conn.transaction():
        row = await repository.get_job(conn, job_id, lock=True)
        if row is None:
            raise PermanentJobError(f"unknown transcode job {job_id}")
        if row["state"] == "queued" and row["cancel_requested"]:
            # Cancelled while it waited for a retry: the claim never takes it, so end it here.
            await end_job(
                conn,
                job_id=job_id,
                asset_id=row["asset_id"],
                outcome="cancelled",
                reason="cancelled before it was retried",
            )
            return
    # Finished, cancelled, or held by a live worker: this delivery is a duplicate.
    logger.info(
        "transcode delivery ignored",
        extra={"job_id": str(job_id), "state": row["state"], "holder": row["worker_id"]},
    )


async def settle(
    run: Run,
    step: Callable[[], Awaitable[Any]],
    *,
    attempts: int,
    release: Callable[[str], Awaitable[bool]] | None,
) -> None:
    """Run a step of the job watched by its tracker, then turn its outcome into the job's and the queue's.

    Cancelled -> cancelled; permanent PipelineError (a refused or corrupt file, a setup the run cannot
    change) -> failed with its reason, and the message acknowledged: the uploader fixes it, no retry and
    no dead letter. Anything else -> `release` the job and re-raise for the queue's retry with backoff,
    or on the last attempt fail it and dead-letter the message. Internal errors are logged with the job
    id; the job itself only says that one happened. The work folder goes in every case.
    """
    try:
        await run_watched(run.tracker, step)
    except JobCancelled:
        await run.end("cancelled", reason="cancelled while running")
    except JobLost:
        logger.warning("transcode job lost to another worker", extra={"job_id": str(run.job_id)})
    except AssetSuperseded:
        logger.info("transcode stopped: its asset was superseded", extra={"job_id": str(run.job_id)})
        await run.end("cancelled", code="asset_superseded", reason=SUPERSEDED_REASON)
    except PipelineError as error:
        if error.transient:
            await _transient(run, error, code=error.code, attempts=attempts, release=release)
        else:
            logger.info(
                "transcode refused",
                extra={"job_id": str(run.job_id), "code": error.code, "error": _describe(error)},
            )
            await run.end("failed", code=error.code, reason=_describe(error))
    except Exception as error:
        logger.error(
            "transcode attempt failed",
            exc_info=error,
            extra={"job_id": str(run.job_id), "attempt": attempts},
        )
        await _transient(run, error, code="internal_error", attempts=attempts, release=release)
    finally:
        run.cleanup()


async def _transient(
    run: Run,
    error: Exception,
    *,
    code: str,
    attempts: int,
    release: Callable[[str], Awaitable[bool]] | None,
) -> None:
    """Retry with the queue's backoff, or on the last attempt fail and dead-letter with the reason."""
    final = attempts >= run.settings.queue_max_attempts
    if isinstance(error, PipelineError):
        reason = _describe(error)  # our own sentence for people
        public = f"gave up after {attempts} attempts: {reason}" if final else reason
    else:
        public = internal_reason(attempts, final=final)
    if final:
        if await run.end("failed", code=code, reason=public, dead=True):
            raise PermanentJobError(f"{code}: {_describe(error)}") from error
        return
    if release is None or await release(public):
        raise error
