"""bench/playback.py runs end to end on a tiny clip and a few requests, and prints every row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--requests", "20", "--rounds", "2", "--counted", "3", "--seconds", "2"]
KINDS = {"bare GET", "bare POST", "session start", "manifest hls", "manifest dash"}


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_playback_bench_prints_every_row(server_url: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env["BENCH_DATABASE_URL"] = server_url  # the tests' PostgreSQL server; the bench makes its own database
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "playback.py"), *ARGS],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert done.returncode == 0, done.stderr or done.stdout
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert set(rows) >= KINDS, done.stdout
    for kind in ("manifest hls", "manifest dash"):
        cells = [cell.strip() for cell in rows[kind].strip("|").split("|")]
        float(cells[1]), float(cells[2]), float(cells[3])  # p50, p95, ratio to the bare endpoint
        # Round trips are behaviour, not speed: the warm manifest stays off PostgreSQL, one Redis call.
        assert float(cells[4]) <= 1 and float(cells[5]) == 0, rows[kind]
        assert cells[7] in {"PASS", "FAIL"}
