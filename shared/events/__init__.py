"""Domain events: written in the emitting transaction, delivered through the job queue to each subscriber.

    emit(conn, "media.transcode.ready", {...})      # in the caller's transaction, never commits
    @subscribe("media.transcode.ready")             # in a module listed in shared.jobs.HANDLER_MODULES
    async def on_ready(event: DomainEvent) -> None  # at-least-once: must be idempotent

One `events.deliver` job is queued per subscriber, so a failing subscriber is retried (with backoff) alone.
"""

from shared.events.registry import DomainEvent, Subscriber, subscribe, subscribers, unsubscribe
from shared.events.service import DELIVER_KIND, emit

__all__ = ["DELIVER_KIND", "DomainEvent", "Subscriber", "emit", "subscribe", "subscribers", "unsubscribe"]
