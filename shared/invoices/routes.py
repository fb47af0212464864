"""HTTP routes of invoices (/api/v1/payments/invoices): billing history, one invoice, its printable page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import HTMLResponse

from shared.http.auth import Principal, current_principal
from shared.http.openapi import BEARER_ERRORS, errors
from shared.http.pagination import Page, PageParams, page_params
from shared.infra.db import Tx
from shared.invoices import service
from shared.invoices.html import HEADERS
from shared.invoices.schemas import InvoiceRead, InvoiceSummary
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/payments", tags=["invoices"])

Caller = Annotated[Principal, Depends(current_principal)]
Paging = Annotated[PageParams, Depends(page_params)]
InvoiceId = Annotated[uuid.UUID, Path(description="The invoice's id")]

PRIVATE = "private, no-store"
_UNAVAILABLE = ["service_unavailable", "database_timeout"]
_OWNER = {401: BEARER_ERRORS, 404: ["invoice_not_found"], 422: ["validation_failed"], 503: _UNAVAILABLE}


def _html_responses(by_status: dict[int, list[str]]) -> dict[int | str, dict[str, Any]]:
    responses = errors(by_status)
    responses[200] = {
        "content": {"text/html": {}},
        "description": "The printable invoice (self-contained HTML)",
    }
    return responses


@router.get(
    "/invoices",
    response_model=Page[InvoiceSummary],
    summary="The caller's invoices",
    responses=errors(
        {401: BEARER_ERRORS, 400: ["invalid_cursor"], 422: ["validation_failed"], 503: _UNAVAILABLE}
    ),
)
async def list_invoices(tx: Tx, caller: Caller, page: Paging, response: Response) -> Page[InvoiceSummary]:
    """Every invoice of the account (subscriptions, rentals, purchases), newest first; pass next_cursor."""
    response.headers["cache-control"] = PRIVATE
    return await service.list_for_user(tx, user_id=caller.user_id, page=page)


@router.get(
    "/invoices/{invoice_id}",
    response_model=InvoiceRead,
    summary="One of the caller's invoices",
    responses=errors(_OWNER),
)
async def get_invoice(invoice_id: InvoiceId, tx: Tx, caller: Caller, response: Response) -> InvoiceRead:
    """Lines (periods, prorations), tax lines and totals in minor units; 404 for anyone but the owner."""
    response.headers["cache-control"] = PRIVATE
    return await service.get_for_user(tx, user_id=caller.user_id, invoice_id=invoice_id)


@router.get(
    "/invoices/{invoice_id}/html",
    response_class=HTMLResponse,
    summary="One of the caller's invoices as a printable page",
    responses=_html_responses(_OWNER),
)
async def invoice_html(invoice_id: InvoiceId, tx: Tx, caller: Caller) -> HTMLResponse:
    """A readable, printable invoice (inline CSS, no external resources); 404 for anyone but the owner."""
    page = await service.html_for_user(tx, user_id=caller.user_id, invoice_id=invoice_id)
    return HTMLResponse(page, headers=HEADERS)


@router.get(
    "/invoices/{invoice_id}/view",
    response_class=HTMLResponse,
    summary="An invoice's printable page through the signed link of its receipt email",
    responses=_html_responses(
        {
            403: ["link_invalid"],
            404: ["invoice_not_found"],
            410: ["link_expired"],
            422: ["validation_failed"],
            503: _UNAVAILABLE,
        }
    ),
)
async def invoice_view(
    invoice_id: InvoiceId,
    tx: Tx,
    expires: Annotated[str | None, Query(max_length=20, description="Link expiry (unix seconds)")] = None,
    sig: Annotated[str | None, Query(max_length=128, description="The link's signature")] = None,
) -> HTMLResponse:
    """No sign-in: the link itself (HMAC-signed, expiring) is the permission. 403 if altered, 410 if old."""
    page = await service.html_for_link(
        tx, settings=get_settings(), invoice_id=invoice_id, expires=expires, sig=sig
    )
    return HTMLResponse(page, headers=HEADERS)
