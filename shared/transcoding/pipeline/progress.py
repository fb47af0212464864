"""Run ffmpeg with `-progress pipe:1`: live fraction + ETA, bounded in time, never left running."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections import deque
from dataclasses import dataclass

from shared.transcoding.pipeline.model import PipelineError, ProgressCallback

PROGRESS_ARGS = ("-progress", "pipe:1", "-stats_period", "0.5")
STDERR_TAIL_BYTES = 8192
REPORT_CHARS = 800
# Failures of the machine rather than of the input: a retry on another attempt may succeed.
TRANSIENT_STDERR = re.compile(
    r"No space left on device|Cannot allocate memory|Resource temporarily unavailable|Too many open files|"
    r"Input/output error|Broken pipe|Stale file handle",
    re.IGNORECASE,
)


@dataclass
class ProgressState:
    """What ffmpeg's progress blocks said so far."""

    duration: float
    started: float
    out_seconds: float = 0.0
    speed: float | None = None
    fraction: float = 0.0
    ended: bool = False

    def update(self, block: dict[str, str]) -> None:
        """Take one `progress=...` block (out_time_us, speed, progress) into account."""
        out_us = _number(block.get("out_time_us")) or _number(block.get("out_time_ms"))
        if out_us is not None and out_us >= 0:
            self.out_seconds = out_us / 1_000_000
        speed = _number(block.get("speed", "").rstrip("x"))
        self.speed = speed if speed and speed > 0 else None
        self.ended = block.get("progress") == "end"
        fraction = (
            1.0 if self.ended else min(self.out_seconds / self.duration, 1.0) if self.duration > 0 else 0.0
        )
        self.fraction = max(self.fraction, fraction)  # never goes back

    def eta(self, now: float) -> float | None:
        """Seconds left: from ffmpeg's speed, else from the elapsed time and the fraction done."""
        if self.ended or self.fraction >= 1.0:
            return 0.0
        if self.speed:
            return max(self.duration - self.out_seconds, 0.0) / self.speed
        elapsed = now - self.started
        if self.fraction > 0.01 and elapsed > 0:
            return elapsed * (1 - self.fraction) / self.fraction
        return None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


async def run_with_progress(
    argv: list[str],
    *,
    duration: float,
    timeout: float,  # noqa: ASYNC109 - on expiry the child must be killed, not orphaned
    on_progress: ProgressCallback | None = None,
    interval: float = 1.0,
    what: str = "encoding",
) -> None:
    """Run an ffmpeg argv, reporting progress at most every `interval` s; kill it on timeout or cancel."""
    full = [argv[0], *PROGRESS_ARGS, *argv[1:]]
    try:
        process = await asyncio.create_subprocess_exec(
            *full,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as error:
        raise PipelineError(f"ffmpeg could not be started: {error}", code="encode_failed") from error
    tail: deque[bytes] = deque()
    state = ProgressState(duration=duration, started=time.monotonic())

    async def read_stderr() -> None:
        assert process.stderr is not None
        size = 0
        while chunk := await process.stderr.read(4096):
            tail.append(chunk)
            size += len(chunk)
            while size > STDERR_TAIL_BYTES and len(tail) > 1:
                size -= len(tail.popleft())

    async def read_progress() -> None:
        assert process.stdout is not None
        block: dict[str, str] = {}
        reported = 0.0
        while line := await process.stdout.readline():
            key, _, value = line.decode(errors="replace").strip().partition("=")
            block[key] = value
            if key != "progress":
                continue
            state.update(block)
            block = {}
            now = time.monotonic()
            if on_progress is not None and (state.ended or now - reported >= interval):
                reported = now
                await on_progress(state.fraction, state.eta(now))

    async def drive() -> int:
        stderr_task = asyncio.create_task(read_stderr())
        try:
            await read_progress()
            returncode = await process.wait()
            await stderr_task
            return returncode
        finally:
            stderr_task.cancel()

    try:
        returncode = await asyncio.wait_for(drive(), timeout)
    except TimeoutError:
        await _kill(process)
        raise PipelineError(
            f"ffmpeg took longer than {timeout:g} s and was stopped ({what}).",
            code="encode_timeout",
            # The same file would time out again: retrying is the retry storm a slow hostile input wants.
            transient=False,
        ) from None
    except BaseException:
        # Cancelled, or the progress callback raised: the child must not outlive this call.
        await _kill(process)
        raise
    if returncode != 0:
        raise failure(returncode, b"".join(tail).decode(errors="replace"), what=what)


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    # Shielded: reaping must finish even when this is reached through a (second) cancellation.
    await asyncio.shield(process.wait())


def failure(returncode: int, stderr: str, *, what: str = "encoding") -> PipelineError:
    """The PipelineError for a failed ffmpeg run: killed by a signal or a machine fault may be retried."""
    text = stderr.strip()[-REPORT_CHARS:]
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return PipelineError(
            f"ffmpeg was killed by {name} ({what}){': ' + text if text else ''}",
            code="encode_failed",
            transient=True,
        )
    transient = bool(TRANSIENT_STDERR.search(text))
    return PipelineError(
        f"ffmpeg failed with exit code {returncode} ({what}): {text}",
        code="encode_failed",
        transient=transient,
    )
