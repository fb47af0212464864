"""Per-request cost of authentication: the same endpoint with and without a verified access token.

Three routes of one app built by the platform's create_app (same middleware, same JSON answer):
`plain` (no auth), `signature` (JWT verification only) and `authed` (the real `current_principal`:
signature, claims and the one Redis read of the revocation record). The database URL points at a closed
port, so any database round trip on the auth path would fail the run: verifying costs none.
Requests go through httpx's in-process ASGI transport, interleaved in rounds so noise hits all alike.

    .venv/bin/python bench/auth_overhead.py [--requests 2000] [--rounds 10]
"""

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _environment(data_dir: Path) -> None:
    from shared.local.services import embedded_redis_url

    os.environ.update(
        {
            "APP_ENV": "test",
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": "postgresql://nobody:nothing@127.0.0.1:9/none",  # closed: no DB on this path
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL") or embedded_redis_url(data_dir),
            "SIGNING_SECRET": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
            "LOG_LEVEL": "WARNING",
        }
    )


def _app() -> Any:

    from shared.accounts.tokens import decode_access_token
    from shared.http.app import create_app
    from shared.http.auth import Principal, current_principal
    from shared.settings import get_settings

    router = APIRouter(prefix="/api/v1/bench")

    @router.get("/plain")
    async def plain() -> dict[str, bool]:
        return {"ok": True}

    @router.get("/signature")
    async def signature(request: Request) -> dict[str, bool]:
        token = request.headers["authorization"].removeprefix("Bearer ")
        decode_access_token(token, settings=get_settings())
        return {"ok": True}

    @router.get("/authed")
    async def authed(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, bool]:
        return {"ok": True}

    return create_app(router, group="bench")


def _token() -> str:
    from shared.accounts.tokens import issue_access_token
    from shared.settings import get_settings

    token, _ = issue_access_token(
        settings=get_settings(),
        user_id=uuid.uuid4(),
        email="bench@example.com",
        roles=["viewer"],
        session_id=uuid.uuid4(),
        profile_id=None,
        aal="aal1",
        amr=[{"method": "password", "timestamp": int(time.time())}],
    )
    return token


async def _measure(requests: int, rounds: int) -> dict[str, list[float]]:
    import httpx

    app = _app()
    headers = {"authorization": f"Bearer {_token()}"}
    timings: dict[str, list[float]] = {"plain": [], "signature": [], "authed": []}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name in timings:  # warm-up: imports, pools, Lua/JIT caches
            for _ in range(50):
                response = await client.get(f"/api/v1/bench/{name}", headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"{name}: HTTP {response.status_code} {response.text}")
        per_round = max(1, requests // rounds)
        for _ in range(rounds):
            for name in timings:
                started = time.perf_counter()
                for _ in range(per_round):
                    await client.get(f"/api/v1/bench/{name}", headers=headers)
                timings[name].append((time.perf_counter() - started) / per_round * 1e6)
    from shared.infra.loop_local import reset_all

    await reset_all()
    return timings


def main() -> int:
    """Run the measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests per route")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cinema-bench-") as scratch:
        data_dir = Path(scratch)
        _environment(data_dir)
        try:
            timings = asyncio.run(_measure(args.requests, args.rounds))
        finally:
            if not os.environ.get("BENCH_REDIS_URL"):
                from shared.local.services import stop_embedded_redis

                stop_embedded_redis(data_dir)
    base = statistics.median(timings["plain"])
    transport = os.environ["REDIS_URL"].split(":", 1)[0]
    print(f"requests per route: {args.requests}, rounds: {args.rounds}, Redis over {transport}, no database")
    print("| route | median µs/request | ratio to plain | overhead µs |")
    print("|---|---:|---:|---:|")
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {median / base:.2f} | {median - base:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
