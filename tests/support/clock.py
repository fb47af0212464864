"""The movable playback clock: shared.streaming.sessions.clock (commerce reads its time from it too), moved by
tests instead of sleeping.

A conftest (or test module) gets the `clock` fixture with `clock = clock_fixture()`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest


class Clock:
    """A settable stand-in for the playback clock."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 0.0, **delta: float) -> None:
        """Move time forward by seconds and/or a timedelta's keywords (hours=..., days=...)."""
        self.now += seconds + timedelta(**delta).total_seconds()

    @property
    def at(self) -> datetime:
        """The current time as an aware datetime."""
        return datetime.fromtimestamp(self.now, UTC)


def clock_fixture(*, ahead: float = 0.0, whole_second: bool = False) -> Any:
    """A `clock` fixture: a Clock patched in for the test, starting `ahead` seconds after the real time
    (whole_second: at the real time's whole second)."""

    @pytest.fixture(name="clock")
    def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
        from shared.streaming import sessions

        start = float(int(time.time())) if whole_second else time.time()
        moving = Clock(start + ahead)
        monkeypatch.setattr(sessions, "clock", moving)
        yield moving

    return clock
