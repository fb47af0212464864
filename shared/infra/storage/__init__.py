"""Object storage chosen by STORAGE_BACKEND: S3 (boto3, imported on first use) or a local folder."""

from __future__ import annotations

from shared.infra.loop_local import LoopLocal
from shared.infra.storage.base import PresignedRequest, Storage, StoredObject, UploadedPart
from shared.infra.storage.local import LocalStorage
from shared.infra.storage.s3 import S3Storage
from shared.settings import Settings, get_settings, signing_secret

__all__ = [
    "LocalStorage",
    "PresignedRequest",
    "S3Storage",
    "Storage",
    "StoredObject",
    "UploadedPart",
    "create_storage",
    "get_storage",
    "reset_storage",
]


def create_storage(settings: Settings) -> Storage:
    """Build the backend the settings name (the local folder under DATA_DIR by default)."""
    if settings.storage_backend == "s3":
        if not settings.s3_bucket:  # the settings validator refuses this already
            raise ValueError("S3_BUCKET is required when STORAGE_BACKEND=s3")
        endpoint = str(settings.s3_endpoint_url).rstrip("/") if settings.s3_endpoint_url else None
        return S3Storage(
            bucket=settings.s3_bucket,
            endpoint_url=endpoint,
            region=settings.s3_region,
            default_expires_in=settings.storage_url_ttl_seconds,
        )
    return LocalStorage(
        root=settings.data_dir / "storage",
        base_url=str(settings.public_base_url),
        secret=signing_secret(settings),
        default_expires_in=settings.storage_url_ttl_seconds,
    )


async def _create() -> Storage:
    return create_storage(get_settings())


_storage: LoopLocal[Storage] = LoopLocal(_create)


async def get_storage() -> Storage:
    """The storage of the running loop, created on first use."""
    return await _storage.get()


async def reset_storage() -> None:
    """Forget this loop's storage so the next get_storage() reads the settings again (tests, CLI)."""
    _storage.pop()
