"""Upload a packaged asset folder to storage: segments, init segments and images first, manifests last.

A player that fetches a manifest must find every file it names, so manifests go up only after all
the files they reference (media playlists before the master playlist and the MPD).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.infra.storage.base import Storage

CONTENT_TYPES: dict[str, str] = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".json": "application/json",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Segments and images never change under their name; manifests do (more rungs, new subtitles).
IMMUTABLE = "public, max-age=31536000, immutable"
MANIFEST_CACHE = "public, max-age=2"
_TOP_MANIFESTS = ("hls/master.m3u8", "dash/manifest.mpd")


def content_type_of(relative: str) -> str:
    """The Content-Type a player expects for a file of the asset."""
    return CONTENT_TYPES.get(Path(relative).suffix.lower(), DEFAULT_CONTENT_TYPE)


def is_manifest(relative: str) -> bool:
    """Playlists and MPDs (rewritten later), as opposed to media and images (written once)."""
    return Path(relative).suffix.lower() in (".m3u8", ".mpd")


def publish_order(paths: Iterable[str]) -> list[list[str]]:
    """Waves to upload one after the other: media and images, then media playlists, then top manifests."""
    files, playlists, top = [], [], []
    for path in sorted(set(paths)):
        if path in _TOP_MANIFESTS:
            top.append(path)
        elif is_manifest(path):
            playlists.append(path)
        else:
            files.append(path)
    return [wave for wave in (files, playlists, top) if wave]


def local_files(asset_dir: Path) -> list[str]:
    """Every file under the asset folder, as '/'-separated paths relative to it (hidden scratch skipped)."""
    found = []
    for path in asset_dir.rglob("*"):
        relative = path.relative_to(asset_dir)
        # '.work' and other dot folders are the packager's scratch (clear segments!): never published.
        if not any(part.startswith(".") for part in relative.parts) and path.is_file():
            found.append(relative.as_posix())
    return sorted(found)


async def publish_files(
    storage: Storage,
    asset_dir: Path,
    prefix: str,
    paths: Iterable[str],
    *,
    concurrency: int = 8,
) -> list[str]:
    """Upload the given asset-relative files under `prefix` (ending in '/'), in publish order; their keys."""
    if not prefix.endswith("/"):
        raise ValueError("the storage prefix must end with '/'")
    limit = asyncio.Semaphore(concurrency)
    keys: list[str] = []

    async def upload(relative: str) -> None:
        async with limit:
            cache = MANIFEST_CACHE if is_manifest(relative) else IMMUTABLE
            await storage.upload_file(
                prefix + relative,
                asset_dir / relative,
                content_type=content_type_of(relative),
                cache_control=cache,
            )

    for wave in publish_order(paths):
        # A wave finishes completely (or fails) before the next starts: no manifest before its media.
        await asyncio.gather(*(upload(relative) for relative in wave))
        keys.extend(prefix + relative for relative in wave)
    return keys
