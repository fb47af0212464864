"""The sandbox's time: commerce's clock, and datetimes as the Unix seconds Stripe's objects carry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def now() -> datetime:
    """Commerce's current time (the playback clock, which tests move)."""
    from shared.payments.clock import now as clock_now

    return clock_now()


def to_unix(at: datetime) -> int:
    """A datetime as whole Unix seconds, as Stripe's objects carry it."""
    return int(at.timestamp())


def from_unix(value: Any) -> datetime:
    """Unix seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(int(value), UTC)


def from_unix_or_none(value: Any) -> datetime | None:
    """Unix seconds as an aware UTC datetime; None stays None."""
    return None if value is None else datetime.fromtimestamp(int(value), UTC)
