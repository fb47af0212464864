"""A running job's pulse: progress, ETA and heartbeat written every few seconds, cancellation noticed.

Pipeline steps report progress into memory (cheap, as often as they like); one ticker task writes it
in its own short transaction at most every `interval` seconds, refreshing heartbeat_at even while a
step reports nothing (an upload, a packaging run). Each tick also reads cancel_requested: when it is
set, or the job is no longer ours (the watchdog gave it to another worker), the work task is cancelled,
which kills a running ffmpeg.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from shared.transcoding import repository

logger = logging.getLogger("cinema.transcoding")

DEFAULT_INTERVAL = 2.0


class JobCancelled(Exception):
    """A content manager cancelled the job while it ran."""


class JobLost(Exception):
    """The job is no longer this worker's (re-queued by the watchdog, then claimed elsewhere)."""


class Tracker:
    """Progress of one job run, mapped from step fractions onto the job's 0..100 scale, with a job ETA.

    The ETA is for the whole job: the current step's own estimate (ffmpeg's, from its speed) plus the
    weight of the stages after it at the rate this run has been moving through the scale so far. Jumps
    over stages that are not run (a resumed job skips phase 1) do not count as speed.
    """

    def __init__(
        self,
        job_id: uuid.UUID,
        *,
        worker_id: str,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_id = job_id
        self.worker_id = worker_id
        self.interval = DEFAULT_INTERVAL if interval is None else interval
        self.progress = 0.0
        self.eta_seconds: int | None = None
        self.detail: str | None = None
        self.stop_reason: type[Exception] | None = None
        self._span = (0.0, 100.0)
        self._dirty = True
        self.paused = False
        self._writing = asyncio.Lock()
        self._clock = clock
        self._started: float | None = None  # when the first stage began
        self._earned = 0.0  # progress points actually worked through (not skipped) since then

    async def pause(self) -> None:
        """Stop ticking (the job is being finished or handed on); waits out a write in flight."""
        async with self._writing:
            self.paused = True

    def stage(self, start: float, end: float, detail: str | None = None) -> None:
        """Following step fractions map onto start..end of the job's progress."""
        if self._started is None:
            self._started = self._clock()
        else:
            # The previous stage ran to its end (or to where this one starts, if earlier); a gap
            # beyond its end is skipped work, not speed.
            self._earned += max(0.0, min(start, self._span[1]) - self.progress)
        self._span = (start, end)
        self.progress = max(self.progress, start)
        if detail is not None:
            self.detail = detail
        self.eta_seconds = self.estimate(None)
        self._dirty = True

    async def on_progress(self, fraction: float, eta: float | None) -> None:
        """A pipeline ProgressCallback: remember the value; the ticker writes it."""
        start, end = self._span
        fraction = min(max(fraction, 0.0), 1.0)
        value = start + (end - start) * fraction
        if value > self.progress:
            self._earned += value - max(self.progress, start)
            self.progress = value
        self.eta_seconds = self.estimate(eta)
        self._dirty = True

    def rate(self) -> float | None:
        """Progress points per second over this run so far; None until there is enough to judge."""
        if self._started is None:
            return None
        elapsed = self._clock() - self._started
        if elapsed < 1.0 or self._earned < 0.5:
            return None
        return self._earned / elapsed

    def estimate(self, step_eta: float | None) -> int | None:
        """Seconds until the whole job is done: the step's own ETA plus the later stages at our rate."""
        _, end = self._span
        rate = self.rate()
        if step_eta is not None and step_eta >= 0:
            remaining_step = end - self.progress
            if rate is None and remaining_step > 0 and step_eta > 0:
                rate = remaining_step / step_eta  # nothing measured yet: extrapolate this step's speed
            if rate is None:
                return None
            return max(0, round(step_eta + max(0.0, 100.0 - end) / rate))
        if rate is None:
            return None
        return max(0, round(max(0.0, 100.0 - self.progress) / rate))

    async def write(self) -> None:
        """One tick: write progress + heartbeat; note a cancel request or a lost job."""
        from shared.infra.db import get_pool

        pool = await get_pool()
        async with pool.connection() as conn:
            cancel = await repository.heartbeat(
                conn,
                self.job_id,
                worker_id=self.worker_id,
                progress=round(self.progress, 2),
                eta_seconds=self.eta_seconds,
                stage_detail=self.detail,
            )
        self._dirty = False
        if cancel is None:
            self.stop_reason = JobLost
        elif cancel:
            self.stop_reason = JobCancelled

    @contextlib.asynccontextmanager
    async def watching(self, work: asyncio.Task[Any]) -> AsyncIterator[None]:
        """Tick while `work` runs; cancel it when the job is cancelled or lost."""
        ticker = asyncio.create_task(self._tick(work))
        try:
            yield
        finally:
            ticker.cancel()
            await asyncio.wait({ticker})

    async def _tick(self, work: asyncio.Task[Any]) -> None:
        last = time.monotonic()
        while not work.done():
            await asyncio.sleep(min(self.interval, 0.5))
            if time.monotonic() - last < self.interval:
                continue
            last = time.monotonic()
            async with self._writing:
                if self.paused:
                    # Finishing or handed on: a tick now would see the job as no longer ours and cancel
                    # the very step that is settling it.
                    return
                try:
                    await self.write()
                except Exception:  # the database may be briefly away; the stall limit is minutes
                    logger.warning("progress write failed", exc_info=True, extra={"job_id": str(self.job_id)})
                    continue
            if self.stop_reason is not None:
                work.cancel()
                return


async def run_watched(tracker: Tracker, step: Callable[[], Awaitable[Any]]) -> Any:
    """Run `step` as a task watched by the tracker; JobCancelled/JobLost when the ticker stopped it."""
    work = asyncio.ensure_future(step())
    async with tracker.watching(work):
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            if tracker.stop_reason is not None and work.cancelled():
                raise tracker.stop_reason() from None
            work.cancel()  # we ourselves were cancelled (worker shutting down): stop the step too
            await asyncio.wait({work})
            raise
