"""Playback's per-request cost over HTTP: session start and the per-session master manifest, each next to a
bare endpoint with the same authentication, and the Redis and PostgreSQL round trips of every request.

Set-up (not timed): a scratch database on the embedded PostgreSQL server (or --server-url) built by the
real migrations, an embedded Redis and local storage of its own; a tiny clip transcoded by the real worker
(so the stored master playlist and MPD are the pipeline's); a published title, a viewer with a profile, a
subscription entitlement (20 streams) and an access token. Then api/streaming.py's app plus three bench
routes is served by uvicorn in a child process, and an httpx client measures, request after request:

  bare GET       GET  /api/v1/bench/bare        `current_principal` only: the JWT and the one Redis read
                                                 of the revocation record (what any signed-in call pays)
  bare POST      POST /api/v1/bench/bare        the same with the session-start body parsed
  session start  POST /api/v1/streaming/sessions (each session is ended by DELETE afterwards, untimed)
  manifest hls   GET  /api/v1/streaming/{contentId}/manifest?session=...&format=hls  (warm: repeated)
  manifest dash  GET  the same with format=dash

Kinds are interleaved in rounds so machine noise hits them alike. Goal: manifest p50 <= 2x bare GET p50.

Round trips are counted inside the server process at the two choke points every call passes through:
the platform's Redis store (its backend's `_execute`: one per command sent; a Lua script is one) and
psycopg's `AsyncConnection.wait` (one per exchange with PostgreSQL: each statement, BEGIN, COMMIT), read
through GET /api/v1/bench/counters (which touches neither). Goal for the warm manifest: <= 1 Redis round
trip in all (the bearer check included: the bare endpoint already spends one on it) and 0 PostgreSQL.

    .venv/bin/python bench/playback.py [--requests 300] [--rounds 10] [--server-url postgresql://...]
"""

import asyncio
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _support import (
    COUNTERS,
    add_server_options,
    add_timing_options,
    adopt_env,
    bench_parser,
    bench_router,
    child_server,
    count_redis,
    counting,
    expect_status,
    free_port,
    insert_user,
    interleaved,
    local_base,
    p50_p95,
    read_counters,
    run_server,
    scratch_services,
    send_timed,
)

MANIFEST_RATIO_TARGET = 2.0
MANIFEST_REDIS_TARGET = 1  # in all, authentication included
MANIFEST_POSTGRES_TARGET = 0
DEVICE = "bench-device"
KINDS = ("bare GET", "bare POST", "session start", "manifest hls", "manifest dash")


# --- round-trip counters (installed in the server process) ---------------------------------------------


def install_counters() -> None:
    """Count Redis commands and PostgreSQL exchanges of this process (the bench server)."""
    from psycopg import AsyncConnection

    count_redis()
    AsyncConnection.wait = counting("postgres", AsyncConnection.wait)  # type: ignore[method-assign]


def bench_app() -> Any:
    """api/streaming.py's app with the bench routes added."""
    from typing import Annotated

    from fastapi import Depends
    from pydantic import BaseModel

    from api.streaming import app
    from shared.http.auth import Principal, current_principal

    class StartBody(BaseModel):
        content_id: uuid.UUID
        device_id: str
        device_name: str | None = None
        device_class: str | None = None

    bench = bench_router(counters=True)

    @bench.get("/bare")
    async def bare_get(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, str]:
        return {"user_id": str(principal.user_id)}

    @bench.post("/bare")
    async def bare_post(
        body: StartBody, principal: Annotated[Principal, Depends(current_principal)]
    ) -> dict[str, str]:
        return {"user_id": str(principal.user_id), "content_id": str(body.content_id)}

    app.include_router(bench)
    return app


def serve(port: int) -> None:
    from shared.infra.ratelimit import Limit
    from shared.streaming import service

    # One viewer starts hundreds of sessions here: the per-user start limit would measure 429s instead.
    service.STARTS = Limit(10**6, 60)
    install_counters()
    run_server(bench_app(), port)


# --- set-up ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """What the client needs: the content to play and the viewer's token."""

    content_id: str
    token: str


