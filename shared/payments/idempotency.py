"""Idempotency-Key for commerce's POSTs: the same key and body replay the first answer, never a second charge.

A request with a key reserves it (user, key) in its own transaction by inserting the record; a parallel
request with the same key waits on that uncommitted row (the unique index) and, once the first commits,
finds it finished and replays its answer. When the first request fails its transaction rolls back, the
reservation with it, so a retry runs again; the provider is then called with the same `provider_key`, so
it still never creates a second customer or checkout. The same key with another body or for another
operation is a 409 (idempotency_key_reused). Records are purged after IDEMPOTENCY_RETENTION_HOURS.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Header

from shared.errors import BadRequest, Conflict
from shared.infra.db import fetch_one
from shared.payments import clock

if TYPE_CHECKING:
    from psycopg import AsyncConnection

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Replay:
    """The first answer given under a key: return it as is."""

    status_code: int
    response: dict[str, Any]


def _valid(key: str) -> bool:
    # Visible ASCII only: the key travels in headers (ours and the provider's) and in logs.
    return 1 <= len(key) <= MAX_KEY_LENGTH and all("\x21" <= char <= "\x7e" for char in key)


async def _idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Same key and body within 24 h: the same answer and never a second payment; "
            "1 to 255 visible ASCII characters (a UUID is a good choice)",
        ),
    ] = None,
) -> str | None:
    if key is None:
        return None
    if not _valid(key):
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces).",
            code="invalid_idempotency_key",
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(_idempotency_key)]


def request_hash(scope: str, body: Mapping[str, Any]) -> str:
    """A stable digest of the operation and its body (key order does not matter)."""
    canonical = json.dumps({"scope": scope, "body": body}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _reused() -> Conflict:
    return Conflict(
        "This Idempotency-Key was already used for another request; use a new key for a new request.",
        code="idempotency_key_reused",
    )


async def begin(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID | str,
    key: str | None,
    scope: str,
    body: Mapping[str, Any],
) -> Replay | None:
    """Reserve the key in this transaction (None: go on), or the first answer to replay; 409 on reuse."""
    if key is None:
        return None
    user = uuid.UUID(str(user_id))
    digest = request_hash(scope, body)
    now = clock.now()
    # On conflict with a row another transaction has not committed yet, this waits for it: a parallel
    # request with the same key is serialized behind the first and then replays its answer.
    inserted = await fetch_one(
        conn,
        "insert into public.payment_idempotency (user_id, key, scope, request_hash, created_at) "
        "values (%s, %s, %s, %s, %s) on conflict (user_id, key) do nothing returning key",
        (user, key, scope, digest, now),
    )
    if inserted is not None:
        return None
    row = await fetch_one(
        conn,
        "select scope, request_hash, status_code, response, created_at from public.payment_idempotency "
        "where user_id = %s and key = %s for update",
        (user, key),
    )
    if row is None:  # purged between the two statements: take it afresh
        return await begin(conn, user_id=user, key=key, scope=scope, body=body)
    from shared.settings import get_settings

    retention = timedelta(hours=get_settings().idempotency_retention_hours)
    if row["created_at"] < now - retention:
        # Past retention the key is new again (not yet purged by the daily maintenance).
        await conn.execute(
            "update public.payment_idempotency set scope = %s, request_hash = %s, status_code = null, "
            "response = null, created_at = %s where user_id = %s and key = %s",
            (scope, digest, now, user, key),
        )
        return None
    if row["scope"] != scope or row["request_hash"] != digest:
        raise _reused()
    if row["status_code"] is None:
        # Committed without an answer: the request that reserved it is still running elsewhere (only
        # possible when a caller committed early); the client retries the same request later.
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code="idempotency_key_in_use",
        )
    return Replay(status_code=int(row["status_code"]), response=dict(row["response"] or {}))


async def finish(
    conn: AsyncConnection[Any],
    *,
    user_id: uuid.UUID | str,
    key: str | None,
    status_code: int,
    response: Mapping[str, Any],
) -> None:
    """Store the answer under the key (in the same transaction as the work it describes)."""
    if key is None:
        return
    from psycopg.types.json import Jsonb

    payload = json.loads(json.dumps(dict(response), default=str))  # UUIDs, datetimes -> JSON as sent
    await conn.execute(
        "update public.payment_idempotency set status_code = %s, response = %s "
        "where user_id = %s and key = %s",
        (status_code, Jsonb(payload), uuid.UUID(str(user_id)), key),
    )


def provider_key(*, user_id: uuid.UUID | str, key: str | None, operation: str) -> str:
    """The idempotency key for one provider call: stable for a client key, random without one."""
    if key is None:
        return f"cinema:{operation}:{uuid.uuid4()}"[:MAX_KEY_LENGTH]
    # Hashed with the user: the provider's keys are global, a client's key is only unique per account.
    digest = hashlib.sha256(f"{uuid.UUID(str(user_id))}\x00{key}".encode()).hexdigest()
    return f"cinema:{operation}:{digest}"[:MAX_KEY_LENGTH]


async def purge(conn: AsyncConnection[Any], *, older_than: datetime) -> int:
    """Delete records created before `older_than` (daily maintenance); how many."""
    cursor = await conn.execute("delete from public.payment_idempotency where created_at < %s", (older_than,))
    return cursor.rowcount
