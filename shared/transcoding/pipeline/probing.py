"""Safe probing of an uploaded source: judged by its content with PyAV, bounded, refused with a reason."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from shared.infra.media import ALLOWED_DEMUXERS, MediaToolError, allowed_demuxer
from shared.settings import Settings
from shared.transcoding.pipeline.model import AudioTrack, PipelineError, SourceInfo

HEAD_BYTES = 4096
START_PACKET_BUDGET = 20000  # packets read to find the first frame of every kept stream
END_PACKET_BUDGET = 20000  # packets read from near the end up to EOF
END_WINDOWS_SECONDS = (3.0, 15.0, 60.0)  # the end check seeks this far before the end (long GOPs: further)
END_DECODE_ERRORS = 8  # undecodable packets tolerated after a seek (leading frames of an open GOP)

ACCEPTED = "MP4/MOV, Matroska/WebM, MPEG-TS, AVI, MXF, FLV, or WAV/MP3/FLAC/Ogg audio"

LANGUAGES = {
    "eng": "English",
    "fra": "French",
    "fre": "French",
    "deu": "German",
    "ger": "German",
    "spa": "Spanish",
    "ita": "Italian",
    "por": "Portuguese",
    "nld": "Dutch",
    "dut": "Dutch",
    "swe": "Swedish",
    "nor": "Norwegian",
    "dan": "Danish",
    "fin": "Finnish",
    "pol": "Polish",
    "ces": "Czech",
    "cze": "Czech",
    "hun": "Hungarian",
    "ell": "Greek",
    "gre": "Greek",
    "tur": "Turkish",
    "rus": "Russian",
    "ukr": "Ukrainian",
    "ara": "Arabic",
    "heb": "Hebrew",
    "hin": "Hindi",
    "jpn": "Japanese",
    "kor": "Korean",
    "zho": "Chinese",
    "chi": "Chinese",
    "tha": "Thai",
    "vie": "Vietnamese",
    "ind": "Indonesian",
    "cat": "Catalan",
    "ron": "Romanian",
    "rum": "Romanian",
    "und": "Unknown language",
}


def refuse(code: str, message: str) -> PipelineError:
    """A permanent refusal of the source (retrying cannot help)."""
    return PipelineError(message, code=code, transient=False)


async def inspect_source(path: Path, *, settings: Settings) -> SourceInfo:
    """Probe a local source by content and check it against the media_* limits, or refuse it with a reason."""
    timeout = settings.media_probe_timeout_seconds
    deadline = time.monotonic() + timeout
    try:
        # The thread also watches the deadline itself; this outer bound is for a call stuck inside libav.
        return await asyncio.wait_for(asyncio.to_thread(_inspect, path, settings, deadline), timeout + 5)
    except TimeoutError:
        raise _too_slow(timeout) from None


def _too_slow(timeout: float) -> PipelineError:
    return refuse(
        "corrupt_media",
        f"The file could not be inspected within {timeout:g} s; it is damaged or pathological.",
    )


def sniff_refusal(head: bytes) -> str | None:
    """What the first bytes show the file to be when that is certainly not a video ('an HLS playlist'...)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG image"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head.startswith(b"BM") and len(head) > 14:
        return "a BMP image"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP image"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
        return "an AVIF/HEIF image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith((b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "an archive"
    text = _as_text(head)
    if text is None:
        return None
    start = text.lstrip().lower()
    if start.startswith("#extm3u") or "#ext-x-" in start:
        return "an HLS playlist (it would make the transcoder open other files or URLs)"
    if start.startswith("ffconcat") or re.search(r"^\s*file\s+\S", start, re.MULTILINE):
        return "an ffmpeg concat list (it would make the transcoder open other files or URLs)"
    if start.startswith(("<?xml", "<mpd", "<smil")):
        return "an XML document (perhaps a DASH manifest)"
    if start.startswith("[playlist]") or start.startswith("#extinf"):
        return "a playlist"
    if start.startswith("webvtt") or re.match(r"\d+\s*\n\d\d:\d\d:\d\d[,.]\d{3} -->", start):
        return "a subtitle file (upload it as a subtitle)"
    if start.startswith("v=0"):
        return "an SDP session description"
    return "a text file"


