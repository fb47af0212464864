"""Maintenance report shapes."""

from __future__ import annotations

from pydantic import BaseModel


class MaintenanceReport(BaseModel):
    """What one housekeeping run did."""

    purged_jobs: int
    purged_mail: int = 0
    relayed_jobs: int
    queue_backend: str
