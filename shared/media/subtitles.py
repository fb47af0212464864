r"""Subtitle files (SRT or WebVTT, told apart by content) checked and normalised to one clean WebVTT.

The point is the error report: a content manager gets every problem with its 1-based line number
("line 7: timestamp '00:00:0x,000' is not HH:MM:SS,mmm"), not the first exception of a library. Neither
the `srt` library nor webvtt-py reports line numbers (srt gives a character offset of the first chunk it
could not parse and silently skips much else), so this is a small parser of its own over both formats.

Rules, and why:
- UTF-8 (a BOM is fine) or UTF-16 with a BOM; anything else is an error naming the lines with bad bytes
  (guessing a legacy code page would publish mojibake).
- Cues separated by blank lines; a cue starting without one is an error at its line.
- Timestamps: SRT `HH:MM:SS,mmm` ('.' tolerated), WebVTT `[HH:]MM:SS.mmm`; end after start.
- Cues in time order (WebVTT requires it). SRT cues may not overlap: SRT cannot position cues, so
  players stack or drop them; an overlap of up to one frame (40 ms, rounding in subtitle tools) is
  repaired by ending the earlier cue sooner. WebVTT overlaps are valid (speakers and SDH sound cues shown
  together) and kept.
- Cue text keeps <i>, <b>, <u> (balanced), drops every other tag (<font>, <c>, <v>, ASS `{\an8}`), and
  escapes the rest, so no '-->' or markup survives inside text. NOTE, STYLE and REGION blocks are dropped.
"""

from __future__ import annotations

import codecs
import itertools
import re
from dataclasses import dataclass, field

MAX_SUBTITLE_BYTES = 2 * 1024 * 1024
MAX_ERRORS = 50
OVERLAP_REPAIR_MS = 40  # one frame at 25 fps

