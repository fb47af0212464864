"""Social login: authorization code + PKCE + state (+ nonce), bound to the browser, then the local account.

The flow's secrets and where they live:
- state (in the provider's URL) names a Redis record (10 min, used once) holding the PKCE verifier, the
  OIDC nonce and the sha256 of a browser-binding secret;
- the binding secret itself only ever travels in an HttpOnly cookie, so a callback URL replayed in
  another browser (login CSRF, session fixation, a leaked code) does not match the record;
- the session's tokens never appear in a URL: the callback hands the browser a one-time login code (in
  the URL fragment, 60 s, also bound to the cookie) that the web client exchanges for them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.accounts import repository as accounts
from shared.accounts.schemas import MfaChallenge, TokenResponse
from shared.accounts.service import AccountDisabled, complete_first_factor, get_user
from shared.audit import service as audit
from shared.errors import BadRequest, Conflict, Forbidden, NotFound
from shared.http.client_meta import ClientMeta
from shared.infra.redis import Script, get_redis
from shared.settings import Settings
from shared.social import providers
from shared.social.providers import PROVIDERS, ProviderNotConfigured, ProviderRefused, ProviderUser

COOKIE = "cinema_oauth"
COOKIE_PATH = "/api/v1/auth/oauth"
STATE_SECONDS = 600
LOGIN_CODE_SECONDS = 60
_STATE_KEY = "oauth:state:{}"
_LOGIN_KEY = "oauth:login:{}"
_MAX_REDIRECT = 512

# GET and DEL in one step: of two requests presenting the same state or login code, one gets it.
_TAKE = Script(
    """
