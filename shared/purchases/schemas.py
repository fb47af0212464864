"""Models of rentals, purchases and pay-per-view tickets: the purchase request, its checkout, the records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What the viewer asks for (verbs), and what the record is (nouns, as in title offers and entitlements).
PurchaseRequestKind = Literal["rent", "buy", "ppv"]
PurchaseKind = Literal["rental", "purchase", "ppv"]
PurchaseStatus = Literal["pending", "paid", "failed", "canceled", "refunded", "disputed"]

KIND_OF_REQUEST: dict[str, PurchaseKind] = {"rent": "rental", "buy": "purchase", "ppv": "ppv"}


class PurchaseInput(BaseModel):
    """POST /purchase: rent or buy a title, or buy a ticket for one of its pay-per-view events."""

    model_config = ConfigDict(extra="forbid")

    title_id: uuid.UUID
    kind: PurchaseRequestKind = Field(description="rent (48 h from first play), buy (permanent) or ppv")
    ppv_event_id: uuid.UUID | None = Field(
        default=None, description="The event (kind ppv only; omitted: the title's event on sale now)"
    )
    currency: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{3}$",
        description="ISO 4217 code; PAYMENTS_DEFAULT_CURRENCY when omitted",
    )

    @model_validator(mode="after")
    def _event_only_for_ppv(self) -> PurchaseInput:
        if self.kind != "ppv" and self.ppv_event_id is not None:
            raise ValueError("ppv_event_id is only allowed with kind ppv")
        return self


class PurchaseStarted(BaseModel):
    """A pending purchase and the hosted checkout to send the viewer to."""

    purchase_id: uuid.UUID
    checkout_id: str
    checkout_url: str | None
    kind: PurchaseKind
    amount_minor: int
    currency: str


class TitleRef(BaseModel):
    """The title bought (its name as it was then; id None when the title was deleted since)."""

    id: uuid.UUID | None
    name: str


class RentalState(BaseModel):
    """A paid rental's clock: start by `start_by`, then playable until `expires_at`."""

    start_by: datetime | None = Field(description="Play must start before this")
    play_window_seconds: int | None
    first_played_at: datetime | None
    expires_at: datetime | None = Field(description="First play + the play window (None until first play)")
    playable_now: bool


class ViewingWindow(BaseModel):
    """When a pay-per-view ticket plays."""

    ppv_event_id: uuid.UUID | None
    starts_at: datetime | None
    ends_at: datetime | None


class PurchaseRead(BaseModel):
    """A rental, purchase or pay-per-view ticket of the caller, with its entitlement state."""

    id: uuid.UUID
    kind: PurchaseKind
    title: TitleRef
    amount_minor: int
    currency: str
    status: PurchaseStatus
    created_at: datetime
    paid_at: datetime | None
    ended_at: datetime | None = Field(description="Refunded, disputed or canceled at")
    playable_now: bool = Field(description="The entitlement lets the title play right now")
    rental: RentalState | None = None
    viewing_window: ViewingWindow | None = None
