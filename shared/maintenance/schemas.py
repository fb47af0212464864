"""Maintenance report shapes."""

from __future__ import annotations

from pydantic import BaseModel


class MaintenanceReport(BaseModel):
    """What one housekeeping run did."""

    purged_jobs: int
    purged_mail: int = 0
    swept_media_prefixes: int = 0  # asset/work folders of failed, retired or ended media removed
    swept_image_uploads: int = 0  # staged catalog artwork and avatar uploads never confirmed
    swept_catalog_images: int = 0  # objects (originals and variants) of catalog images no row refers to
    # catalog images at Cloudinary no row refers to (one each, no variants); CLOUDINARY_SWEEP_UNUSED only
    swept_cloudinary_images: int = 0
    relayed_jobs: int
    queue_backend: str