async def transcode(url: str, scratch: Path, seconds: float) -> uuid.UUID:
    """A generated clip through the real queue and worker into local storage; the title's id."""
    import hashlib

    import psycopg

    from shared.infra.loop_local import reset_all
    from shared.infra.media import ffmpeg_binary
    from shared.infra.queue import get_queue
    from shared.infra.queue.worker import dispatch
    from shared.infra.storage import get_storage
    from shared.jobs import load_handlers
    from shared.settings import get_settings
    from shared.transcoding.pipeline.testclips import generate_clip
    from shared.transcoding.service import queue_transcode

    clip = generate_clip(
        ffmpeg_binary(get_settings()), scratch / "bench.mp4", seconds=seconds, width=320, height=180,
        audio_languages=("eng",),
    )  # fmt: skip
    data = clip.read_bytes()
    source_id = uuid.uuid4()
    key = f"media/sources/{source_id}/bench.mp4"
    await (await get_storage()).upload_file(key, clip, content_type="video/mp4")
    connect = psycopg.AsyncConnection.connect(url, prepare_threshold=None)
    async with await connect as conn, conn.transaction():
        cursor = await conn.execute(
            "insert into public.catalog_titles (kind, slug, title, status, access, min_tier)"
            " values ('movie', %s, 'Bench movie', 'published', 'subscription', 1) returning id",
            (f"bench-{source_id.hex[:8]}",),
        )
        row = await cursor.fetchone()
        assert row is not None
        title_id = uuid.UUID(str(row[0]))
        await conn.execute(
            """insert into public.media_sources (id, title_id, purpose, storage_key, filename,
                                                 content_type, size_bytes, sha256, state, uploaded_at)
               values (%s, %s, 'main', %s, 'bench.mp4', 'video/mp4', %s, %s, 'uploaded', now())""",
            (source_id, title_id, key, len(data), hashlib.sha256(data).hexdigest()),
        )
        await queue_transcode(conn, source_id=source_id, created_by=None)
    load_handlers()
    queue = await get_queue()
    for _ in range(50):  # the transcode, then the events it publishes
        jobs = await queue.receive(max_jobs=1)
        if not jobs:
            break
        for job in jobs:
            await dispatch(queue, job)
    async with await psycopg.AsyncConnection.connect(url, prepare_threshold=None) as conn:
        cursor = await conn.execute(
            "select state from public.media_assets where title_id = %s and is_current", (title_id,)
        )
        row = await cursor.fetchone()
    if row is None or row[0] not in ("playable", "ready"):
        raise SystemExit(f"the bench clip did not transcode: {row!r}")
    await reset_all()
    return title_id


async def viewer(url: str, title_id: uuid.UUID) -> Viewer:
    """A verified user with a profile, a subscription entitlement with room for 20 streams, and a token."""
    import psycopg

    from shared.accounts.tokens import issue_access_token
    from shared.settings import get_settings

    connect = psycopg.AsyncConnection.connect(url, prepare_threshold=None)
    async with await connect as conn, conn.transaction():
        user_id, email = await insert_user(conn)
        cursor = await conn.execute(
            "insert into public.profiles (user_id, name) values (%s, 'Bench') returning id", (user_id,)
        )
        row = await cursor.fetchone()
        assert row is not None
        profile_id = uuid.UUID(str(row[0]))
        await conn.execute(
            """insert into public.entitlements (user_id, kind, plan_code, tier, max_streams, max_height)
               values (%s, 'subscription', 'premium', 3, 20, 1080)""",
            (user_id,),
        )
    token, _ = issue_access_token(
        settings=get_settings(),
        user_id=user_id,
        email=email,
        roles=["viewer"],
        session_id=uuid.uuid4(),
        profile_id=profile_id,
        aal="aal1",
        amr=[{"method": "password", "timestamp": int(time.time())}],
    )
    return Viewer(content_id=str(title_id), token=token)


# --- the measurement ------------------------------------------------------------------------------------


@dataclass
class Result:
    """Timings (ms) and round trips per request of each kind."""

    timings: dict[str, list[float]]
    redis: dict[str, float]
    postgres: dict[str, float]


