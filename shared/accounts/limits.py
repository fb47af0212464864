"""The rate limits of the auth endpoints, per client address and per account (shared.infra.ratelimit)."""

from __future__ import annotations

import uuid

from shared.http.client_ip import ip_bucket
from shared.infra import ratelimit
from shared.infra.ratelimit import Limit, account_key

# Refreshes: a browser refreshes every ~15 min per tab; 60 a minute from one address is a loop or abuse.
_REFRESH = Limit(60, 60)
# Re-authentication (change password or email, delete the account) checks the password: without a budget,
# a stolen access token would be an unlimited password oracle. A person needs a handful of tries.
_REAUTH = Limit(10, 15 * 60)
# Link tokens are 256-bit (unguessable); the limit only keeps a scripted client from hammering the table.
_TOKEN_USE = Limit(30, 60)


def _ip(ip: str | None) -> str:
    # ClientIp always yields an address; "0.0.0.0" (one shared bucket) only if a caller passes none.
    return ip or "0.0.0.0"  # noqa: S104 - a key, not a bind address


async def signup(*, ip: str | None) -> None:
    """Sign-ups per client address."""
    await ratelimit.enforce(rules=ratelimit.signup_rules(ip=_ip(ip)))


async def login(*, ip: str | None, email: str) -> None:
    """Login attempts per address and per account (keyed the same for unknown emails)."""
    await ratelimit.enforce(rules=ratelimit.login_rules(ip=_ip(ip), account=account_key(email)))


async def reset(*, ip: str | None, email: str) -> None:
    """Reset requests per address and per account."""
    await ratelimit.enforce(rules=ratelimit.password_reset_rules(ip=_ip(ip), account=account_key(email)))


async def resend(*, ip: str | None, email: str) -> None:
    """Verification resends per address and per account."""
    await ratelimit.enforce(rules=ratelimit.verification_resend_rules(ip=_ip(ip), account=account_key(email)))


async def totp(*, ip: str | None, user_id: uuid.UUID) -> None:
    """Second-factor attempts per address and per account."""
    await ratelimit.enforce(rules=ratelimit.totp_rules(ip=_ip(ip), account=account_key(str(user_id))))


async def refresh(*, ip: str | None) -> None:
    """Token refreshes per address."""
    await ratelimit.enforce(rules=[_REFRESH.rule(f"refresh:ip:{ip_bucket(_ip(ip))}")])


async def token_use(*, ip: str | None) -> None:
    """Uses of emailed link tokens per address."""
    await ratelimit.enforce(rules=[_TOKEN_USE.rule(f"token_use:ip:{ip_bucket(_ip(ip))}")])


async def reauthentication(*, user_id: uuid.UUID) -> None:
    """Password checks of dangerous changes by a signed-in user, per account."""
    await ratelimit.enforce(rules=[_REAUTH.rule(f"reauth:account:{account_key(str(user_id))}")])