def _as_text(head: bytes) -> str | None:
    """The head as text when it has no NUL byte and is UTF-8 (a multi-byte char cut at the end is ok)."""
    if not head or b"\x00" in head:
        return None
    body = head.removeprefix(b"\xef\xbb\xbf")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(body) - 4:
            return None
        text = body[: error.start].decode("utf-8")
    printable = sum(1 for char in text if char.isprintable() or char in "\r\n\t")
    return text if printable >= 0.95 * max(len(text), 1) else None


def container_signature(head: bytes) -> str | None:
    """The container a file's magic bytes announce (used to tell 'damaged' from 'not media at all')."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"WAVE"):
        return "AVI/WAV"
    if head.startswith(b"FLV"):
        return "FLV"
    if head.startswith(b"\x06\x0e\x2b\x34"):
        return "MXF"
    if head.startswith((b"OggS", b"fLaC", b"ID3")):
        return "Ogg/FLAC/MP3"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "MPEG-TS"
    return None


def _inspect(path: Path, settings: Settings, deadline: float) -> SourceInfo:
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            head = file.read(HEAD_BYTES)
    except FileNotFoundError:
        # Our fault, not the upload's (the download step lost it): another attempt downloads it again.
        raise PipelineError(
            "The source file is missing from the work directory.", code="source_missing", transient=True
        ) from None
    if size == 0:
        raise refuse("empty_file", "The file is empty (0 bytes).")
    if size > settings.media_max_upload_bytes:
        raise refuse(
            "file_too_large",
            f"The file is {size / 1024**3:.2f} GiB; "
            f"the limit is {settings.media_max_upload_bytes / 1024**3:.2f} GiB.",
        )
    what = sniff_refusal(head)
    if what:
        raise refuse("not_media", f"The file is {what}, not a video or audio file.")
    container = _open(path, head, settings)
    with container:
        return _check(container, path, size, settings, deadline)


def _open(path: Path, head: bytes, settings: Settings) -> Any:
    import av

    # format_whitelist: libav refuses a file its probe recognises as anything else (hls, concat, image2,
    # tty...), so playlists and lists naming other files never reach a demuxer that would open them;
    # protocol_whitelist: nothing but the local file can be opened anyway.
    options = {"protocol_whitelist": "file", "format_whitelist": ",".join(ALLOWED_DEMUXERS)}
    timeout = settings.media_probe_timeout_seconds
    try:
        return av.open(str(path.resolve()), mode="r", options=options, timeout=(timeout, timeout))
    except av.ArgumentError:  # recognised by libav, but as a format outside the allow-list
        raise refuse(
            "unsupported_container", f"The file's container format is not accepted; upload {ACCEPTED}."
        ) from None
    except av.InvalidDataError:
        kind = container_signature(head)
        if kind:
            raise refuse(
                "corrupt_media", f"The file looks like {kind} but cannot be read: it is truncated or damaged."
            ) from None
        raise refuse("not_media", "The file is not a video or audio file that can be read.") from None
    except (av.FFmpegError, OSError) as error:
        raise refuse("corrupt_media", f"The file cannot be read: {error}.") from None


def _check(container: Any, path: Path, size: int, settings: Settings, deadline: float) -> SourceInfo:
    try:
        demuxer = allowed_demuxer(container.format.name)
    except MediaToolError:
        raise refuse(
            "unsupported_container", f"The file's container format is not accepted; upload {ACCEPTED}."
        ) from None
    streams = list(container.streams)
    if len(streams) > settings.media_max_streams:
        raise refuse(
            "too_many_streams",
            f"The file has {len(streams)} streams; at most {settings.media_max_streams} are accepted.",
        )
    video = _main_video(container)
    audio_streams = [stream for stream in container.streams.audio if stream.codec_context.sample_rate]
    if video is None and not audio_streams:
        raise refuse("no_video_or_audio", "The file has neither a video nor an audio stream.")
    width = height = None
    frame_rate = None
    if video is not None:
        width, height = int(video.codec_context.width or 0), int(video.codec_context.height or 0)
        if width <= 0 or height <= 0:
            raise refuse("corrupt_media", "The video stream has no picture size: the file is damaged.")
        _check_resolution(width, height, settings)
        frame_rate = _frame_rate(video)
        if frame_rate is None:
            raise refuse("corrupt_media", "The video stream's frame rate cannot be determined.")
        if frame_rate > settings.media_max_frame_rate:
            raise refuse(
                "frame_rate_too_high",
                f"The video runs at {frame_rate:.3g} fps; "
                f"at most {settings.media_max_frame_rate:g} fps is accepted.",
            )
    duration = _duration(container)
    if duration is None or duration <= 0:
        raise refuse(
            "corrupt_media", "The file's duration cannot be determined: it is damaged or incomplete."
        )
    if duration > settings.media_max_duration_seconds:
        raise refuse(
            "too_long",
            f"The file lasts {_clock(duration)}; "
            f"at most {_clock(settings.media_max_duration_seconds)} is accepted.",
        )
    kept = [stream for stream in (video, *audio_streams) if stream is not None]
    first_frame = _decode_start(container, kept, deadline, settings)
    _decode_end(container, kept, duration, deadline, settings)
    if video is not None and width and height:
        width, height = _display_size(width, height, video, first_frame)
        _check_resolution(width, height, settings)
    return SourceInfo(
        path=path,
        demuxer=demuxer,
        duration_seconds=duration,
        size_bytes=size,
        width=width,
        height=height,
        frame_rate=frame_rate,
        video_stream_index=video.index if video is not None else None,
        audio=audio_tracks(audio_streams),
    )


def _main_video(container: Any) -> Any:
    """The default (else first) video stream that is a moving picture, not cover art."""
    import av

    candidates = [
        stream
        for stream in container.streams.video
        if not stream.disposition & (av.stream.Disposition.attached_pic | av.stream.Disposition.still_image)
    ]
    defaults = [stream for stream in candidates if stream.disposition & av.stream.Disposition.default]
    return (defaults or candidates or [None])[0]


def _check_resolution(width: int, height: int, settings: Settings) -> None:
    # Orientation-agnostic: a portrait 2160x3840 video is as large as a landscape 3840x2160 one.
    long_side, short_side = max(width, height), min(width, height)
    if long_side > settings.media_max_width or short_side > settings.media_max_height:
        raise refuse(
            "resolution_too_high",
            f"The video is {width}x{height}; at most {settings.media_max_width}x{settings.media_max_height} "
            "is accepted.",
        )


def _frame_rate(video: Any) -> float | None:
    for rate in (video.average_rate, video.guessed_rate, video.base_rate):
        if rate and float(rate) > 0:
            return float(rate)
    return None


def _duration(container: Any) -> float | None:
    if container.duration and container.duration > 0:
        return float(container.duration) / 1_000_000
    ends = [
        float(stream.duration * stream.time_base)
        for stream in container.streams
        if stream.duration and stream.time_base
    ]
    return max(ends) if ends else None


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _watch(deadline: float, settings: Settings) -> None:
    if time.monotonic() > deadline:
        raise _too_slow(settings.media_probe_timeout_seconds)


def _decode_start(container: Any, kept: list[Any], deadline: float, settings: Settings) -> Any:
    """Decode the first frame of every kept stream; return the video's first frame (or None)."""
    import av

    wanted = {stream.index for stream in kept}
    first: dict[int, Any] = {}
    packets = 0
    try:
        for packet in container.demux(*kept):
            _watch(deadline, settings)
            packets += 1
            index = packet.stream.index
            if index not in first:
                frames = packet.decode()
                if frames:
                    first[index] = frames[0]
                    if wanted <= first.keys():
                        break
            if packets >= START_PACKET_BUDGET:
                break
    except av.FFmpegError as error:
        raise refuse("corrupt_media", f"The start of the file cannot be decoded: {error}.") from None
    missing = sorted(wanted - first.keys())
    if missing:
        raise refuse(
            "corrupt_media",
            f"Stream {missing[0]} cannot be decoded at the start of the file: it is damaged or unsupported.",
        )
    video = next((stream for stream in kept if stream.type == "video"), None)
    return first[video.index] if video is not None else None


