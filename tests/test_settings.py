"""Misconfiguration stops start-up with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.settings import REPO_ROOT, ConfigError, get_settings, signing_secret


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "APP_ENV"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "nonsense", "DATABASE_URL: expected a postgresql://"),
        ("REDIS_URL", "http://x", "REDIS_URL: expected a redis://"),
        ("DB_POOL_MAX", "lots", "DB_POOL_MAX: Input should be a valid integer"),
        ("APP_ENV", "staging", "APP_ENV: Input should be 'local', 'test' or 'production'"),
    ],
)
def test_importing_an_api_module_with_bad_config_fails_in_one_line(
    variable: str, value: str, expected: str
) -> None:
    result = run_python("import api.health", **{variable: value})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: ") and expected in lines[0]


def test_cli_reports_bad_database_url_in_one_line() -> None:
    result = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "cinema"), "migrate"],
        env=os.environ | {"DATABASE_URL": "nonsense"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        # The value is not echoed: a URL may carry a password.
        "configuration error: DATABASE_URL: expected a postgresql://user:password@host:port/dbname URL"
    ]


def test_production_refuses_embedded_defaults(settings_env) -> None:
    settings_env(
        APP_ENV="production", DATABASE_URL=None, REDIS_URL=None, SIGNING_SECRET=None, CRON_SECRET=None
    )
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert (
        "APP_ENV=production needs DATABASE_URL, REDIS_URL or UPSTASH_REDIS_REST_URL, SIGNING_SECRET"
        in str(caught.value.code)
    )


def test_backend_requirements(settings_env) -> None:
    settings_env(STORAGE_BACKEND="s3", S3_BUCKET=None)
    with pytest.raises(ConfigError, match="S3_BUCKET is required"):
        get_settings()
    settings_env(STORAGE_BACKEND="local", UPSTASH_REDIS_REST_URL="https://x.upstash.io")
    with pytest.raises(ConfigError, match="must be set together"):
        get_settings()
    settings_env(UPSTASH_REDIS_REST_URL=None, CLOUDINARY_SWEEP_UNUSED="true", CLOUDINARY_URL=None)
    with pytest.raises(ConfigError, match="CLOUDINARY_SWEEP_UNUSED needs CLOUDINARY_URL"):
        get_settings()


def test_the_cloudinary_sweep_is_opt_in(settings_env) -> None:
    """Deleting unused images at a Cloudinary account other deployments may share takes a decision."""
    settings_env(CLOUDINARY_SWEEP_UNUSED=None, CLOUDINARY_URL="cloudinary://k:s@demo")
    assert get_settings().cloudinary_sweep_unused is False
    settings_env(CLOUDINARY_SWEEP_UNUSED="true")
    assert get_settings().cloudinary_sweep_unused is True


def test_cors_origins_from_comma_list(settings_env) -> None:
    settings_env(CORS_ORIGINS="https://a.example, https://b.example")
    assert get_settings().cors_origins == ["https://a.example", "https://b.example"]


def test_local_signing_secret_is_generated_once_and_private(settings_env, tmp_path) -> None:
    settings_env(SIGNING_SECRET=None, DATA_DIR=str(tmp_path))
    first = signing_secret(get_settings())
    assert len(first) >= 32 and first == signing_secret(get_settings())
    assert (tmp_path / "signing-secret").stat().st_mode & 0o777 == 0o600


def test_on_vercel_the_platform_proxy_is_trusted_unless_configured(settings_env) -> None:
    settings_env(VERCEL="1", TRUSTED_PROXIES=None)
    assert get_settings().trusted_proxies == ["*"]
    settings_env(VERCEL="1", TRUSTED_PROXIES="173.245.48.0/20")
    assert get_settings().trusted_proxies == ["173.245.48.0/20"]
    settings_env(VERCEL=None, TRUSTED_PROXIES=None)
    assert get_settings().trusted_proxies == []
