"""Plans, plan prices, title offers and pay-per-view events: the service's records and the API's shapes.

Money is integer minor units with an ISO 4217 currency (shared.plans.money formats it). Field errors carry
a stable `type`: pydantic's own codes or invalid_currency; the windows of a pay-per-view event are checked
by the service on the merged state (422 invalid_ppv_window).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from shared.plans.money import format_amount, is_currency

Interval = Literal["month", "year"]
OfferKind = Literal["rental", "purchase", "ppv"]
SingleOfferKind = Literal["rental", "purchase"]
MAX_AMOUNT = 100_000_000  # the schema's ceiling (a million in a two-decimal currency)

_FORBID = ConfigDict(extra="forbid")


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _currency(value: str) -> str:
    if not is_currency(value):
        raise PydanticCustomError(
            "invalid_currency", "must be a three-letter ISO 4217 currency code, e.g. 'USD'"
        )
    return value


# Accepts "usd" and answers "USD": clients often lower-case codes, the database stores them upper-case.
Currency = Annotated[str, BeforeValidator(_upper), AfterValidator(_currency)]
Amount = Annotated[int, Field(gt=0, le=MAX_AMOUNT, description="integer minor units (cents, yen...)")]
PlanCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,39}$")]
Name = Annotated[str, Field(min_length=1, max_length=80)]
Description = Annotated[str, Field(max_length=500)]
Tier = Annotated[int, Field(ge=0, le=10)]
MaxStreams = Annotated[int, Field(ge=1, le=20)]
MaxHeight = Annotated[int, Field(ge=144, le=4320)]
TrialDays = Annotated[int, Field(ge=0, le=365)]
SortOrder = Annotated[int, Field(ge=-1000, le=1000)]
EventName = Annotated[str, Field(min_length=1, max_length=200)]


# --- service records ----------------------------------------------------------------------------------


class Plan(BaseModel):
    """What a subscriber gets (the free plan is_free: no prices, never subscribed to)."""

    code: str
    name: str
    description: str
    tier: int
    max_streams: int
    max_height: int
    ad_free: bool
    trial_days: int
    is_free: bool
    active: bool
    sort_order: int


class PlanPrice(BaseModel):
    """One price of a plan (immutable: a new amount is a new row, the old one inactive)."""

    id: uuid.UUID
    plan_code: str
    currency: str
    interval: Interval
    amount_minor: int
    provider: str | None = None
    provider_price_ref: str | None = None
    active: bool


class TitleOffer(BaseModel):
    """What renting, buying or a pay-per-view ticket costs in one currency (ppv: with the event's windows)."""

    id: uuid.UUID
    title_id: uuid.UUID
    kind: OfferKind
    currency: str
    amount_minor: int
    ppv_event_id: uuid.UUID | None = None
    ppv_event_name: str | None = None
    sale_starts_at: datetime | None = None
    sale_ends_at: datetime | None = None
    view_starts_at: datetime | None = None
    view_ends_at: datetime | None = None


class PpvEvent(BaseModel):
    """A pay-per-view event: sold during one window, watchable during another."""

    id: uuid.UUID
    title_id: uuid.UUID
    name: str
    sale_starts_at: datetime
    sale_ends_at: datetime
    view_starts_at: datetime
    view_ends_at: datetime


# --- responses ------------------------------------------------------------------------------------------


class PriceRead(BaseModel):
    """A price as viewers see it (amount in minor units and formatted)."""

    id: uuid.UUID
    currency: str
    interval: Interval
    amount_minor: int
    display: str

    @classmethod
    def of(cls, price: PlanPrice) -> PriceRead:
        """From the service record."""
        return cls(
            id=price.id,
            currency=price.currency,
            interval=price.interval,
            amount_minor=price.amount_minor,
            display=format_amount(price.amount_minor, price.currency),
        )


class PlanRead(Plan):
    """A plan with its active prices (in the requested currency, or all)."""

    prices: list[PriceRead]


class PlanList(BaseModel):
    """The public plans list, in display order (the free plan included)."""

    currency: str | None
    plans: list[PlanRead]


class AdminPriceRead(PriceRead):
    """A price as admins see it: with the provider's price once created there."""

    provider: str | None
    provider_price_ref: str | None


class AdminPlanRead(Plan):
    """A plan with every active price and its provider references."""

    prices: list[AdminPriceRead]


class OfferRead(BaseModel):
    """One active offer in one currency."""

    id: uuid.UUID
    currency: str
    amount_minor: int
    display: str

    @classmethod
    def of(cls, offer: TitleOffer) -> OfferRead:
        """From the service record."""
        return cls(
            id=offer.id,
            currency=offer.currency,
            amount_minor=offer.amount_minor,
            display=format_amount(offer.amount_minor, offer.currency),
        )


class PpvEventRead(PpvEvent):
    """A pay-per-view event with its ticket prices (and, for viewers, whether it is on sale now)."""

    on_sale: bool
    prices: list[OfferRead]


class TitleOffers(BaseModel):
    """What a viewer can pay for on a title: rent, buy, and pay-per-view events on sale or upcoming."""

    title_id: uuid.UUID
    currency: str | None
    rental: list[OfferRead]
    purchase: list[OfferRead]
    ppv_events: list[PpvEventRead]


class AdminTitleOffers(BaseModel):
    """A title's active rental and purchase offers after a change."""

    title_id: uuid.UUID
    rental: list[OfferRead]
    purchase: list[OfferRead]


# --- requests -------------------------------------------------------------------------------------------


class PlanCreate(BaseModel):
    """A new paid plan (the free plan exists already and is the only one)."""

    model_config = _FORBID

    code: PlanCode
    name: Name
    description: Description = ""
    tier: Tier = 0
    max_streams: MaxStreams
    max_height: MaxHeight
    ad_free: bool = True
    trial_days: TrialDays = 0
    active: bool = True
    sort_order: SortOrder = 0


class PlanUpdate(BaseModel):
    """PATCH of a plan: the fields sent change, null is refused (none of them is optional)."""

    model_config = _FORBID

    name: Name | None = None
    description: Description | None = None
    tier: Tier | None = None
    max_streams: MaxStreams | None = None
    max_height: MaxHeight | None = None
    ad_free: bool | None = None
    trial_days: TrialDays | None = None
    active: bool | None = None
    sort_order: SortOrder | None = None


class PriceSet(BaseModel):
    """The price of a plan in a currency and interval (a changed amount makes a new price row)."""

    model_config = _FORBID

    currency: Currency
    interval: Interval
    amount_minor: Amount


class OfferSet(BaseModel):
    """The rental or purchase price of a title in a currency."""

    model_config = _FORBID

    kind: SingleOfferKind
    currency: Currency
    amount_minor: Amount


class PpvPriceSet(BaseModel):
    """A pay-per-view event's ticket price in a currency."""

    model_config = _FORBID

    currency: Currency
    amount_minor: Amount


class PpvEventCreate(BaseModel):
    """A new pay-per-view event: the sale ends no later than the viewing does."""

    model_config = _FORBID

    title_id: uuid.UUID
    name: EventName
    sale_starts_at: AwareDatetime
    sale_ends_at: AwareDatetime
    view_starts_at: AwareDatetime
    view_ends_at: AwareDatetime
    prices: list[PpvPriceSet] = Field(default_factory=list, max_length=50)


class PpvEventUpdate(BaseModel):
    """PATCH of an event: the fields sent change; the windows are checked on the result."""

    model_config = _FORBID

    name: EventName | None = None
    sale_starts_at: AwareDatetime | None = None
    sale_ends_at: AwareDatetime | None = None
    view_starts_at: AwareDatetime | None = None
    view_ends_at: AwareDatetime | None = None
