"""Mail values: a message handed to a backend, and the dev outbox's read models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

MailState = Literal["queued", "sent", "failed"]


@dataclass(frozen=True)
class OutgoingMail:
    """One rendered message on its way to a mail backend."""

    id: UUID
    to: str
    template: str
    subject: str
    text: str
    html: str | None


class OutboxMessage(BaseModel):
    """A message as stored in the outbox, with the links of its text body for clicking through."""

    id: UUID
    user_id: UUID | None
    to: str = Field(description="Recipient address")
    template: str
    subject: str
    text_body: str
    html_body: str | None
    state: MailState
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    links: list[str] = Field(description="The http(s) URLs found in the text body, in order")


class OutboxList(BaseModel):
    """The newest outbox messages first."""

    items: list[OutboxMessage]
