"""Subscriptions: the stored row (the provider's state as last read), requests and the viewer's view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from shared.plans.money import is_currency

Interval = Literal["month", "year"]
Status = Literal[
    "incomplete", "incomplete_expired", "trialing", "active", "past_due", "unpaid", "canceled", "paused"
]
PlanCode = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{1,39}$", examples=["standard"])]


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _currency(value: str) -> str:
    if not is_currency(value):
        raise PydanticCustomError(
            "invalid_currency", "must be a three-letter ISO 4217 currency code, e.g. 'USD'"
        )
    return value


Currency = Annotated[str, BeforeValidator(_upper), AfterValidator(_currency)]


class SubscriptionRow(BaseModel):
    """One subscriptions row: the provider's subscription as last read, with our grace bookkeeping."""

    id: uuid.UUID
    user_id: uuid.UUID
    provider: str
    provider_ref: str
    customer_ref: str | None
    plan_code: str
    price_id: uuid.UUID | None
    status: Status
    billing_interval: Interval | None
    currency: str | None
    amount_minor: int | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None
    ended_at: datetime | None
    past_due_since: datetime | None
    grace_ends_at: datetime | None
    created_at: datetime
    updated_at: datetime


# --- requests -------------------------------------------------------------------------------------------


class SubscribeRequest(BaseModel):
    """Start a subscription: the plan, its billing interval and the currency to pay in."""

    model_config = ConfigDict(extra="forbid")

    plan_code: PlanCode
    interval: Interval = "month"
    currency: Currency | None = Field(default=None, description="default PAYMENTS_DEFAULT_CURRENCY")


class ChangePlanRequest(BaseModel):
    """Move the live subscription to another plan or interval (prorated)."""

    model_config = ConfigDict(extra="forbid")

    plan_code: PlanCode
    interval: Interval | None = Field(default=None, description="default: the current interval")


# --- responses ------------------------------------------------------------------------------------------


class CheckoutStarted(BaseModel):
    """Where to send the viewer to pay (the provider's hosted checkout)."""

    checkout_id: str
    checkout_url: str
    plan_code: str
    interval: Interval
    currency: str
    amount_minor: int
    trial_days: int = Field(description="days free before the first charge (first subscription only)")


class Limits(BaseModel):
    """What playback allows the account now: concurrent streams, quality, ads."""

    tier: int
    max_streams: int
    max_height: int
    ads: bool


class SubscriptionView(BaseModel):
    """The account's subscription (or the free plan) with the limits in effect now."""

    plan_code: str
    plan_name: str
    is_free: bool
    status: Status | Literal["free"]
    subscription_id: uuid.UUID | None = None
    provider: str | None = None
    interval: Interval | None = None
    currency: str | None = None
    amount_minor: int | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    trial_end: datetime | None = None
    past_due_since: datetime | None = None
    grace_ends_at: datetime | None = None
    paid_access: bool = Field(description="the plan's limits apply now (false: free limits)")
    paid_access_until: datetime | None = Field(
        default=None, description="when the plan's limits stop unless renewed (leeway and grace included)"
    )
    limits: Limits


class PortalLink(BaseModel):
    """A link to the provider's customer portal (cards, billing details)."""

    url: str
