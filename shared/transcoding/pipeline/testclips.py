"""Generated clips (test pattern + tone) for the demo catalog, the tests and the benchmarks."""

from __future__ import annotations

import subprocess
from pathlib import Path

from shared.infra.media import SAFE_GLOBAL_ARGS

# Language, tone frequency: each audio track gets its own pitch so the tracks are told apart by ear.
_TONES = {"eng": 440, "fra": 660, "deu": 550, "spa": 880, "und": 330}


def generate_clip(
    binary: str,
    path: Path,
    *,
    seconds: float = 10.0,
    width: int = 1280,
    height: int = 720,
    frame_rate: float = 25.0,
    audio_languages: tuple[str, ...] = ("eng",),
    container: str = "mp4",
    video_codec: str = "libx264",
    video_bitrate: str | None = None,
    timeout: float = 600.0,
) -> Path:
    """Write a testsrc2 + sine clip with one audio track per language (blocking)."""
    inputs = ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={frame_rate}:duration={seconds}"]
    maps = ["-map", "0:v"]
    metadata: list[str] = []
    for number, language in enumerate(audio_languages, start=1):
        tone = _TONES.get(language, 500 + 50 * number)
        inputs += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=48000:duration={seconds}"]
        maps += ["-map", f"{number}:a"]
        metadata += [f"-metadata:s:a:{number - 1}", f"language={language}"]
    video = ["-c:v", video_codec, "-pix_fmt", "yuv420p"]
    if video_codec == "libx264":
        video += ["-preset", "ultrafast"]
    if video_bitrate:
        video += ["-b:v", video_bitrate]
    audio = ["-c:a", "aac", "-b:a", "128k", "-ac", "2"] if audio_languages else []
    argv = [
        binary,
        *SAFE_GLOBAL_ARGS,
        "-y",
        *inputs,
        *maps,
        *video,
        *audio,
        *metadata,
        "-f",
        container,
        str(path),
    ]
    subprocess.run(argv, check=True, timeout=timeout, stdin=subprocess.DEVNULL, capture_output=True)
    return path
