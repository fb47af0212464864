"""HTTP routes of social login (/api/v1/auth/oauth): Google and GitHub sign-in, linking and unlinking."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import RedirectResponse

from shared.accounts import service as accounts_service
from shared.accounts.schemas import MfaChallenge, TokenResponse
from shared.errors import AppError
from shared.http.auth import Principal, current_principal
from shared.http.client_ip import ip_bucket
from shared.http.client_meta import Meta
from shared.http.openapi import BEARER_ERRORS, errors
from shared.infra.db import Tx
from shared.infra.ratelimit import Limit, enforce
from shared.settings import Settings, get_settings
from shared.social import service
from shared.social.schemas import AuthorizeUrl, ExchangeRequest, LinkRequest

logger = logging.getLogger("cinema.social")

router = APIRouter(prefix="/api/v1/auth/oauth", tags=["auth"])

Caller = Annotated[Principal, Depends(current_principal)]
ProviderName = Annotated[str, Path(max_length=32, description="`google` or `github`")]
# A whole sign-in costs three calls (authorize, callback, exchange) from one address.
_LIMIT = Limit(60, 60)
_LIMITED: dict[int, list[str]] = {429: ["rate_limited"], 503: ["service_unavailable"]}
_AUTH = BEARER_ERRORS
# Codes the callback puts in the fragment of its redirect to {PUBLIC_BASE_URL}/auth/callback#error=...
CALLBACK_ERRORS = [
    "oauth_browser_mismatch",
    "oauth_access_denied",
    "oauth_provider_error",
    "oauth_exchange_failed",
    "oauth_invalid_id_token",
    "oauth_provider_unavailable",
    "oauth_email_unverified",
    "identity_in_use",
    "account_disabled",
    "provider_not_configured",
    "conflict",
    "service_unavailable",
]


async def _limit(ip: str | None) -> None:
    await enforce(rules=[_LIMIT.rule(f"oauth:ip:{ip_bucket(ip or '0.0.0.0')}")])  # noqa: S104 - a key


def _set_binding_cookie(response: Response, settings: Settings, binding: str) -> None:
    # SameSite=Lax, not Strict: the cookie must ride along on the provider's top-level redirect back.
    response.set_cookie(
        service.COOKIE,
        binding,
        max_age=service.STATE_SECONDS,
        path=service.COOKIE_PATH,
        secure=service.cookie_secure(settings),
        httponly=True,
        samesite="lax",
    )


def _clear_binding_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        service.COOKIE,
        path=service.COOKIE_PATH,
        secure=service.cookie_secure(settings),
        httponly=True,
        samesite="lax",
    )


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302, headers={"cache-control": "no-store"})


def _to_web_client(settings: Settings, fragment: dict[str, str]) -> RedirectResponse:
    # A fragment, not a query: browsers never send it to a server, so it stays out of logs and Referer.
    return _redirect(f"{service.base_url(settings)}/auth/callback#{urlencode(fragment)}")


def _redirect_doc(description: str) -> dict[int | str, dict[str, Any]]:
    return {302: {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}}


@router.get(
    "/{provider}/authorize",
    status_code=302,
    response_class=RedirectResponse,
    summary="Start signing in with Google or GitHub (redirects to the provider)",
    responses={
        **_redirect_doc("To the provider's consent page; sets the HttpOnly `cinema_oauth` cookie."),
        **errors(
            {
                400: ["invalid_redirect"],
                404: ["provider_not_configured"],
                429: ["rate_limited"],
                503: ["service_unavailable", "oauth_provider_unavailable"],
            }
        ),
    },
)
async def authorize(
    provider: ProviderName,
    meta: Meta,
    redirect_to: Annotated[
        str, Query(max_length=512, description="relative path to return to after signing in")
    ] = "/",
) -> RedirectResponse:
    """Authorization code flow with PKCE (S256), state and (Google) nonce, bound to this browser."""
    await _limit(meta.ip)
    settings = get_settings()
    started = await service.start(
        settings=settings, provider_name=provider, redirect_to=redirect_to, link_user_id=None
    )
    response = _redirect(started.authorize_url)
    _set_binding_cookie(response, settings, started.binding)
    return response


@router.post(
    "/{provider}/link",
    response_model=AuthorizeUrl,
    summary="Start linking Google or GitHub to the signed-in account",
    responses=errors(
        {
            400: ["invalid_redirect"],
            401: _AUTH,
            403: ["recent_sign_in_required"],
            404: ["provider_not_configured"],
            429: ["rate_limited"],
            503: ["service_unavailable", "oauth_provider_unavailable"],
        }
    ),
)
async def link(
    provider: ProviderName,
    response: Response,
    tx: Tx,
    meta: Meta,
    caller: Caller,
    body: LinkRequest | None = None,
) -> AuthorizeUrl:
    """Returns the provider URL to open in this browser; its callback links the identity to the caller."""
    await _limit(meta.ip)
    await accounts_service.require_recent_sign_in(tx, session_id=caller.session_id)
    settings = get_settings()
    started = await service.start(
        settings=settings,
        provider_name=provider,
        redirect_to=body.redirect_to if body else "/",
        link_user_id=caller.user_id,
    )
    _set_binding_cookie(response, settings, started.binding)
    response.headers["cache-control"] = "no-store"
    return AuthorizeUrl(authorize_url=started.authorize_url)


@router.get(
    "/{provider}/callback",
    status_code=302,
    response_class=RedirectResponse,
    summary="The provider's redirect back (redirects to the web client)",
    description=(
        "Redirects to `{PUBLIC_BASE_URL}/auth/callback#login_code=...&redirect_to=...` (exchange the code "
        "at POST /api/v1/auth/oauth/exchange), or on failure to `...#error=<code>&redirect_to=...` with one "
        f"of: {', '.join(f'`{code}`' for code in CALLBACK_ERRORS)}. Only a missing, unknown, expired or "
        "reused state is answered with a problem document."
    ),
    responses={
        **_redirect_doc("To the web client with a one-time login code, or an error code, in the fragment."),
        **errors({400: ["invalid_state"], **_LIMITED}),
    },
)
async def callback(
    provider: ProviderName,
    request: Request,
    tx: Tx,
    meta: Meta,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    state: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> RedirectResponse:
    """Checks state, browser binding, PKCE and the id_token, then signs in (2FA still applies)."""
    await _limit(meta.ip)
    settings = get_settings()
    record = await service.take_state(provider_name=provider, state=state)
    fragment = {"redirect_to": record.redirect_to}
    try:
        # A savepoint: a failure undoes this attempt's writes, yet the person still gets a redirect.
        async with tx.transaction():
            login_code = await service.complete(
                tx,
                settings=settings,
                record=record,
                binding=request.cookies.get(service.COOKIE),
                code=code,
                error=error,
                meta=meta,
            )
    except AppError as failure:
        logger.info("social sign-in with %s failed: %s", provider, failure.code)
        response = _to_web_client(settings, {"error": failure.code, **fragment})
        _clear_binding_cookie(response, settings)
        return response
    return _to_web_client(settings, {"login_code": login_code, **fragment})


@router.post(
    "/exchange",
    response_model=TokenResponse | MfaChallenge,
    summary="Trade the one-time login code from the callback for tokens (or a 2FA challenge)",
    responses=errors({400: ["invalid_login_code"], **_LIMITED}),
)
async def exchange(
    body: ExchangeRequest, request: Request, response: Response, meta: Meta
) -> TokenResponse | MfaChallenge:
    """Works once, within a minute, from the browser that signed in; finish a 2FA challenge at /login/mfa."""
    await _limit(meta.ip)
    settings = get_settings()
    result = await service.exchange(login_code=body.login_code, binding=request.cookies.get(service.COOKIE))
    _clear_binding_cookie(response, settings)
    response.headers["cache-control"] = "no-store"
    return result


@router.delete(
    "/{provider}",
    status_code=204,
    summary="Unlink Google or GitHub from the signed-in account",
    responses=errors(
        {
            401: _AUTH,
            403: ["recent_sign_in_required"],
            404: ["provider_not_configured", "identity_not_found"],
            409: ["last_sign_in_method"],
            503: ["service_unavailable"],
        }
    ),
)
async def unlink(provider: ProviderName, tx: Tx, meta: Meta, caller: Caller) -> Response:
    """Refused when it is the account's last way to sign in (no password and no other provider)."""
    await accounts_service.require_recent_sign_in(tx, session_id=caller.session_id)
    await service.unlink(tx, user_id=caller.user_id, provider_name=provider, meta=meta)
    return Response(status_code=204)
