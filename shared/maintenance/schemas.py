"""Maintenance report shapes."""

from __future__ import annotations

from pydantic import BaseModel


class MaintenanceReport(BaseModel):
    """What one housekeeping run did."""

    purged_jobs: int
    relayed_jobs: int
    queue_backend: str
