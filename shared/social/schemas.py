"""Request and response shapes of the social login endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LinkRequest(BaseModel):
    """Start linking a provider to the signed-in account."""

    model_config = ConfigDict(extra="forbid")
    redirect_to: str = Field(default="/", max_length=512, description="relative path to return to")


class AuthorizeUrl(BaseModel):
    """Where to send the browser next (the provider's consent page)."""

    authorize_url: str


class ExchangeRequest(BaseModel):
    """The one-time login code from the callback's URL fragment."""

    model_config = ConfigDict(extra="forbid")
    login_code: str = Field(min_length=20, max_length=200)
