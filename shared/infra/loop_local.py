"""Singletons bound to the running event loop: async clients must not cross loops (Mangum, tests)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
_registry: weakref.WeakSet[LoopLocal[object]] = weakref.WeakSet()


class LoopLocal(Generic[T]):
    """Lazily create one value per event loop, with the creation itself serialised."""

    def __init__(self, factory: Callable[[], Awaitable[T]]) -> None:
        self._factory = factory
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        _registry.add(self)  # type: ignore[arg-type]

    async def get(self) -> T:
        """Return this loop's value, creating it on first use."""
        loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is not None:
            return value
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            value = self._values.get(loop)
            if value is None:
                value = await self._factory()
                self._values[loop] = value
            return value

    def pop(self) -> T | None:
        """Forget this loop's value (the caller closes it)."""
        return self._values.pop(asyncio.get_running_loop(), None)


async def reset_all() -> None:
    """Close and forget every loop-local client of the running loop (after settings change: tests, CLI)."""
    for holder in list(_registry):
        value = holder.pop()
        close = getattr(value, "close", None)
        if close is None:
            continue
        try:
            result = close()
            if asyncio.iscoroutine(result):
                await result
        except Exception:  # one broken client must not keep the others open
            logging.getLogger("cinema.infra").warning("closing %r failed", value, exc_info=True)
