"""Mail logic: queue a rendered message in the caller's transaction, deliver it from the job queue."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from shared.errors import NotFound
from shared.infra.queue.postgres import enqueue_in_transaction
from shared.mail import repository, templates
from shared.mail.schemas import OutboxMessage, OutgoingMail
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.mail.backends import Mailer

logger = logging.getLogger("cinema.mail")

DELIVER_KIND = "mail.deliver"
# Someone is waiting at a screen for a verification or reset link: ahead of media work in the queue.
_PRIORITY = 10
_LINK = re.compile(r"https?://[^\s<>\"']+")
DeliveryResult = Literal["sent", "already_sent", "missing"]


def _lifetime(minutes: int) -> str:
    """A token lifetime as a person says it: "30 minutes", "24 hours", "3 days"."""
    if minutes % 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    if hours >= 48 and hours % 24 == 0:
        return f"{hours // 24} days"
    return "1 hour" if hours == 1 else f"{hours} hours"


def _defaults(settings: Settings) -> dict[str, str]:
    """Values every template may use; all come from settings, never from a request."""
    return {
        "site_url": str(settings.public_base_url).rstrip("/") + "/",
        "email_link_lifetime": _lifetime(settings.email_token_ttl_minutes),
        "reset_link_lifetime": _lifetime(settings.reset_token_ttl_minutes),
    }


def _check_address(to: str) -> str:
    address = to.strip()
    # Callers pass validated addresses; this only stops a bug from reaching a provider or a header.
    if not 3 <= len(address) <= 320 or "@" not in address or any(not c.isprintable() for c in address):
        raise ValueError(f"not a usable email address: {to!r}")
    return address


async def queue_mail(
    conn: AsyncConnection[Any],
    *,
    to: str,
    template: str,
    data: dict[str, str],
    user_id: UUID | None = None,
) -> UUID:
    """Render, store and queue a message in the caller's transaction (never commits)."""
    # Unknown template or missing/unsafe data raise ValueError: a programming error, nothing is written.
    # The job row shares the transaction (transactional outbox): a request that rolls back sends nothing.
    rendered = templates.render(template, {**_defaults(get_settings()), **data})
    mail_id = await repository.insert_mail(
        conn,
        user_id=user_id,
        to=_check_address(to),
        template=template,
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
    )
    await enqueue_in_transaction(
        conn, DELIVER_KIND, {"id": str(mail_id)}, priority=_PRIORITY, dedup_key=f"mail:{mail_id}"
    )
    return mail_id


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def deliver_mail(
    *, mail_id: UUID, attempt: int, max_attempts: int, mailer: Mailer | None = None
) -> DeliveryResult:
    """Send one outbox message unless already sent, recording the outcome on its row; failures re-raise."""
    # A failure is counted on the row and re-raised so the queue retries; on the last attempt, or when
    # the provider refused the message for good (PermanentJobError), the row ends 'failed'.
    from shared.infra.db import get_pool
    from shared.infra.queue.worker import PermanentJobError
    from shared.mail.backends import get_mailer

    pool = await get_pool()
    # Read, then send outside any transaction: no connection is held while the provider answers.
    async with pool.connection() as conn:
        row = await repository.get_mail(conn, mail_id)
    if row is None:
        # Deleted meanwhile (e.g. with its account): there is nothing left to send.
        logger.warning("mail gone before delivery", extra={"mail_id": str(mail_id)})
        return "missing"
    if row["state"] == "sent":
        return "already_sent"  # a redelivered job: the message went out already
    message = OutgoingMail(
        id=mail_id,
        to=row["to_address"],
        template=row["template"],
        subject=row["subject"],
        text=row["text_body"],
        html=row["html_body"],
    )
    sender = mailer or get_mailer(get_settings())
    try:
        provider_message_id = await sender.send(message)
    except Exception as error:
        final = isinstance(error, PermanentJobError) or attempt >= max_attempts
        try:
            async with pool.connection() as conn:
                await repository.record_failure(conn, mail_id, error=_describe(error), final=final)
        except Exception:  # the queue's retry matters more than our bookkeeping
            logger.exception("recording a mail failure failed", extra={"mail_id": str(mail_id)})
        raise
    # A crash between the send and this update sends the message again on redelivery: at least once.
    async with pool.connection() as conn:
        await repository.mark_sent(conn, mail_id, provider_message_id=provider_message_id or None)
    logger.info("mail sent", extra={"mail_id": str(mail_id), "template": message.template})
    return "sent"


def require_dev_outbox(settings: Settings) -> None:
    """The outbox is readable only where mail is fake (local, test); elsewhere it does not exist."""
    if settings.app_env not in ("local", "test"):
        raise NotFound("Not Found")  # the same answer as a path no route serves


def extract_links(text: str) -> list[str]:
    """The http(s) URLs in a text body, in order, without trailing punctuation."""
    return [match.rstrip(".,;:!?)") for match in _LINK.findall(text)]


def _read(row: dict[str, Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        user_id=row["user_id"],
        to=row["to_address"],
        template=row["template"],
        subject=row["subject"],
        text_body=row["text_body"],
        html_body=row["html_body"],
        state=row["state"],
        attempts=row["attempts"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        links=extract_links(row["text_body"]),
    )


async def list_outbox(conn: AsyncConnection[Any], *, to: str | None, limit: int) -> list[OutboxMessage]:
    """The newest messages, optionally only those to one address."""
    rows = await repository.list_mail(conn, to=to.strip() if to else None, limit=limit)
    return [_read(row) for row in rows]


async def get_outbox_message(conn: AsyncConnection[Any], *, mail_id: UUID) -> OutboxMessage:
    """One message, or NotFound."""
    row = await repository.get_mail(conn, mail_id)
    if row is None:
        raise NotFound("No message with this id in the outbox.", code="mail_not_found")
    return _read(row)


async def purge_old_mail(*, settings: Settings) -> int:
    """Forget delivered or failed messages past MAIL_RETENTION_DAYS (personal data; own transaction)."""
    from shared.infra.db import get_pool

    pool = await get_pool()
    async with pool.connection() as conn:
        return await repository.purge_finished(conn, older_than_days=settings.mail_retention_days)
