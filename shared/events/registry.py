"""Who listens to which domain event: filled at import time by @subscribe."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar


@dataclass(frozen=True)
class DomainEvent:
    """One emitted event as a subscriber receives it."""

    id: uuid.UUID
    name: str
    payload: dict[str, Any]
    created_at: datetime


Subscriber = Callable[[DomainEvent], Awaitable[None]]
S = TypeVar("S", bound=Subscriber)

# event name -> subscriber id -> handler. The id is stable (module.qualname unless given) because queued
# deliveries name it: a renamed subscriber would orphan deliveries already in the queue.
_SUBSCRIBERS: dict[str, dict[str, Subscriber]] = {}


def subscribe(name: str, *, subscriber_id: str | None = None) -> Callable[[S], S]:
    """Decorator: call the async handler(event) for every event `name` (at least once; be idempotent)."""

    def decorator(handler: S) -> S:
        key = subscriber_id or f"{handler.__module__}.{handler.__qualname__}"
        existing = _SUBSCRIBERS.setdefault(name, {}).get(key)
        if existing is not None and existing is not handler:
            raise ValueError(f"subscriber {key!r} of {name!r} is already registered")
        _SUBSCRIBERS[name][key] = handler
        return handler

    return decorator


def unsubscribe(name: str, subscriber_id: str) -> None:
    """Remove a subscriber (tests)."""
    _SUBSCRIBERS.get(name, {}).pop(subscriber_id, None)


def subscribers(name: str) -> dict[str, Subscriber]:
    """The subscribers of an event, by id."""
    return dict(_SUBSCRIBERS.get(name, {}))
