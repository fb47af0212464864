"""Writing an asset's manifests (HLS master + subtitle playlists, DASH MPD) and listing its files.

Asset layout (paths relative to the asset root; the manifests are the *.m3u8 and *.mpd files):
  hls/master.m3u8                    master playlist                                  (manifest, last)
  hls/<rendition>/playlist.m3u8      media or I-frames-only playlist                  (manifest)
  hls/<rendition>/init.mp4, seg-00001.m4s ...   clear init, AES-128 segments
  hls/subtitles/<track>.m3u8         one-segment subtitle playlist                    (manifest)
  hls/subtitles/<track>-<sha8>.vtt   its WebVTT, named by content (cached immutable like segments)
  dash/manifest.mpd                  the MPD                                          (manifest, last)
  dash/<rendition>/init.mp4, seg-00001.m4s ...  CENC init and segments
  dash/subtitles/<track>-<sha8>.vtt  sidecar WebVTT (a copy, so each tree is self-contained for URL signing)
  hls/keys/hls.key                   never written: the playback layer answers it per session
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from shared.settings import Settings
from shared.transcoding.pipeline import dash, hls
from shared.transcoding.pipeline.model import ContentKeys, PackagedRendition, SubtitleTrack

HLS_MASTER = "hls/master.m3u8"
DASH_MANIFEST = "dash/manifest.mpd"


def write_manifests(
    asset_dir: Path,
    *,
    renditions: list[PackagedRendition],
    subtitles: list[SubtitleTrack],
    keys: ContentKeys,
    settings: Settings,
) -> list[str]:
    """(Re)write the HLS master, subtitle playlists and DASH MPD; returns the relative paths written."""
    if not renditions:
        raise ValueError("write_manifests needs at least one packaged rendition")
    by_name = {rendition.name: rendition for rendition in renditions}  # a later duplicate wins
    current = list(by_name.values())
    duration = dash.presentation_duration(current)
    written: list[str] = []
    hls_subtitles: list[tuple[SubtitleTrack, str]] = []
    dash_subtitles: list[tuple[SubtitleTrack, str]] = []
    for folder in ("hls/subtitles", "dash/subtitles"):  # removed tracks must not linger
        shutil.rmtree(asset_dir / folder, ignore_errors=True)
    for track, stem in zip(subtitles, subtitle_stems(subtitles), strict=True):
        # Published files are cached as immutable: a changed track must get a new name, so the name
        # carries a digest of the content (the playlists and the MPD, re-fetched often, point at it).
        vtt = f"{stem}-{_digest(track.vtt_path)}.vtt"
        for folder in ("hls/subtitles", "dash/subtitles"):
            target = asset_dir / folder / vtt
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(track.vtt_path, target)
            written.append(f"{folder}/{vtt}")
        _write(
            asset_dir / "hls/subtitles" / f"{stem}.m3u8",
            hls.subtitle_playlist(vtt, duration=duration),
        )
        written.append(f"hls/subtitles/{stem}.m3u8")
        hls_subtitles.append((track, f"subtitles/{stem}.m3u8"))
        dash_subtitles.append((track, f"subtitles/{vtt}"))
    _write(asset_dir / HLS_MASTER, hls.master_playlist(current, hls_subtitles))
    _write(asset_dir / DASH_MANIFEST, dash.build_mpd(current, dash_subtitles, keys))
    return [*written, HLS_MASTER, DASH_MANIFEST]


def subtitle_stems(subtitles: Sequence[SubtitleTrack]) -> list[str]:
    """Path-safe, unique file stems: 'en', 'en_forced', 'pt-BR_sdh' (numbered if still repeated)."""
    stems: list[str] = []
    for track in subtitles:
        language = "".join(c for c in track.language if c.isalnum() or c == "-") or "und"
        stem = language + ("_forced" if track.forced else "") + ("_sdh" if track.sdh else "")
        candidate, number = stem, 1
        while candidate in stems:
            number += 1
            candidate = f"{stem}_{number}"
        stems.append(candidate)
    return stems


def _digest(path: Path) -> str:
    """The first 8 hex digits of the file's SHA-256."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:8]


def _write(path: Path, text: str) -> None:
    """Write through a temporary name and rename, so a reader never sees half a manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
