"""Payments' per-request cost over HTTP: the Stripe webhook (a duplicate delivery and a first `invoice.paid`)
and the public plans list, each next to a bare endpoint of the same server, with the Stripe API calls and
the PostgreSQL and Redis round trips of every request.

Set-up (not timed): a scratch database on the embedded PostgreSQL server (or --server-url) built by the
real migrations, an embedded Redis of its own, and tests/support/stripe_server.py's Stripe stand-in served
from this process (a thread). A user, a monthly plan of the bench's own, and a subscription made the way a
customer makes one: commerce's own `subscribe` (the Stripe customer and its `payment_customers` row, the
Stripe price recorded on the plan's price, a hosted checkout), then the stand-in's `complete_checkout`.
Then api/payments.py's app plus three bench routes is served by uvicorn in a child process
(PAYMENTS_PROVIDER=stripe, STRIPE_API_BASE=<stand-in>), the checkout's three events are delivered, and an
httpx client measures, request after request:

  bare POST          POST /api/v1/bench/bare           reads the raw body, answers 200 (the same signed
                                                         payload and headers as the duplicate)
  webhook duplicate  POST /api/v1/payments/webhooks/stripe  an `invoice.paid` already processed, freshly
                                                         signed: signature check, one insert-on-conflict,
                                                         commit ("duplicate")
  invoice.paid       the same endpoint, a FIRST delivery: a new paid renewal invoice on the stand-in each
                                                         time (made untimed): signature, event row,
                                                         subscription re-read from Stripe and mirrored,
                                                         entitlement, invoice re-read and recorded,
                                                         receipt mail queued ("processed")
  bare GET           GET  /api/v1/bench/bare           answers a constant
  plans              GET  /api/v1/payments/plans       the public plans list (PostgreSQL; no cache here)

Kinds are interleaved in rounds so machine noise hits them alike; the table gives p50/p95 and each p50's
ratio to its bare endpoint (POST for the webhook kinds, GET for plans).

Round trips, counted apart from the timing: Stripe API calls as the stand-in received them
(`server.requests`), and, inside the server process, psycopg's `AsyncConnection.wait` (one per exchange
with PostgreSQL: each statement, BEGIN and COMMIT) and the Redis store's `_execute` (one per command), read
through GET /api/v1/bench/counters (which touches neither).

The stand-in answers in well under a millisecond from this machine; real Stripe is an HTTPS round trip
away (tens to hundreds of ms), which the `invoice.paid` row pays once per Stripe call counted.

    .venv/bin/python bench/payments.py [--requests 300] [--rounds 10] [--quick] [--server-url postgresql://...]
"""