def _decode_end(
    container: Any, kept: list[Any], duration: float, deadline: float, settings: Settings
) -> None:
    """Seek near the announced end, decode a frame there and read on to EOF: a truncated file fails."""
    # Half a second plus 0.2 % (14 s of a two-hour film): room for rounding and estimated durations.
    tolerance = 0.5 + 0.002 * duration
    other_decoded = False
    for window in END_WINDOWS_SECONDS:
        main_decoded, any_decoded, end = _scan_end(container, kept, duration - window, deadline, settings)
        if end is not None and end < duration - tolerance:
            reached = f" (its data ends at {_clock(end)})" if end > 0 else ""
            raise refuse(
                "corrupt_media",
                f"The file announces {_clock(duration)} but ends early{reached}: it is truncated.",
            )
        if main_decoded:
            return
        other_decoded = other_decoded or any_decoded
        if window >= duration:
            break
        # Nothing of the video decoded: the seek landed after the last keyframe (a long GOP); go further back.
    if not other_decoded:
        raise refuse("corrupt_media", "The end of the file cannot be decoded: it is truncated or damaged.")


def _scan_end(
    container: Any, kept: list[Any], target: float, deadline: float, settings: Settings
) -> tuple[bool, bool, float | None]:
    """From a keyframe before `target` to EOF: (main stream decoded, any decoded, where the data ends)."""
    import av

    main = kept[0]
    start = float(container.start_time) / 1_000_000 if container.start_time else 0.0
    try:
        container.seek(int((start + max(target, 0.0)) * 1_000_000), backward=True, any_frame=False)
    except av.FFmpegError:
        return False, False, 0.0
    decoded: set[int] = set()
    errors = 0
    end: float | None = 0.0
    packets = 0
    try:
        for packet in container.demux(*kept):
            _watch(deadline, settings)
            packets += 1
            if packet.pts is not None and packet.time_base and end is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base) - start)
            if packet.stream.index not in decoded and errors <= END_DECODE_ERRORS:
                try:
                    if packet.decode():
                        decoded.add(packet.stream.index)
                except av.InvalidDataError:
                    errors += 1
            if packets >= END_PACKET_BUDGET:
                end = None  # a very dense end region: where it ends stays unknown, not held against it
                break
    except av.FFmpegError:
        pass  # a read error after the seek: judged by what was reached
    return main.index in decoded, bool(decoded), end


