"""The social providers: Google (OpenID Connect) and GitHub (OAuth 2), spoken to through authlib's client.

Each provider turns an authorization code (plus its PKCE verifier) into a `ProviderUser`: the provider's
stable subject id and what it vouches for about the email address. Google's answer is the id_token,
checked here (signature against the published JWKS, iss, aud, exp, nonce); GitHub's comes from its API.
"""

from __future__ import annotations

import hmac
import time
import warnings
from dataclasses import dataclass
from typing import Any

from shared.errors import AppError, NotFound, ServiceUnavailable
from shared.settings import Settings

PROVIDERS = ("google", "github")
_SCOPES = {"google": "openid email profile", "github": "read:user user:email"}
_TIMEOUT_SECONDS = 10.0
# Google rotates its signing keys about every two weeks and publishes the next one well ahead.
_CACHE_SECONDS = 3600
# An id_token naming an unknown kid triggers a refetch, at most this often (a forged kid is no DoS lever).
_JWKS_REFETCH_SECONDS = 30
# Algorithm allow-list: Google signs id_tokens with RS256; anything else (none, HS256) is refused.
_ID_TOKEN_ALGORITHMS = ("RS256",)
_CLOCK_SKEW_SECONDS = 60
_USER_AGENT = "cinema-online"


class ProviderNotConfigured(NotFound):
    """Unknown provider, or no client id/secret for it in this deployment."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Sign-in with {name!r} is not available here.", code="provider_not_configured")


class ProviderUnavailable(ServiceUnavailable):
    """The provider could not be reached or answered with a server error."""

    code = "oauth_provider_unavailable"


class ProviderRefused(AppError):
    """The provider refused the code exchange (wrong or reused code, PKCE verifier mismatch...)."""

    status = 400
    code = "oauth_exchange_failed"
    title = "The sign-in provider refused the request"


class InvalidIdToken(AppError):
    """The OpenID Connect id_token failed verification (signature, issuer, audience, expiry or nonce)."""

    status = 401
    code = "oauth_invalid_id_token"
    title = "The sign-in provider's answer could not be verified"


@dataclass(frozen=True)
class Provider:
    """A configured provider and its OAuth client credentials."""

    name: str
    client_id: str
    client_secret: str
    scope: str

    @property
    def oidc(self) -> bool:
        """Whether the provider speaks OpenID Connect (id_token, nonce)."""
        return self.name == "google"


@dataclass(frozen=True)
class ProviderUser:
    """Who the provider says signed in."""

    subject: str
    email: str | None
    email_verified: bool
    display_name: str | None


def get_provider(settings: Settings, name: str) -> Provider:
    """The provider by name, or 404 when it is unknown or has no client credentials configured."""
    credentials = {
        "google": (settings.google_client_id, settings.google_client_secret),
        "github": (settings.github_client_id, settings.github_client_secret),
    }.get(name)
    if credentials is None or not credentials[0] or not credentials[1]:
        raise ProviderNotConfigured(name)
    return Provider(name=name, client_id=credentials[0], client_secret=credentials[1], scope=_SCOPES[name])


def _url(value: Any) -> str:
    return str(value).rstrip("/")


def _oauth_client(provider: Provider, redirect_uri: str) -> Any:
    with warnings.catch_warnings():
        # authlib 1.9 prefers the `httpx2` package and warns when it falls back to httpx, which works.
        # Its deprecate module installs an "always" filter on import, so ours goes in after it.
        import authlib.deprecate  # noqa: F401

        warnings.filterwarnings("ignore", "The httpx module is deprecated", DeprecationWarning)
        from authlib.integrations.httpx_client import AsyncOAuth2Client

    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        # Credentials in the form body: both providers document it (GitHub only documents this one).
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name, not a secret
        timeout=_TIMEOUT_SECONDS,
    )


async def authorize_url(
    settings: Settings, provider: Provider, *, redirect_uri: str, state: str, verifier: str, nonce: str | None
) -> str:
    """The provider's consent URL with response_type=code, state, the S256 challenge (and the nonce)."""
    if provider.oidc:
        endpoint = str((await discovery(settings))["authorization_endpoint"])
        extra = {"nonce": nonce}
    else:
        endpoint = _url(settings.github_authorize_url)
        extra = {}
    async with _oauth_client(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(endpoint, state=state, code_verifier=verifier, **extra)
    return str(url)


async def fetch_user(
    settings: Settings,
    provider: Provider,
    *,
    code: str,
    verifier: str,
    redirect_uri: str,
    nonce: str | None,
) -> ProviderUser:
    """Exchange the code (proving the PKCE verifier) and learn who signed in."""
    import httpx

    try:
        async with _oauth_client(provider, redirect_uri) as client:
            if provider.oidc:
                config = await discovery(settings)
                token = await _fetch_token(client, str(config["token_endpoint"]), code, verifier)
                return await _google_user(client, provider, config, token, nonce)
            token = await _fetch_token(client, _url(settings.github_token_url), code, verifier)
            return await _github_user(client, _url(settings.github_api_url))
    except httpx.HTTPStatusError as error:
        if error.response.status_code >= 500:
            raise ProviderUnavailable("The sign-in provider is having trouble; try again shortly.") from error
        raise ProviderRefused("The sign-in provider refused the request; try signing in again.") from error
    except httpx.HTTPError as error:
        raise ProviderUnavailable("The sign-in provider could not be reached; try again shortly.") from error


async def _fetch_token(client: Any, url: str, code: str, verifier: str) -> dict[str, Any]:
    from authlib.integrations.base_client import OAuthError

    try:
        token = await client.fetch_token(url, code=code, code_verifier=verifier)
    except (OAuthError, ValueError) as error:
        # invalid_grant: a wrong, spent or expired code, or a verifier not matching the challenge.
        raise ProviderRefused("The sign-in provider refused the code; try signing in again.") from error
    if not isinstance(token, dict) or not token.get("access_token"):
        raise ProviderRefused("The sign-in provider sent no access token.")
    return dict(token)


def _json_object(response: Any) -> dict[str, Any]:
    response.raise_for_status()
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ProviderRefused("The sign-in provider sent an unexpected answer.")
    return body


# Google (OpenID Connect).

# In-process caches (per function instance; plain data, so safe across event loops).
_discovery_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}


