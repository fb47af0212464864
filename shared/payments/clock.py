"""Commerce's clock: the playback clock, so one moved clock (in tests) moves renewals, grace and rentals."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, aware UTC (tests move shared.streaming.sessions.clock instead of sleeping)."""
    from shared.streaming import sessions

    return datetime.fromtimestamp(sessions.clock(), UTC)
