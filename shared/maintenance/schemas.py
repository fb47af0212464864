"""Maintenance report shapes."""

from __future__ import annotations

from pydantic import BaseModel


class MaintenanceReport(BaseModel):
    """What one housekeeping run did."""

    purged_jobs: int
    purged_mail: int = 0
    swept_media_prefixes: int = 0  # asset/work folders of failed, retired or ended media removed
    relayed_jobs: int
    queue_backend: str
