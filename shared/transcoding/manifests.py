"""The media.manifests job: rewrite a content's published manifests with its current subtitles.

No segment is downloaded or re-packaged: the packaged facts stored on the asset (media_assets.packaging)
and the subtitle files are all write_manifests needs. The asset's manifest lock orders this against a
transcode publishing more rungs into the same asset.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from typing import Any

from shared.transcoding import keys as content_keys
from shared.transcoding import repository

logger = logging.getLogger("cinema.transcoding")


async def refresh_manifests(*, title_id: uuid.UUID, episode_id: uuid.UUID | None) -> int:
    """Rewrite the manifests of every playable/ready main asset of the content; how many were rewritten."""
    from shared.infra.db import get_pool
    from shared.infra.storage import get_storage
    from shared.settings import get_settings
    from shared.transcoding.orchestrate import download_subtitles, packaged_from_json, work_root
    from shared.transcoding.pipeline.package import write_manifests
    from shared.transcoding.publish import publish_files

    settings = get_settings()
    storage = await get_storage()
    pool = await get_pool()
    async with pool.connection() as conn:
        assets = await repository.publishable_assets(conn, title_id=title_id, episode_id=episode_id)
    rewritten = 0
    for listed in assets:
        work = work_root(settings)
        try:
            async with pool.connection() as conn, conn.transaction():
                await repository.lock_asset_manifests(conn, listed["id"])
                asset = await repository.get_asset(conn, listed["id"])  # fresh: a transcode may have grown it
                renditions = packaged_from_json(asset["packaging"] if asset else None)
                if asset is None or asset["state"] not in ("playable", "ready") or not renditions:
                    continue
                try:
                    keys = await content_keys.load_keys(conn, asset_id=asset["id"], settings=settings)
                except content_keys.KeyUnavailable:
                    # A retry cannot help (the master key is configuration): skip this asset, loudly.
                    logger.error(
                        "manifest refresh skipped: the asset's keys do not unwrap",
                        exc_info=True,
                        extra={"asset_id": str(asset["id"])},
                    )
                    continue
                subtitles = await download_subtitles(
                    conn, storage, title_id=title_id, episode_id=episode_id, folder=work / "subtitles"
                )
                asset_dir = work / "asset"
                asset_dir.mkdir()
                written = write_manifests(
                    asset_dir, renditions=renditions, subtitles=subtitles, keys=keys, settings=settings
                )
                await publish_files(storage, asset_dir, str(asset["storage_prefix"]), written)
                rewritten += 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
    logger.info(
        "manifests refreshed",
        extra={"title_id": str(title_id), "episode_id": str(episode_id), "assets": rewritten},
    )
    return rewritten


def parse_content(payload: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID | None]:
    """(title_id, episode_id) of a media.manifests payload; ValueError when malformed."""
    title_id = uuid.UUID(str(payload["title_id"]))
    episode = payload.get("episode_id")
    return title_id, uuid.UUID(str(episode)) if episode else None