async def measure(base: str, who: Viewer, requests: int, rounds: int, counted: int) -> Result:
    import httpx

    headers = {"authorization": f"Bearer {who.token}"}
    body = {"content_id": who.content_id, "device_id": DEVICE, "device_class": "web"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:

        async def start() -> tuple[float, str]:
            # A device of its own each time: a start on the same device would replace the manifests' session.
            request = client.build_request(
                "POST", "/api/v1/streaming/sessions", json=body | {"device_id": uuid.uuid4().hex}
            )
            elapsed, response = await send_timed(client, request)
            expect_status("session start", response, 201)
            return elapsed, str(response.json()["session_id"])

        async def end(session_id: str) -> None:
            response = await client.delete(f"/api/v1/streaming/sessions/{session_id}")
            if response.status_code not in (200, 204):
                expect_status("session end", response, 204)

        _, session_id = await start()  # the manifests' session, live for the whole run
        manifest = f"/api/v1/streaming/{who.content_id}/manifest"

        async def timed(kind: str) -> float:
            if kind == "session start":
                elapsed, started_id = await start()
                await end(started_id)
                return elapsed
            if kind.startswith("manifest"):
                request = client.build_request(
                    "GET", manifest, params={"session": session_id, "format": kind.split()[1]}
                )
            elif kind == "bare POST":
                request = client.build_request("POST", "/api/v1/bench/bare", json=body)
            else:
                request = client.build_request("GET", "/api/v1/bench/bare")
            elapsed, response = await send_timed(client, request)
            expect_status(kind, response)
            return elapsed

        # (the warm-up readies connections, pools, caches (the manifest text), imports)
        timings = await interleaved(KINDS, timed, requests, rounds)

        # Round trips, apart from the timing: counters read around each request (a session start alone,
        # its DELETE outside the bracket).
        redis: dict[str, float] = {}
        postgres: dict[str, float] = {}
        for kind in KINDS:
            sums = {"redis": 0, "postgres": 0}
            for _ in range(counted):
                before = await read_counters(client)
                if kind == "session start":
                    _, started_id = await start()
                    after = await read_counters(client)
                    await end(started_id)
                else:
                    await timed(kind)
                    after = await read_counters(client)
                for name in sums:
                    sums[name] += after[name] - before[name]
            redis[kind] = sums["redis"] / counted
            postgres[kind] = sums["postgres"] / counted
        await end(session_id)
    return Result(timings, redis, postgres)


def table(result: Result) -> list[str]:
    """The markdown table."""
    p50_95 = {kind: p50_p95(values) for kind, values in result.timings.items()}
    lines = [
        "| request | p50 ms | p95 ms | p50 ratio to bare | Redis round trips | PostgreSQL round trips | goal"
        " | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for kind in KINDS:
        bare = "bare POST" if kind in ("bare POST", "session start") else "bare GET"
        p50, p95 = p50_95[kind]
        ratio = p50 / p50_95[bare][0]
        redis, postgres = result.redis[kind], result.postgres[kind]
        goal, verdict = ("baseline", "") if kind.startswith("bare") else ("", "")
        if kind.startswith("manifest"):
            goal = (
                f"<= {MANIFEST_RATIO_TARGET:g}x bare GET, <= {MANIFEST_REDIS_TARGET} Redis,"
                f" {MANIFEST_POSTGRES_TARGET} PostgreSQL"
            )
            ok = (
                ratio <= MANIFEST_RATIO_TARGET
                and redis <= MANIFEST_REDIS_TARGET
                and postgres <= MANIFEST_POSTGRES_TARGET
            )
            verdict = "PASS" if ok else "FAIL"
        lines.append(
            f"| {kind} | {p50:.2f} | {p95:.2f} | {ratio:.2f}"
            f" | {redis:g} | {postgres:g} | {goal} | {verdict} |"
        )
    return lines


def main() -> int:
    """Set up, serve, measure, print the table."""
    parser = bench_parser(__doc__)
    add_timing_options(parser, requests=300, counted=True)
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the transcoded clip")
    add_server_options(parser)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0

    from shared.infra.migrations import migrate

    with scratch_services(args.server_url) as scratch:
        port = free_port()
        env = scratch.env(
            PUBLIC_BASE_URL=local_base(port),
            MEDIA_X264_PRESET="ultrafast",
            STREAM_HEARTBEAT_TTL_SECONDS="3600",  # the manifests' session outlives the run without beats
        )
        adopt_env(env)  # the set-up below runs in this process with the server's settings
        asyncio.run(migrate(scratch.url))
        title_id = asyncio.run(transcode(scratch.url, scratch.directory, args.seconds))
        who = asyncio.run(viewer(scratch.url, title_id))
        with child_server(__file__, port, env, COUNTERS) as base:
            result = asyncio.run(measure(base, who, args.requests, args.rounds, args.counted))

    per_kind = len(result.timings["bare GET"])
    print(
        f"\n{per_kind} requests per kind in {args.rounds} rounds over HTTP (uvicorn, one worker);"
        f" round trips averaged over {args.counted} requests per kind"
    )
    for line in table(result):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
