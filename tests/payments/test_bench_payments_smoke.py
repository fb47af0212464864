"""bench/payments.py runs end to end with a few requests (--quick) and prints every row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KINDS = {"bare POST", "webhook duplicate", "invoice.paid", "bare GET", "plans"}


def test_payments_bench_prints_every_row(server_url: str, redis_url: str) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env["BENCH_DATABASE_URL"] = server_url  # the tests' PostgreSQL server; the bench makes its own database
    env["BENCH_REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "payments.py"), "--quick"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr or done.stdout
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| ")}
    assert set(rows) >= KINDS, done.stdout
    cells = {kind: [cell.strip() for cell in rows[kind].strip("|").split("|")] for kind in KINDS}
    for kind in KINDS:
        float(cells[kind][1]), float(cells[kind][2]), float(cells[kind][3])  # p50, p95, ratio to bare
    stripe, postgres = 5, 6
    # Round trips are behaviour, not speed: a duplicate never asks Stripe and is one insert in a
    # transaction (BEGIN, the time limit, the insert, COMMIT); a first invoice.paid re-reads at least the
    # invoice and its subscription from Stripe; the bare endpoints touch nothing.
    assert float(cells["webhook duplicate"][stripe]) == 0, rows["webhook duplicate"]
    assert float(cells["webhook duplicate"][postgres]) <= 4, rows["webhook duplicate"]
    assert float(cells["invoice.paid"][stripe]) >= 2, rows["invoice.paid"]
    assert float(cells["plans"][stripe]) == 0, rows["plans"]
    for bare in ("bare POST", "bare GET"):
        assert float(cells[bare][stripe]) == 0 and float(cells[bare][postgres]) == 0, rows[bare]