import asyncio
import secrets
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from _support import (
    COUNTERS,
    COUNTS,
    add_server_options,
    add_timing_options,
    adopt_env,
    bench_parser,
    bench_router,
    child_server,
    count_redis,
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

WEBHOOK = "/api/v1/payments/webhooks/stripe"
PLANS = "/api/v1/payments/plans"
BARE = "/api/v1/bench/bare"
KINDS = ("bare POST", "webhook duplicate", "invoice.paid", "bare GET", "plans")
BASELINE = {
    "bare POST": "bare POST",
    "webhook duplicate": "bare POST",
    "invoice.paid": "bare POST",
    "bare GET": "bare GET",
    "plans": "bare GET",
}
OUTCOME = {"webhook duplicate": "duplicate", "invoice.paid": "processed"}
AMOUNT_MINOR = 1299


# --- round-trip counters (installed in the server process) ---------------------------------------------


def install_counters() -> None:
    """Count Redis commands and PostgreSQL exchanges of this process (the bench server)."""
    from psycopg import _cursor_base, generators

    count_redis()
    # psycopg's `execute` generator sends what is queued and reads every result: one exchange on the wire.
    # Statements go through the cursor's copy of it, BEGIN / COMMIT / SAVEPOINT through the connection's
    # (the BEGIN a statement opens rides in the same `wait` as the statement: counting waits would miss it).
    send = generators.execute

    def counted_execute(pgconn: Any) -> Any:
        COUNTS["postgres"] += 1
        return send(pgconn)

    generators.execute = counted_execute  # read through the module at each call by the connection
    _cursor_base.execute = counted_execute  # type: ignore[attr-defined]  # imported there by name


def bench_app() -> Any:
    """api/payments.py's app with the bench routes added."""
    from fastapi import Request

    from api.payments import app

    bench = bench_router(counters=True)

    @bench.post("/bare")
    async def bare_post(request: Request) -> dict[str, bool]:
        await request.body()  # the raw bytes, as the webhook reads them
        return {"received": True}

    @bench.get("/bare")
    async def bare_get() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(bench)
    return app


def serve(port: int) -> None:
    install_counters()
    run_server(bench_app(), port)


# --- set-up ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscriber:
    """What the deliveries are about: the stand-in's checkout results for the bench subscriber."""

    user_id: uuid.UUID
    made: dict[str, str | None]

    @property
    def subscription(self) -> str:
        ref = self.made["subscription"]
        assert ref is not None
        return ref


async def subscriber(url: str, stripe: Any) -> Subscriber:
    """A verified user with a paid monthly subscription on the stand-in, started through commerce itself."""
    import psycopg

    from shared.infra.loop_local import reset_all
    from shared.settings import get_settings
    from shared.subscriptions import service as subscriptions

    code = f"bench-{uuid.uuid4().hex[:8]}"
    connect = psycopg.AsyncConnection.connect(url, prepare_threshold=None)
    async with await connect as conn, conn.transaction():
        user_id, email = await insert_user(conn)
        await conn.execute(
            """insert into public.plans (code, name, description, tier, max_streams, max_height, ad_free,
                                         trial_days, sort_order)
               values (%s, 'Bench plan', 'The bench''s plan', 2, 2, 1080, true, 0, 50)""",
            (code,),
        )
        await conn.execute(
            """insert into public.plan_prices (plan_code, currency, billing_interval, amount_minor)
               values (%s, 'USD', 'month', %s)""",
            (code, AMOUNT_MINOR),
        )
        # The Stripe customer (and its payment_customers row), the Stripe price, the hosted checkout.
        started = await subscriptions.subscribe(
            conn,
            settings=get_settings(),
            user_id=user_id,
            email=email,
            plan_code=code,
            interval="month",
            currency="USD",
            idempotency_key=None,
        )
    await reset_all()  # the SDK's clients belong to this event loop
    made: dict[str, str | None] = stripe.complete_checkout(started.checkout_id)
    return Subscriber(user_id=user_id, made=made)


# --- the measurement ------------------------------------------------------------------------------------


@dataclass
class Result:
    """Timings (ms) and round trips per request of each kind."""

    timings: dict[str, list[float]]
    stripe: dict[str, float]
    postgres: dict[str, float]
    redis: dict[str, float]


def _check(kind: str, response: Any, outcome: str | None = None) -> None:
    expect_status(kind, response)
    if outcome is not None and response.json().get("outcome") != outcome:
        raise SystemExit(f"{kind}: expected outcome {outcome!r}, got {response.text[:400]}")


async def measure(
    base: str, stripe: Any, secret: str, who: Subscriber, requests: int, rounds: int, counted: int
) -> Result:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def deliver(event: dict[str, Any], outcome: str) -> None:
            body, headers = stripe.webhook(event, secret)
            _check(event["type"], await client.post(WEBHOOK, content=body, headers=headers), outcome)

        # What the checkout makes Stripe send; the first invoice.paid becomes the duplicate, redelivered.
        await deliver(stripe.event("checkout.session.completed", who.made["session"]), "processed")
        await deliver(stripe.event("customer.subscription.created", who.subscription), "processed")
        processed = stripe.event("invoice.paid", who.made["invoice"])
        await deliver(processed, "processed")

        def prepare(kind: str) -> Callable[[], Any]:
            """The request of one kind, built (and for invoice.paid, its invoice made) before the clock."""
            if kind == "invoice.paid":
                invoice = stripe.add_invoice(
                    who.subscription,
                    amount=AMOUNT_MINOR,
                    description="Bench plan (monthly renewal)",
                    billing_reason="subscription_cycle",
                )
                body, headers = stripe.webhook(stripe.event("invoice.paid", invoice), secret)
                return lambda: client.build_request("POST", WEBHOOK, content=body, headers=headers)
            if kind in ("webhook duplicate", "bare POST"):
                body, headers = stripe.webhook(processed, secret)  # signed now: within the tolerance
                path = WEBHOOK if kind == "webhook duplicate" else BARE
                return lambda: client.build_request("POST", path, content=body, headers=headers)
            path = PLANS if kind == "plans" else BARE
            return lambda: client.build_request("GET", path)

        async def timed(kind: str) -> float:
            elapsed, response = await send_timed(client, prepare(kind)())
            _check(kind, response, OUTCOME.get(kind))
            return elapsed

        # (the warm-up readies connections, pools, the SDK's client, imports)
        timings = await interleaved(KINDS, timed, requests, rounds)

        # Round trips, apart from the timing: counters read around each request.
        sums: dict[str, dict[str, int]] = {kind: {"stripe": 0, "postgres": 0, "redis": 0} for kind in KINDS}
        for kind in KINDS:
            for _ in range(counted):
                request = prepare(kind)()
                before = await read_counters(client)
                calls = len(stripe.requests)
                response = await client.send(request)
                after = await read_counters(client)
                _check(kind, response, OUTCOME.get(kind))
                sums[kind]["stripe"] += len(stripe.requests) - calls
                for name in ("postgres", "redis"):
                    sums[kind][name] += after[name] - before[name]
    return Result(
        timings,
        stripe={kind: sums[kind]["stripe"] / counted for kind in KINDS},
        postgres={kind: sums[kind]["postgres"] / counted for kind in KINDS},
        redis={kind: sums[kind]["redis"] / counted for kind in KINDS},
    )


def table(result: Result) -> list[str]:
    """The markdown table."""
    p50_95 = {kind: p50_p95(values) for kind, values in result.timings.items()}
    lines = [
        "| request | p50 ms | p95 ms | p50 ratio to bare | baseline | Stripe calls | PostgreSQL round trips"
        " | Redis round trips |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for kind in KINDS:
        bare = BASELINE[kind]
        p50, p95 = p50_95[kind]
        lines.append(
            f"| {kind} | {p50:.2f} | {p95:.2f}"
            f" | {p50 / p50_95[bare][0]:.2f} | {'-' if bare == kind else bare}"
            f" | {result.stripe[kind]:g} | {result.postgres[kind]:g} | {result.redis[kind]:g} |"
        )
    return lines


def main() -> int:
    """Set up, serve, measure, print the table."""
    parser = bench_parser(__doc__)
    add_timing_options(parser, requests=300, counted=True)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few requests (20 per kind, 2 rounds, 3 counted): the smoke test",
    )
    add_server_options(parser)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.quick:
        args.requests, args.rounds, args.counted = 20, 2, 3

    from shared.infra.migrations import migrate
    from tests.support.stripe_server import StripeServer

    with scratch_services(args.server_url) as scratch:
        port = free_port()
        stripe = StripeServer()  # its connections have TCP_NODELAY (tests/support/threaded_server.py)
        secret = f"whsec_bench_{secrets.token_hex(16)}"
        env = scratch.env(
            PUBLIC_BASE_URL=local_base(port),
            PAYMENTS_PROVIDER="stripe",
            STRIPE_SECRET_KEY=stripe.api_key,
            STRIPE_WEBHOOK_SECRET=secret,
            STRIPE_API_BASE=stripe.url,
        )
        adopt_env(env)  # the set-up below runs in this process with the server's settings
        stripe.start()
        try:
            asyncio.run(migrate(scratch.url))
            who = asyncio.run(subscriber(scratch.url, stripe))
            with child_server(__file__, port, env, COUNTERS) as base:
                result = asyncio.run(
                    measure(base, stripe, secret, who, args.requests, args.rounds, args.counted)
                )
        finally:
            stripe.stop()

    per_kind = len(result.timings["bare GET"])
    print(
        f"\n{per_kind} requests per kind in {args.rounds} rounds over HTTP (uvicorn, one worker; the Stripe"
        f" stand-in in the client's process); round trips averaged over {args.counted} requests per kind"
    )
    for line in table(result):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
