"""Idempotency keys of sandbox writes: the first answer is stored under the key and replayed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shared.payments.providers.base import ProviderError
from shared.payments.sandbox.store import Obj, external, insert_object, load_object

if TYPE_CHECKING:
    from shared.payments.sandbox.store import Conn


async def idempotent(key: str, operation: str, params: Obj, action: Callable[[Conn], Awaitable[Obj]]) -> Obj:
    """Run `action` once per key in its own committed transaction; a repeat gets the first answer back."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    record_id = "idem_sbx_" + hashlib.sha256(key.encode()).hexdigest()
    async with external() as conn:
        # Two calls with one key at once: the second waits here, then finds the first one's answer.
        await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", (record_id,))
        stored = await load_object(conn, record_id, "idempotency")
        if stored is not None:
            if stored["operation"] != operation or stored["params"] != digest:
                raise ProviderError(
                    "This idempotency key was already used with other parameters.", code="idempotency_error"
                )
            response: Obj = stored["response"]
            return response
        response = await action(conn)
        await insert_object(
            conn,
            record_id,
            "idempotency",
            {"id": record_id, "key": key, "operation": operation, "params": digest, "response": response},
        )
        return response
