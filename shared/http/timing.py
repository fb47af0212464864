"""Answer no sooner than a fixed time, so an endpoint's duration does not tell what it found."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


@asynccontextmanager
async def at_least(seconds: float) -> AsyncIterator[None]:
    """Hold the response until `seconds` after entering, whatever the work inside took (or raised)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        remaining = seconds - (time.perf_counter() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
