"""The cold-start benchmark runs: one fresh-interpreter measurement of the baseline and of api.health."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_cold_start_bench_prints_rows_for_baseline_and_health() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "cold_start.py"),
            "--runs",
            "1",
            "--modules",
            "health",
            "--heavy-check",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr or done.stdout
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert "baseline" in rows and "api.health" in rows, done.stdout
    cells = [cell.strip() for cell in rows["api.health"].strip("|").split("|")]
    float(cells[1])  # import median ms
    float(cells[3])  # first request median ms
    assert cells[7] in {"PASS", "FAIL"}


def test_auth_overhead_bench_runs_without_a_database() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.pop("DATABASE_URL", None)  # the bench points it at a closed port: verifying needs no database
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "auth_overhead.py"), "--requests", "60", "--rounds", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr or done.stdout
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert {"plain", "signature", "authed"} <= set(rows), done.stdout


def test_transcode_bench_prints_every_row_on_a_tiny_clip() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "transcode.py"), "--seconds", "4", "--height", "180"],
        cwd=REPO,
        env=env | {"MEDIA_X264_PRESET": "ultrafast"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr or done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert any("one decode" in row for row in rows) and any("first playable" in row for row in rows), (
        done.stdout
    )
    assert any("2 workers" in row for row in rows), done.stdout