async def _get_json(url: str) -> Any:
    import httpx

    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT_SECONDS) as http:
            response = await http.get(url, headers={"accept": "application/json"})
            response.raise_for_status()
            return response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise ProviderUnavailable("The sign-in provider could not be reached; try again shortly.") from error


async def discovery(settings: Settings) -> dict[str, Any]:
    """Google's OpenID configuration (endpoints, issuer, JWKS URI), cached in-process for an hour."""
    url = str(settings.google_discovery_url)
    cached = _discovery_cache.get(url)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    document = await _get_json(url)
    needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
    if not isinstance(document, dict) or not all(isinstance(document.get(key), str) for key in needed):
        raise ProviderUnavailable("The sign-in provider's configuration is incomplete.")
    _discovery_cache[url] = (time.monotonic() + _CACHE_SECONDS, document)
    return document


async def _signing_key(jwks_uri: str, kid: str | None) -> Any:
    import jwt

    cached = _jwks_cache.get(jwks_uri)
    now = time.monotonic()
    for attempt in (1, 2):
        if cached is None or cached[0] + _CACHE_SECONDS < now:
            cached = (now, await _get_json(jwks_uri))
            _jwks_cache[jwks_uri] = cached
        try:
            keys = jwt.PyJWKSet.from_dict(cached[1]).keys
        except jwt.PyJWTError:
            keys = []
        match = [key for key in keys if key.key_id == kid] if kid else keys[:1] if len(keys) == 1 else []
        if match:
            return match[0]
        # An unknown kid may be a freshly rotated key: refetch once, but not more often than a floor.
        if attempt == 1 and cached[0] + _JWKS_REFETCH_SECONDS < now:
            cached = None
            continue
        break
    raise InvalidIdToken("The sign-in provider's answer is signed with an unknown key.")


