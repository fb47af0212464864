"""bench/search.py runs end to end on a tiny generated catalog (the full run is in bench/README.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_search_bench_generates_serves_and_prints_the_table(server_url: str, redis_url: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env["BENCH_REDIS_URL"] = redis_url
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "search.py"),
            "--titles",
            "300",
            "--people",
            "900",
            "--requests",
            "20",
            "--rounds",
            "2",
            "--server-url",
            server_url,
            "--explain",
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
    assert {"key lookup", "fulltext", "fuzzy", "autocomplete"} <= set(rows), done.stdout
    for kind in ("fulltext", "fuzzy", "autocomplete"):
        cells = [cell.strip() for cell in rows[kind].strip("|").split("|")]
        float(cells[1]), float(cells[2]), float(cells[3])  # p50, p95, ratio
        assert cells[4] in {"PASS", "FAIL"}
    # The plans printed by --explain show the search indexes at work.
    assert "catalog_titles_search_document_idx" in done.stdout
    assert "catalog_search_words_trgm_idx" in done.stdout or "catalog_search_words_pkey" in done.stdout