local value = redis.call('GET', KEYS[1])
if value then redis.call('DEL', KEYS[1]) end
return value
"""
)


class InvalidRedirect(BadRequest):
    """redirect_to is not a path on this site (open-redirect protection)."""

    def __init__(self) -> None:
        super().__init__("redirect_to must be a path on this site, such as /browse.", code="invalid_redirect")


class InvalidState(BadRequest):
    """No sign-in attempt matches this state: unknown, expired, already used, or for another provider."""

    def __init__(self) -> None:
        super().__init__(
            "This sign-in attempt is unknown, expired or already finished; start again.", code="invalid_state"
        )


class BrowserMismatch(Forbidden):
    """The callback arrived in a browser other than the one that started the sign-in."""

    def __init__(self) -> None:
        super().__init__(
            "This sign-in was started in another browser (or its cookie is missing); start again here.",
            code="oauth_browser_mismatch",
        )


class InvalidLoginCode(BadRequest):
    """The one-time login code is unknown, expired, used, or presented by another browser."""

    def __init__(self) -> None:
        super().__init__("This sign-in code is invalid or expired; sign in again.", code="invalid_login_code")


class EmailUnverified(Forbidden):
    """The provider does not vouch for the address, so it can neither create nor join an account."""

    def __init__(self) -> None:
        super().__init__(
            "Your account at the provider has no verified email address; verify it there, or sign up "
            "with email and password.",
            code="oauth_email_unverified",
        )


class IdentityInUse(Conflict):
    """The provider account already signs in to another local account."""

    def __init__(self) -> None:
        super().__init__(
            "That provider account is already linked to another account here.", code="identity_in_use"
        )


@dataclass(frozen=True)
class Started:
    """A started sign-in: where to send the browser, and the binding secret for its cookie."""

    authorize_url: str
    binding: str


@dataclass(frozen=True)
class StateRecord:
    """What the state names (kept in Redis between the redirect and the callback)."""

    provider: str
    verifier: str
    nonce: str | None
    binding_hash: str
    redirect_to: str
    link_user_id: str | None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _binds(binding: str | None, binding_hash: str) -> bool:
    return binding is not None and hmac.compare_digest(_digest(binding), binding_hash)


def check_redirect(value: str) -> str:
    """A same-site path to return to after signing in, or 400: never a URL of another site."""
    # "//host" and "/\\host" are protocol-relative to browsers; control characters and backslashes can
    # be reinterpreted on the way, so they are refused outright rather than cleaned.
    parts = urlsplit(value)
    if (
        not value.startswith("/")
        or value.startswith("//")
        or len(value) > _MAX_REDIRECT
        or "\\" in value
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)
        or parts.scheme
        or parts.netloc
    ):
        raise InvalidRedirect()
    return value


def base_url(settings: Settings) -> str:
    """The public origin of the site (never the request's Host header)."""
    return str(settings.public_base_url).rstrip("/")


def redirect_uri(settings: Settings, provider: str) -> str:
    """Our callback URL as registered at the provider."""
    return f"{base_url(settings)}/api/v1/auth/oauth/{provider}/callback"


def cookie_secure(settings: Settings) -> bool:
    """Whether the binding cookie is Secure (whenever the site is served over https)."""
    return str(settings.public_base_url).startswith("https://")


async def start(
    *, settings: Settings, provider_name: str, redirect_to: str, link_user_id: uuid.UUID | None
) -> Started:
    """Begin a sign-in (or a link, when `link_user_id` is the signed-in caller) at the provider."""
    provider = providers.get_provider(settings, provider_name)
    check_redirect(redirect_to)
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # RFC 7636: 43 to 128 characters
    nonce = secrets.token_urlsafe(32) if provider.oidc else None
    binding = secrets.token_urlsafe(32)
    url = await providers.authorize_url(
        settings,
        provider,
        redirect_uri=redirect_uri(settings, provider.name),
        state=state,
        verifier=verifier,
        nonce=nonce,
    )
    record = StateRecord(
        provider=provider.name,
        verifier=verifier,
        nonce=nonce,
        binding_hash=_digest(binding),
        redirect_to=redirect_to,
        link_user_id=str(link_user_id) if link_user_id else None,
    )
    store = await get_redis()
    await store.set(_STATE_KEY.format(_digest(state)), json.dumps(asdict(record)), ex=STATE_SECONDS)
    return Started(authorize_url=url, binding=binding)


async def take_state(*, provider_name: str, state: str | None) -> StateRecord:
    """The sign-in attempt named by `state`, removed so that it works once; 400 when there is none."""
    if not state or len(state) > 200:
        raise InvalidState()
    store = await get_redis()
    raw = await store.eval(_TAKE, keys=[_STATE_KEY.format(_digest(state))])
    if not raw:
        raise InvalidState()
    record = StateRecord(**json.loads(raw))
    if record.provider != provider_name:
        raise InvalidState()
    return record


async def complete(
    conn: Any,
    *,
    settings: Settings,
    record: StateRecord,
    binding: str | None,
    code: str | None,
    error: str | None,
    meta: ClientMeta,
) -> str:
    """Finish at the callback: check the browser, exchange the code, resolve the account, sign in.

    Returns a one-time login code for the web client; the session (or 2FA challenge) waits behind it.
    """
    # Login CSRF / fixation: the callback must come from the browser that started this attempt.
    if not _binds(binding, record.binding_hash):
        raise BrowserMismatch()
    if error:
        denied = error == "access_denied"
        raise Forbidden(
            "Sign-in was cancelled at the provider." if denied else "The provider could not sign you in.",
            code="oauth_access_denied" if denied else "oauth_provider_error",
        )
    if not code or len(code) > 2048:
        raise ProviderRefused("The provider sent no authorization code; try signing in again.")
    provider = providers.get_provider(settings, record.provider)
    who = await providers.fetch_user(
        settings,
        provider,
        code=code,
        verifier=record.verifier,
        redirect_uri=redirect_uri(settings, provider.name),
        nonce=record.nonce,
    )
    link_user_id = uuid.UUID(record.link_user_id) if record.link_user_id else None
    user = await resolve_account(conn, provider=provider.name, who=who, link_user_id=link_user_id, meta=meta)
    result = await complete_first_factor(
        conn, settings=settings, user=user, methods=[f"oauth:{provider.name}"], meta=meta
    )
    login_code = secrets.token_urlsafe(32)
    payload = {"binding_hash": record.binding_hash, "result": result.model_dump(mode="json")}
    store = await get_redis()
    await store.set(_LOGIN_KEY.format(_digest(login_code)), json.dumps(payload), ex=LOGIN_CODE_SECONDS)
    return login_code


async def exchange(*, login_code: str, binding: str | None) -> TokenResponse | MfaChallenge:
    """The tokens (or 2FA challenge) behind a login code, once, to the browser that signed in."""
    store = await get_redis()
    # Taken before the cookie is compared: a code presented by the wrong browser is burnt, not retried.
    raw = await store.eval(_TAKE, keys=[_LOGIN_KEY.format(_digest(login_code))])
    if not raw:
        raise InvalidLoginCode()
    payload = json.loads(raw)
    if not _binds(binding, payload["binding_hash"]):
        raise InvalidLoginCode()
    result = payload["result"]
    if result.get("mfa_required"):
        return MfaChallenge.model_validate(result)
    return TokenResponse.model_validate(result)


# The local account behind a provider identity.


def _check_active(user: dict[str, Any]) -> None:
    if user["status"] != "active":
        raise AccountDisabled("This account has been disabled. Contact support.")


async def _link(
    conn: Any,
    *,
    provider: str,
    who: ProviderUser,
    user: dict[str, Any],
    via: str,
    meta: ClientMeta,
    **details: Any,
) -> None:
    await accounts.link_identity(
        conn, provider=provider, subject=who.subject, user_id=user["id"], email=who.email
    )
    # link_identity does nothing when a parallel request linked the identity to someone else first.
    linked = await accounts.identity(conn, provider, who.subject)
    if linked is None or linked["user_id"] != user["id"]:
        raise IdentityInUse()
    await audit.record(
        conn,
        event="identity_linked",
        subject_id=user["id"],
        ip=meta.ip,
        user_agent=meta.user_agent,
        provider=provider,
        via=via,
        **details,
    )
    if via != "signup":  # a new way into an existing account: tell its owner
        from shared.mail.service import queue_mail

        await queue_mail(
            conn,
            to=user["email"],
            template="identity_linked",
            user_id=user["id"],
            data={"provider": PROVIDER_LABELS.get(provider, provider)},
        )


PROVIDER_LABELS = {"google": "Google", "github": "GitHub"}


async def resolve_account(
    conn: Any, *, provider: str, who: ProviderUser, link_user_id: uuid.UUID | None, meta: ClientMeta
) -> dict[str, Any]:
    """The account to sign in: the linked one, the signed-in linker's, one proven by a verified email, or new.

    An existing account is joined only by a signed-in owner or through an address the provider verified.
    """
    existing = await accounts.identity(conn, provider, who.subject)
    if link_user_id is not None:
        if existing is not None and existing["user_id"] != link_user_id:
            raise IdentityInUse()
        user = await get_user(conn, user_id=link_user_id, for_update=True)
        _check_active(user)
        if existing is None:
            await _link(conn, provider=provider, who=who, user=user, via="signed_in", meta=meta)
        return user
    if existing is not None:
        user = await get_user(conn, user_id=existing["user_id"])
        _check_active(user)
        await accounts.link_identity(  # refreshes the identity's last_login_at
            conn, provider=provider, subject=who.subject, user_id=user["id"], email=who.email
        )
        return user
    if not who.email or not who.email_verified:
        raise EmailUnverified()
    for _attempt in (1, 2):
        found = await accounts.user_by_email(conn, who.email)
        if found is not None:
            user = await get_user(conn, user_id=found["id"], for_update=True)
            _check_active(user)
            cleared = False
            if user["email_verified_at"] is None:
                # Pre-account takeover: whoever registered this address never proved they own it, while
                # the provider just did for this person. Keeping that password would leave a way in for
                # someone who may have pre-registered the victim's address; it stops working, and the
                # address counts as verified from now on. (Never verified means never signed in, so no
                # session of theirs exists to revoke.)
                await accounts.clear_password(conn, user["id"])
                await accounts.mark_verified(conn, user["id"])
                user = await get_user(conn, user_id=user["id"])
                cleared = True
            await _link(
                conn,
                provider=provider,
                who=who,
                user=user,
                via="verified_email",
                meta=meta,
                password_cleared=cleared,
            )
            return user
        created = await accounts.insert_user(
            conn, email=who.email, password_hash=None, display_name=who.display_name, verified=True
        )
        if created is not None:
            from shared.profiles import service as profiles

            await profiles.create_default_profile(
                conn, user_id=created["id"], name=(who.display_name or who.email.split("@")[0])[:50]
            )
            await _link(conn, provider=provider, who=who, user=created, via="signup", meta=meta)
            return created
        # The address was registered meanwhile: join it as above.
    raise Conflict("The account changed while signing in; try again.", code="conflict")


# Unlinking.


class LastSignInMethod(Conflict):
    """Unlinking would leave the account with no way to sign in."""

    def __init__(self) -> None:
        super().__init__(
            "This is your only way to sign in: set a password or link another provider first.",
            code="last_sign_in_method",
        )


async def unlink(conn: Any, *, user_id: uuid.UUID, provider_name: str, meta: ClientMeta) -> None:
    """Detach the caller's identity at a provider, unless it is their last way to sign in."""
    if provider_name not in PROVIDERS:
        raise ProviderNotConfigured(provider_name)
    user = await get_user(conn, user_id=user_id, for_update=True)  # serialises parallel unlinks
    identities = await accounts.identities_of(conn, user_id)
    if not any(identity["provider"] == provider_name for identity in identities):
        raise NotFound("No account of that provider is linked.", code="identity_not_found")
    others = [identity for identity in identities if identity["provider"] != provider_name]
    if user["password_hash"] is None and not others:
        raise LastSignInMethod()
    await accounts.unlink_identity(conn, user_id, provider_name)
    await audit.record(
        conn,
        event="identity_unlinked",
        subject_id=user_id,
        ip=meta.ip,
        user_agent=meta.user_agent,
        provider=provider_name,
    )
