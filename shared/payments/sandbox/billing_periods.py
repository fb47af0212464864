"""Billing calendar: monthly and yearly periods counted from a subscription's anchor."""

from __future__ import annotations

from calendar import monthrange
from datetime import datetime


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28/29)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, monthrange(year, month)[1]))


def period_end(anchor: datetime, start: datetime, interval: str) -> datetime:
    """The first billing date after `start`, counted from the anchor (so Jan 31 bills Feb 28, then Mar 31)."""
    step = 12 if interval == "year" else 1
    elapsed = (start.year - anchor.year) * 12 + start.month - anchor.month
    k = max(1, elapsed // step)
    end = add_months(anchor, k * step)
    while end <= start:
        k += 1
        end = add_months(anchor, k * step)
    return end
