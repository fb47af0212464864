"""HTTP routes of the dev group: the local outbox, so a person (or a test) can read mail and click links."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from shared.errors import NotFound
from shared.infra.db import Tx
from shared.mail import service
from shared.mail.schemas import OutboxList, OutboxMessage
from shared.settings import get_settings

_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details with the platform's stable `code`",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail", "code"],
}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}}}


def _local_only() -> None:
    # Checked per request (settings may differ from import time), and before any database checkout.
    service.require_dev_outbox(get_settings())


_UNAVAILABLE = _problem("`service_unavailable` / `database_timeout`: the database is unreachable or slow")
_NOT_LOCAL = "`not_found`: not running locally (APP_ENV is neither local nor test), as if no route existed"

router = APIRouter(prefix="/api/v1/dev", tags=["dev"], dependencies=[Depends(_local_only)])


@router.get(
    "/outbox",
    response_model=OutboxList,
    summary="Local outbox: newest emails first (local and test only)",
    responses={
        404: _problem(_NOT_LOCAL),
        422: _problem("`validation_failed`: bad `limit` or `to`"),
        503: _UNAVAILABLE,
    },
)
async def list_outbox(
    tx: Tx,
    to: Annotated[str | None, Query(max_length=320, description="Only mail to this address")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="How many messages")] = 20,
) -> OutboxList:
    """The newest outbox messages, with the links found in each text body."""
    return OutboxList(items=await service.list_outbox(tx, to=to, limit=limit))


@router.get(
    "/outbox/{mail_id}",
    response_model=OutboxMessage,
    summary="One email from the local outbox (local and test only)",
    responses={
        404: _problem(f"`mail_not_found`: no such message; {_NOT_LOCAL}"),
        422: _problem("`validation_failed`: the id is not a UUID"),
        503: _UNAVAILABLE,
    },
)
async def get_outbox_message(tx: Tx, mail_id: UUID) -> OutboxMessage:
    """One outbox message."""
    return await service.get_outbox_message(tx, mail_id=mail_id)


@router.get(
    "/outbox/{mail_id}/html",
    response_class=HTMLResponse,
    summary="An email's HTML body, to view in a browser (local and test only)",
    responses={
        200: {"content": {"text/html": {}}, "description": "The HTML body as the recipient would see it"},
        404: _problem(f"`mail_not_found`: no such message or it has no HTML body; {_NOT_LOCAL}"),
        422: _problem("`validation_failed`: the id is not a UUID"),
        503: _UNAVAILABLE,
    },
)
async def get_outbox_html(tx: Tx, mail_id: UUID) -> HTMLResponse:
    """The message's HTML body as text/html, so a person can click its buttons."""
    message = await service.get_outbox_message(tx, mail_id=mail_id)
    if message.html_body is None:
        raise NotFound("This message has no HTML body.", code="mail_not_found")
    # Our own escaped markup, but still mail: no scripts, no remote loads, links stay clickable.
    return HTMLResponse(
        message.html_body,
        headers={
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            "cache-control": "no-store",
        },
    )
