"""What the deploy targets install and read at start-up."""

from __future__ import annotations

import tomllib

import pytest

from shared.settings import REPO_ROOT as REPO
from tests.test_deploy_artifacts import load_yaml


def test_pyproject_dependencies_equal_requirements_txt() -> None:
    # Vercel's Python builder reads pyproject.toml first: its dependencies must be exactly requirements.txt.
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    lines = (REPO / "requirements.txt").read_text().splitlines()
    pinned = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert sorted(declared) == sorted(pinned)


def test_serverless_environment_passes_settings_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    # The Lambdas start with APP_ENV=production: their environment (secrets filled in) must validate.
    from shared.settings import Settings

    config = load_yaml(REPO / "serverless.yml")
    environment = dict(config["provider"].get("environment") or {})
    for function in config["functions"].values():
        environment.update(function.get("environment") or {})
    assert environment.get("APP_ENV") == "production"
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    fillers = {
        "DATABASE_URL": "postgresql://u:p@db.example:6543/postgres",
        "UPSTASH_REDIS_REST_URL": "https://example.upstash.io",
        "SIGNING_SECRET": "s" * 48,
        "MEDIA_MASTER_KEY": "bWVkaWEtbWFzdGVyLWtleS1mb3ItdGVzdHMtb25seSE=",  # base64 of 32 bytes
    }
    for name, value in environment.items():
        if isinstance(value, str) and "${" not in value:
            monkeypatch.setenv(name, value)
        else:  # resolved from SSM / the stack at deploy time
            monkeypatch.setenv(
                name, fillers.get(name, "https://sqs.example/q" if name.endswith("URL") else "x")
            )
    Settings(_env_file=None)  # type: ignore[call-arg]