_NEWLINE = re.compile(r"\r\n|\r|\n")
# A line that is meant as a timing line (even a broken one): short tokens around the arrow, unlike text.
_TIMING_LIKE = re.compile(r"\s*\S{1,24}\s*-->\s*\S{1,24}(?:\s.*)?")
_SRT_TIME = re.compile(r"(\d{1,3}):([0-5]\d):([0-5]\d)[,.](\d{1,3})")
_VTT_TIME = re.compile(r"(?:(\d{2,3}):)?([0-5]\d):([0-5]\d)\.(\d{3})")
_VTT_SETTING = re.compile(
    r"vertical:(?:rl|lr)"
    r"|line:-?\d+(?:\.\d+)?%?(?:,(?:start|center|end))?"
    r"|position:\d+(?:\.\d+)?%(?:,(?:line-left|center|line-right))?"
    r"|size:\d+(?:\.\d+)?%"
    r"|align:(?:start|center|end|left|right)"
)
_MARKUP = re.compile(r"<[^<>\n]*>|\{\\[^{}\n]*\}")
_KEPT_TAG = re.compile(r"<(/?)([ibu])(?:\.[\w.-]*)?\s*>", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:amp|lt|gt|nbsp|lrm|rlm|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class SubtitleError:
    """One problem of a subtitle file, at a 1-based line."""

    line: int
    message: str


class SubtitleErrors(Exception):
    """The file cannot be used; `errors` lists every problem found (at most MAX_ERRORS)."""

    def __init__(self, errors: list[SubtitleError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"line {error.line}: {error.message}" for error in errors[:5]))


@dataclass
class _Cue:
    start: int  # milliseconds
    end: int
    text: str  # sanitised WebVTT cue text
    line: int  # of the timing line
    settings: str = ""


@dataclass
class _Report:
    errors: list[SubtitleError] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(SubtitleError(line, message))


Line = tuple[int, str]  # (1-based number, text)


def normalise_subtitles(data: bytes, *, filename: str | None = None) -> tuple[str, int]:
    """SRT or WebVTT bytes -> (normalised WebVTT text, cue count); SubtitleErrors when unusable."""
    del filename  # the format is judged by content; the name is only a hint a client may send
    if len(data) > MAX_SUBTITLE_BYTES:
        raise SubtitleErrors(
            [SubtitleError(1, f"the file has {len(data)} bytes; at most {MAX_SUBTITLE_BYTES} are accepted")]
        )
    text = _decode(data)
    lines = _NEWLINE.split(text)
    if not any(line.strip() for line in lines):
        raise SubtitleErrors([SubtitleError(1, "the file is empty")])
    report = _Report()
    numbered = [
        (number, _CONTROL.sub("", line.replace("\t", " ")).rstrip()) for number, line in enumerate(lines, 1)
    ]
    first = next(line for _, line in numbered if line.strip())
    if first.lstrip().startswith("WEBVTT"):
        cues = _parse_vtt(numbered, report)
    else:
        cues = _parse_srt(numbered, report)
    if not cues and not report.errors:
        report.add(1, "no cues found")
    if report.errors:
        raise SubtitleErrors(report.errors)
    return _render(cues), len(cues)


# --- decoding -----------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise SubtitleErrors(
                [SubtitleError(1, "the file starts like UTF-16 but is not valid UTF-16")]
            ) from None
    data = data.removeprefix(codecs.BOM_UTF8)
    nul_lines = [number for number, raw in enumerate(data.split(b"\n"), start=1) if b"\x00" in raw]
    if nul_lines:
        raise SubtitleErrors(
            [
                SubtitleError(
                    number, "contains NUL bytes (is it UTF-16 without a byte-order mark? save it as UTF-8)"
                )
                for number in nul_lines[:3]
            ]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    report = _Report()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as error:
            byte = raw[error.start]
            report.add(
                number,
                f"byte 0x{byte:02X} at column {error.start + 1} is not UTF-8; save the file as UTF-8",
            )
    raise SubtitleErrors(report.errors)


# --- blocks -------------------------------------------------------------------------------------------


def _blocks(lines: list[Line]) -> list[list[Line]]:
    """Runs of non-blank lines."""
    blocks: list[list[Line]] = []
    current: list[Line] = []
    for number, line in lines:
        if line.strip():
            current.append((number, line))
        elif current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def _is_timing(line: str) -> bool:
    return _TIMING_LIKE.fullmatch(line) is not None


def _split_cues(block: list[Line], report: _Report, *, srt: bool) -> list[list[Line]]:
    """Split a block where a further cue starts without the blank line before it (reported)."""
    timings = [index for index, (_, line) in enumerate(block) if _is_timing(line)]
    starts = [0]
    for position in timings[1:]:
        start = position
        # In SRT the number line above a timing line belongs to the new cue.
        if srt and position - 1 > timings[0] and block[position - 1][1].strip().isdigit():
            start = position - 1
        starts.append(start)
        report.add(block[start][0], "a new cue starts here without a blank line before it")
    return [block[a:b] for a, b in zip(starts, [*starts[1:], len(block)], strict=True)]


def _timing(number: int, line: str, report: _Report, *, srt: bool) -> tuple[int, int, str] | None:
    """(start ms, end ms, kept WebVTT settings) of a timing line, or None (reported)."""
    left, _, right = line.partition("-->")
    start_text = left.strip()
    end_text, _, rest = right.strip().partition(" ")
    start = _timestamp(number, start_text, report, srt=srt)
    end = _timestamp(number, end_text, report, srt=srt)
    if start is None or end is None:
        return None
    if end < start:
        report.add(number, f"the cue ends at {end_text}, before it starts at {start_text}")
        return None
    if end == start:
        report.add(number, f"the cue has no duration (it starts and ends at {start_text})")
        return None
    settings = "" if srt else " ".join(token for token in rest.split() if _VTT_SETTING.fullmatch(token))
    return start, end, settings


def _timestamp(number: int, text: str, report: _Report, *, srt: bool) -> int | None:
    pattern, form = (_SRT_TIME, "HH:MM:SS,mmm") if srt else (_VTT_TIME, "[HH:]MM:SS.mmm")
    match = pattern.fullmatch(text)
    if match is None:
        shown = text if text else "(nothing)"
        report.add(number, f"timestamp '{shown}' is not {form} (minutes and seconds 00-59)")
        return None
    hours, minutes, seconds, fraction = match.groups()
    millis = int(fraction.ljust(3, "0"))
    return ((int(hours or 0) * 60 + int(minutes)) * 60 + int(seconds)) * 1000 + millis


def _cue(lines: list[Line], report: _Report, *, srt: bool) -> _Cue | None:
    """One cue block: [identifier] timing line, text lines."""
    position = next((index for index, (_, line) in enumerate(lines) if _is_timing(line)), None)
    if position is None:
        number, line = lines[0]
        if srt and line.strip().isdigit():
            report.add(number, f"cue number {line.strip()} is not followed by a timing line")
        else:
            form = "00:00:01,000 --> 00:00:02,500" if srt else "00:00:01.000 --> 00:00:02.500"
            report.add(number, f"expected a timing line like '{form}', found '{_shorten(line)}'")
        return None
    if position > 1:
        report.add(
            lines[0][0], "unexpected text before the cue's timing line (a cue has one identifier line)"
        )
        return None
    number, line = lines[position]
    timing = _timing(number, line, report, srt=srt)
    text_lines = [text.strip() for _, text in lines[position + 1 :]]
    text = _sanitise("\n".join(text_lines))
    if not _MARKUP.sub("", text).strip():
        report.add(number, "the cue has no text")
        return None
    if timing is None:
        return None
    start, end, settings = timing
    return _Cue(start=start, end=end, text=text, line=number, settings=settings)


def _order(cues: list[_Cue], report: _Report, *, srt: bool) -> None:
    """Cues must be in time order; SRT cues may not overlap (up to a frame is repaired)."""
    for previous, cue in itertools.pairwise(cues):
        if cue.start < previous.start:
            report.add(
                cue.line,
                f"the cue starts at {_clock(cue.start)}, before the cue of line {previous.line} "
                f"({_clock(previous.start)}); cues must be in time order",
            )
        elif srt and cue.start < previous.end:
            if previous.end - cue.start <= OVERLAP_REPAIR_MS and cue.start > previous.start:
                previous.end = cue.start
            else:
                report.add(
                    cue.line,
                    f"the cue starts at {_clock(cue.start)} while the cue of line {previous.line} runs "
                    f"until {_clock(previous.end)}; SRT cues may not overlap",
                )


def _parse_srt(lines: list[Line], report: _Report) -> list[_Cue]:
    cues: list[_Cue] = []
    for block in _blocks(lines):
        for part in _split_cues(block, report, srt=True):
            cue = _cue(part, report, srt=True)
            if cue is not None:
                cues.append(cue)
    _order(cues, report, srt=True)
    return cues


def _parse_vtt(lines: list[Line], report: _Report) -> list[_Cue]:
    blocks = _blocks(lines)
    header = blocks[0]
    number, signature = header[0]
    if not re.fullmatch(r"WEBVTT(?:[ \t].*)?", signature.lstrip()):
        report.add(number, "a WebVTT file starts with 'WEBVTT' alone on its line (or followed by a space)")
    # The header runs to the first blank line; a timing line inside it means the blank line is missing.
    timing = next((index for index, (_, line) in enumerate(header) if _is_timing(line)), None)
    rest = blocks[1:]
    if timing is not None:
        report.add(header[timing][0], "the header must be followed by a blank line before the first cue")
        rest = [header[timing:], *rest]
    cues: list[_Cue] = []
    for block in rest:
        first = block[0][1].strip()
        if re.match(r"(NOTE|STYLE|REGION)(\s|$)", first) and not _is_timing(first):
            continue
        for part in _split_cues(block, report, srt=False):
            cue = _cue(part, report, srt=False)
            if cue is not None:
                cues.append(cue)
    _order(cues, report, srt=False)
    return cues


# --- text ---------------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _ENTITY.finditer(text):
        out.append(_escape_plain(text[position : match.start()]))
        out.append(match.group())
        position = match.end()
    out.append(_escape_plain(text[position:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sanitise(text: str) -> str:
    """Keep balanced <i>, <b>, <u>; drop other markup; escape the rest."""
    out: list[str] = []
    open_tags: list[str] = []
    position = 0
    for match in _MARKUP.finditer(text):
        out.append(_escape(text[position : match.start()]))
        position = match.end()
        kept = _KEPT_TAG.fullmatch(match.group())
        if kept is None:
            continue
        closing, tag = kept.group(1) == "/", kept.group(2).lower()
        if not closing:
            open_tags.append(tag)
            out.append(f"<{tag}>")
        elif tag in open_tags:
            while open_tags:
                inner = open_tags.pop()
                out.append(f"</{inner}>")
                if inner == tag:
                    break
    out.append(_escape(text[position:]))
    out.extend(f"</{tag}>" for tag in reversed(open_tags))
    return "".join(out).strip()


def _shorten(text: str, limit: int = 40) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clock(millis: int) -> str:
    """HH:MM:SS.mmm."""
    seconds, ms = divmod(millis, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}"


def _render(cues: list[_Cue]) -> str:
    parts = ["WEBVTT", ""]
    for index, cue in enumerate(cues, start=1):
        settings = f" {cue.settings}" if cue.settings else ""
        parts += [str(index), f"{_clock(cue.start)} --> {_clock(cue.end)}{settings}", cue.text, ""]
    return "\n".join(parts)
