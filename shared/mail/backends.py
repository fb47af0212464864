"""Mail backends: the outbox table itself (local default) or SendGrid's v3 API through its SDK."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, Protocol

from shared.infra.queue.worker import PermanentJobError
from shared.mail.schemas import OutgoingMail

if TYPE_CHECKING:
    from shared.settings import Settings

logger = logging.getLogger("cinema.mail")


class MailDeliveryError(Exception):
    """A transient delivery failure (provider busy or down, network): the queue retries with backoff."""


class Mailer(Protocol):
    """Hands one message to a mail provider."""

    async def send(self, message: OutgoingMail) -> str:
        """Deliver the message; return the provider's message id."""
        ...


class OutboxMailer:
    """MAIL_BACKEND=outbox: the outbox row is the inbox (readable at /api/v1/dev/outbox), nothing leaves."""

    async def send(self, message: OutgoingMail) -> str:
        """Nothing to hand over: the stored row is what a person reads."""
        return f"outbox:{message.id}"


class SendGridMailer:
    """MAIL_BACKEND=sendgrid: POST /v3/mail/send with the official SDK (blocking, so in a thread)."""

    def __init__(self, *, api_key: str, host: str, mail_from: str, timeout: float = 10.0) -> None:
        self.api_key = api_key
        # The SDK joins host and "/v3/..." itself: a trailing slash would double it.
        self.host = host.rstrip("/")
        self.mail_from = mail_from
        self.timeout = timeout

    async def send(self, message: OutgoingMail) -> str:
        """Send through SendGrid; 4xx (but 429) is permanent, 429/5xx/network are worth a retry."""
        return await asyncio.to_thread(self._send, message)

    def _send(self, message: OutgoingMail) -> str:
        import sendgrid
        from python_http_client import exceptions
        from sendgrid.helpers.mail import Category, CustomArg, Mail
        from sendgrid.helpers.mail.exceptions import ApiKeyIncludedException

        client = sendgrid.SendGridAPIClient(self.api_key, host=self.host)
        client.client.timeout = self.timeout  # the SDK's default is no timeout at all
        try:
            mail = Mail(
                from_email=self.mail_from,
                to_emails=message.to,
                subject=message.subject,
                plain_text_content=message.text,
                html_content=message.html,
            )
            # Both come back in SendGrid's event webhook and activity feed, per template and per message.
            mail.custom_arg = [CustomArg("template", message.template), CustomArg("mail_id", str(message.id))]
            mail.category = Category(message.template)
            body = mail.get()
        except ApiKeyIncludedException as error:  # the SDK refuses content that looks like an API key
            raise PermanentJobError("SendGrid SDK refused the message: it contains an API key") from error
        try:
            response = client.send(body)
        except exceptions.HTTPError as error:
            status = int(error.status_code)
            reason = f"SendGrid answered {status}: {_errors(error.body)}"
            if 400 <= status < 500 and status != 429:
                if status in (401, 403):
                    logger.error("SendGrid rejected the API key", extra={"status": status})
                raise PermanentJobError(reason) from error
            raise MailDeliveryError(reason) from error
        except OSError as error:  # URLError, timeouts, refused connections
            raise MailDeliveryError(f"SendGrid unreachable: {error}") from error
        return str(response.headers.get("X-Message-Id") or "")


def _errors(body: Any) -> str:
    """SendGrid's {"errors": [{"message", "field"}]} as one line; the raw text when it is not that."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        errors = json.loads(text)["errors"]
        return "; ".join(
            f"{item.get('field')}: {item.get('message')}" if item.get("field") else str(item.get("message"))
            for item in errors
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return text[:500] or "no details"


def get_mailer(settings: Settings) -> Mailer:
    """The backend chosen by MAIL_BACKEND."""
    if settings.mail_backend == "sendgrid":
        if not settings.sendgrid_api_key:  # the settings validator already requires it
            raise ValueError("SENDGRID_API_KEY is required when MAIL_BACKEND=sendgrid")
        return SendGridMailer(
            api_key=settings.sendgrid_api_key, host=str(settings.sendgrid_host), mail_from=settings.mail_from
        )
    return OutboxMailer()
