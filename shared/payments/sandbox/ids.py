"""Ids of sandbox objects, shaped like Stripe's with an _sbx_ marker (cus_sbx_..., evt_sbx_...)."""

from __future__ import annotations

import itertools
import secrets
import time


def new_id(prefix: str, hex_chars: int = 24) -> str:
    """A random id such as cus_sbx_<24 hex digits>."""
    return f"{prefix}_sbx_{secrets.token_hex(hex_chars // 2)}"


_event_counter = itertools.count()


def new_event_id() -> str:
    """A new event id (evt_sbx_...)."""
    # Sortable within a process (time, then a counter): equal creation timestamps keep the emission order.
    return f"evt_sbx_{time.time_ns():016x}{next(_event_counter) % 0x10000:04x}{secrets.token_hex(4)}"