def _display_size(width: int, height: int, video: Any, frame: Any) -> tuple[int, int]:
    """The size the picture is shown at: non-square pixels stretched, a 90/270 degree rotation applied."""
    aspect = video.sample_aspect_ratio or video.codec_context.sample_aspect_ratio
    if aspect and aspect.numerator > 0 and aspect.denominator > 0 and aspect != 1:
        width = max(2, round(width * float(aspect)))
    if frame is not None and abs(int(getattr(frame, "rotation", 0) or 0)) % 180 == 90:
        width, height = height, width
    return width, height


def audio_tracks(streams: list[Any]) -> list[AudioTrack]:
    """One AudioTrack per audio stream: unique path-safe names, languages, labels, one default."""
    import av

    tracks: list[AudioTrack] = []
    seen: dict[str, int] = {}
    default_index = next(
        (stream.index for stream in streams if stream.disposition & av.stream.Disposition.default),
        streams[0].index if streams else None,
    )
    for stream in streams:
        language = _language(stream.metadata.get("language"))
        seen[language] = seen.get(language, 0) + 1
        count = seen[language]
        name = f"audio_{language}" if count == 1 else f"audio_{language}_{count}"
        title = _label_text(stream.metadata.get("title"))
        label = LANGUAGES.get(language) or title or language
        if language == "und" and title:
            label = title
        if count > 1:
            label = f"{label} ({count})"
        tracks.append(
            AudioTrack(
                stream_index=stream.index,
                name=name,
                language=language,
                label=label,
                channels=int(stream.codec_context.channels or 2),
                is_default=stream.index == default_index,
            )
        )
    return tracks


def _language(value: str | None) -> str:
    code = (value or "").strip().lower()
    return code if re.fullmatch(r"[a-z]{3}", code) else "und"


def _label_text(value: str | None) -> str | None:
    """A stream title safe to show and to put in a manifest attribute (no quotes or control characters)."""
    if not value:
        return None
    cleaned = "".join(char for char in value if char.isprintable() and char not in "\"'<>&,\\")
    return cleaned.strip()[:64] or None