async def verify_id_token(
    id_token: str, *, config: dict[str, Any], client_id: str, nonce: str | None
) -> dict[str, Any]:
    """Claims of a valid id_token: signed by a published key, for us, by the issuer, fresh, with our nonce."""
    import jwt

    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as error:
        raise InvalidIdToken() from error
    if header.get("alg") not in _ID_TOKEN_ALGORITHMS:
        raise InvalidIdToken("The sign-in provider's answer uses a refused signature algorithm.")
    key = await _signing_key(str(config["jwks_uri"]), header.get("kid"))
    issuer = str(config["issuer"])
    # Google documents both spellings of its issuer ("https://accounts.google.com" and without scheme).
    issuers = [issuer, issuer.removeprefix("https://")]
    try:
        claims: dict[str, Any] = jwt.decode(
            id_token,
            key=key,
            algorithms=list(_ID_TOKEN_ALGORITHMS),
            audience=client_id,
            issuer=issuers,
            leeway=_CLOCK_SKEW_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidIdToken() from error
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise InvalidIdToken()  # OIDC Core 3.1.3.7: several audiences need azp naming us
    # The nonce ties the id_token to this browser's authorization request (replay / injection defence).
    received = claims.get("nonce")
    if not nonce or not isinstance(received, str) or not hmac.compare_digest(received, nonce):
        raise InvalidIdToken("The sign-in provider's answer does not belong to this sign-in attempt.")
    return claims


def _verified(value: Any) -> bool:
    return value is True or value == "true"


async def _google_user(
    client: Any, provider: Provider, config: dict[str, Any], token: dict[str, Any], nonce: str | None
) -> ProviderUser:
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise InvalidIdToken("The sign-in provider sent no id_token.")
    claims = await verify_id_token(id_token, config=config, client_id=provider.client_id, nonce=nonce)
    subject = str(claims["sub"])
    email, verified, name = claims.get("email"), _verified(claims.get("email_verified")), claims.get("name")
    userinfo_endpoint = config.get("userinfo_endpoint")
    if not isinstance(email, str) and isinstance(userinfo_endpoint, str):
        # Some id_tokens omit the profile claims; userinfo has them (for the same subject only).
        info = _json_object(await client.get(userinfo_endpoint, headers={"accept": "application/json"}))
        if str(info.get("sub")) != subject:
            raise InvalidIdToken("The sign-in provider's profile is for another account.")
        email, verified = info.get("email"), _verified(info.get("email_verified"))
        name = name or info.get("name")
    return _user(subject, email, verified, name)


def _user(subject: str, email: Any, verified: bool, name: Any) -> ProviderUser:
    good_email = isinstance(email, str) and "@" in email and len(email) <= 254
    return ProviderUser(
        subject=subject,
        email=email if good_email else None,
        email_verified=verified and good_email,
        display_name=(name.strip()[:80] or None) if isinstance(name, str) else None,
    )


# GitHub (OAuth 2 and its REST API).


async def _github_user(client: Any, api_url: str) -> ProviderUser:
    headers = {
        "accept": "application/vnd.github+json",
        "x-github-api-version": "2022-11-28",
        "user-agent": _USER_AGENT,  # GitHub's API refuses requests without one
    }
    user = _json_object(await client.get(f"{api_url}/user", headers=headers))
    if not isinstance(user.get("id"), int):
        raise ProviderRefused("The sign-in provider sent an unexpected answer.")
    response = await client.get(f"{api_url}/user/emails", headers=headers)
    response.raise_for_status()
    try:
        emails = response.json()
    except ValueError:
        emails = None
    # The account's primary address, and whether GitHub verified it (an unverified one proves nothing).
    primary: dict[str, Any] | None = None
    if isinstance(emails, list):
        primary = next((item for item in emails if isinstance(item, dict) and item.get("primary")), None)
    email = primary.get("email") if primary else None
    verified = bool(primary and primary.get("verified") is True)
    return _user(str(user["id"]), email, verified, user.get("name") or user.get("login"))
