"""Idempotency-Key on POST /subscribe (sandbox): same key and body -> the same answer and one checkout;
another body -> 409; parallel requests with one key -> one checkout. Plus shared.payments.idempotency."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.errors import Conflict
from shared.infra.db import standalone
from shared.payments import clock as payments_clock
from shared.payments import idempotency
from tests.subscriptions.conftest import API, Db, PlanSet
from tests.support.clock import Clock
from tests.support.commerce import problem, rows
from tests.support.identity import SignedIn, signed_in_user

pytestmark = pytest.mark.usefixtures("sandbox")


async def checkouts_of(db: Db, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The sandbox's checkout sessions started for the user."""
    return await rows(
        db,
        "select id from public.sandbox_payment_objects where kind = 'checkout_session' "
        "and data->>'client_reference_id' = %s",
        str(user_id),
    )


async def post(
    client: httpx.AsyncClient, viewer: SignedIn, body: dict[str, Any], key: str | None
) -> httpx.Response:
    headers = {**viewer.headers, **({"idempotency-key": key} if key else {})}
    return await client.post(f"{API}/subscribe", json=body, headers=headers)


async def test_same_key_and_body_replays_the_first_answer(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    key = f"sub-{uuid.uuid4()}"
    first = await post(client, viewer, {"plan_code": plans.high}, key)
    assert first.status_code == 201, first.text
    # Same request, the body written differently (key order, defaults spelled out): still the same request.
    second = await post(
        client, viewer, {"currency": "usd", "interval": "month", "plan_code": plans.high}, key
    )
    assert second.status_code == 201 and second.json() == first.json()
    assert second.headers.get("idempotent-replayed") == "true"
    assert len(await checkouts_of(db, viewer.user_id)) == 1


async def test_same_key_with_another_body_is_a_conflict(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet, database_url: str
) -> None:
    key = f"sub-{uuid.uuid4()}"
    assert (await post(client, viewer, {"plan_code": plans.high}, key)).status_code == 201
    body = problem(await post(client, viewer, {"plan_code": plans.top}, key), 409, "idempotency_key_reused")
    assert "another request" in body["detail"]
    # The key is the account's: another account may use the same one.
    other = await post(client, await signed_in_user(database_url), {"plan_code": plans.top}, key)
    assert other.status_code == 201, other.text
    # Used for another operation: reused as well.
    cancel = await client.post(
        f"{API}/subscription/cancel", headers={**viewer.headers, "idempotency-key": key}
    )
    problem(cancel, 409, "idempotency_key_reused")
    assert len(await checkouts_of(db, viewer.user_id)) == 1


async def test_parallel_requests_with_one_key_make_one_checkout(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    key = f"sub-{uuid.uuid4()}"
    answers = await asyncio.gather(*(post(client, viewer, {"plan_code": plans.high}, key) for _ in range(5)))
    assert [answer.status_code for answer in answers] == [201] * 5, [a.text for a in answers]
    assert len({answer.json()["checkout_id"] for answer in answers}) == 1
    assert len(await checkouts_of(db, viewer.user_id)) == 1


async def test_a_failed_request_frees_its_key(
    client: httpx.AsyncClient, viewer: SignedIn, plans: PlanSet
) -> None:
    key = f"sub-{uuid.uuid4()}"
    problem(
        await post(client, viewer, {"plan_code": plans.high, "currency": "JPY"}, key), 404, "price_not_found"
    )
    # Nothing was kept under the key: the corrected request with the same key... is another body, so the
    # client uses a new key; the same body retried runs again (and fails again the same way).
    problem(
        await post(client, viewer, {"plan_code": plans.high, "currency": "JPY"}, key), 404, "price_not_found"
    )
    assert (await post(client, viewer, {"plan_code": plans.high}, key)).status_code == 201


async def test_without_a_key_each_request_is_new(
    client: httpx.AsyncClient, db: Db, viewer: SignedIn, plans: PlanSet
) -> None:
    first = await post(client, viewer, {"plan_code": plans.high}, None)
    second = await post(client, viewer, {"plan_code": plans.high}, None)
    assert first.status_code == second.status_code == 201
    assert first.json()["checkout_id"] != second.json()["checkout_id"]
    assert len(await checkouts_of(db, viewer.user_id)) == 2


# --- the module --------------------------------------------------------------------------------------------


def test_provider_keys() -> None:
    user = uuid.uuid4()
    key = idempotency.provider_key(user_id=user, key="k1", operation="subscribe")
    assert key == idempotency.provider_key(user_id=str(user), key="k1", operation="subscribe")
    assert key != idempotency.provider_key(user_id=user, key="k1", operation="change")
    assert key != idempotency.provider_key(user_id=uuid.uuid4(), key="k1", operation="subscribe")
    assert key != idempotency.provider_key(user_id=user, key="k2", operation="subscribe")
    random_one = idempotency.provider_key(user_id=user, key=None, operation="subscribe")
    assert random_one != idempotency.provider_key(user_id=user, key=None, operation="subscribe")
    assert len(idempotency.provider_key(user_id=user, key="x" * 255, operation="o" * 300)) <= 255


async def test_begin_finish_replay_expiry_and_purge(viewer: SignedIn, clock: Clock) -> None:
    key = f"unit-{uuid.uuid4()}"
    clock.advance(-2 * 86400)  # recorded two days ago: past the 24 h retention today
    async with standalone() as conn:
        assert (
            await idempotency.begin(conn, user_id=viewer.user_id, key=key, scope="purchase", body={"a": 1})
            is None
        )
        await idempotency.finish(
            conn, user_id=viewer.user_id, key=key, status_code=201, response={"id": uuid.UUID(int=1)}
        )
    async with standalone() as conn:
        replay = await idempotency.begin(
            conn, user_id=viewer.user_id, key=key, scope="purchase", body={"a": 1}
        )
    assert replay == idempotency.Replay(201, {"id": str(uuid.UUID(int=1))})
    async with standalone() as conn:
        with pytest.raises(Conflict) as raised:
            await idempotency.begin(conn, user_id=viewer.user_id, key=key, scope="subscribe", body={"a": 1})
    assert raised.value.code == "idempotency_key_reused"
    async with standalone() as conn:
        assert await idempotency.begin(conn, user_id=viewer.user_id, key=None, scope="x", body={}) is None
        await idempotency.finish(conn, user_id=viewer.user_id, key=None, status_code=200, response={})

    clock.advance(2 * 86400)
    async with standalone() as conn:  # not purged yet, but past retention: the key is new again
        assert (
            await idempotency.begin(conn, user_id=viewer.user_id, key=key, scope="subscribe", body={}) is None
        )
        # rolled back below: the old record stays for the purge
        await conn.rollback()
    async with standalone() as conn:
        purged = await idempotency.purge(conn, older_than=payments_clock.now() - timedelta(hours=24))
    assert purged >= 1
    gone = await _count(viewer, key)
    assert gone == 0


async def _count(viewer: SignedIn, key: str) -> int:
    async with standalone() as conn:
        cursor = await conn.execute(
            "select count(*) from public.payment_idempotency where user_id = %s and key = %s",
            (viewer.user_id, key),
        )
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
