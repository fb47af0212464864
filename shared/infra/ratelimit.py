"""Rate limits and progressive lockout in Redis: atomic Lua, one round trip per call, on both backends.

Rate limits use a sliding-window log (one sorted set per key, a member per counted hit, scored by time)
rather than GCRA or a fixed/approximated window: it is exact ("never more than `limit` in any `window`"),
which is what a login budget promises, it gives an exact Retry-After (when the oldest counted hit leaves
the window), and its memory cost (one member per allowed hit) is tiny at the small limits auth needs.
GCRA would be O(1) but lets roughly twice the limit through over a window after a burst.

Time comes from the caller's clock, passed to the script: Upstash asks scripts to be deterministic (no
TIME), and its own rate limiter does the same; serverless hosts are NTP-synced, and a skew of milliseconds
is nothing against windows of minutes.

Redis failures propagate as shared.infra.redis errors (RedisUnavailable is a 503): auth fails closed.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from shared.errors import RateLimited
from shared.http.client_ip import ip_bucket
from shared.infra.redis import KeyValueStore, RedisValue, Script, get_redis

PREFIX = "rl:"

# KEYS: one sorted set per rule. ARGV: now (ms), a token unique to this call, then per rule: limit,
# window (ms), cost. All rules are checked before any is charged, and a refused call charges none: a
# refused request does no work (no password is checked), so it must not spend the other rules' budget,
# else one IP held at its limit could still drain the per-account budget of every account it names.
# Returns {allowed (1/0), then per rule: remaining after this call, retry after (ms, 0 if not limiting)}.
_SLIDING_WINDOW = Script(
    """
local now = tonumber(ARGV[1])
local token = ARGV[2]
local out = {1}
local counts = {}
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[i * 3])
  local window = tonumber(ARGV[i * 3 + 1])
  local cost = tonumber(ARGV[i * 3 + 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  counts[i] = count
  local retry = 0
  if count + cost > limit then
    out[1] = 0
    -- Room for `cost` appears when the (count + cost - limit)-th oldest hit leaves the window.
    local index = count + cost - limit - 1
    local oldest = redis.call('ZRANGE', key, index, index, 'WITHSCORES')
    retry = math.max(tonumber(oldest[2]) + window - now, 1)
  end
  out[i * 2] = limit - count
  out[i * 2 + 1] = retry
end
if out[1] == 1 then
  for i, key in ipairs(KEYS) do
    local window = tonumber(ARGV[i * 3 + 1])
    local cost = tonumber(ARGV[i * 3 + 2])
    for j = 1, cost do
      redis.call('ZADD', key, now, token .. ':' .. j)
    end
    redis.call('PEXPIRE', key, window)
    out[i * 2] = out[i * 2] - cost
  end
end
return out
"""
)


@dataclass(frozen=True)
class Decision:
    """One rule's view of a call.

    `allowed`: whether the call passed (the same for every rule of one call); `remaining`: hits left in
    the window; `retry_after`: seconds until this rule has room again (>= 1 when it refused, else 0).
    """

    allowed: bool
    remaining: int
    retry_after: int


@dataclass(frozen=True)
class Rule:
    """At most `limit` hits per `window_seconds` on `key` ("rl:" is prefixed); this call costs `cost`."""

    key: str
    limit: int
    window_seconds: int
    cost: int = 1

    def __post_init__(self) -> None:
        if self.limit < 1 or self.window_seconds < 1:
            raise ValueError(f"rate limit {self.key!r}: limit and window must be >= 1")
        if not 1 <= self.cost <= self.limit:
            # A cost above the limit could never be allowed: a programming error, not a 429.
            raise ValueError(f"rate limit {self.key!r}: cost must be between 1 and the limit")


async def hit_all(store: KeyValueStore, rules: Sequence[Rule]) -> list[Decision]:
    """Check and (only if every rule has room) charge all rules atomically, in one round trip."""
    if not rules:
        return []
    keys = [PREFIX + rule.key for rule in rules]
    if len(set(keys)) != len(keys):
        # Checked separately and then charged together, a repeated key could overshoot its limit.
        raise ValueError(f"rate limit keys repeat: {keys}")
    args: list[RedisValue] = [int(time.time() * 1000), uuid.uuid4().hex]
    for rule in rules:
        args += [rule.limit, rule.window_seconds * 1000, rule.cost]
    reply = await store.eval(_SLIDING_WINDOW, keys, args)
    allowed = int(reply[0]) == 1
    decisions = []
    for i in range(len(rules)):
        remaining, retry_ms = int(reply[1 + 2 * i]), int(reply[2 + 2 * i])
        decisions.append(
            Decision(
                allowed=allowed,
                remaining=max(remaining, 0),
                retry_after=math.ceil(retry_ms / 1000) if retry_ms else 0,
            )
        )
    return decisions


async def hit(store: KeyValueStore, *, key: str, limit: int, window_seconds: int, cost: int = 1) -> Decision:
    """Count one hit (of `cost`) against `key` unless that would exceed `limit` per `window_seconds`."""
    (decision,) = await hit_all(store, [Rule(key, limit, window_seconds, cost)])
    return decision


def too_many_requests(retry_after: int, *, detail: str | None = None, code: str | None = None) -> RateLimited:
    """A 429 carrying Retry-After (seconds, >= 1) as a header and in the problem body (also for locks)."""
    seconds = max(int(retry_after), 1)
    return RateLimited(
        detail or f"Too many attempts; try again in {seconds} seconds.",
        headers={"Retry-After": str(seconds)},
        code=code,
        retry_after=seconds,
    )


async def enforce(*, rules: Sequence[Rule], store: KeyValueStore | None = None) -> None:
    """Charge every rule in one atomic call, or raise RateLimited (429) if any of them is exhausted."""
    decisions = await hit_all(store or await get_redis(), rules)
    waits = [decision.retry_after for decision in decisions if not decision.allowed]
    if waits:
        # Nothing was charged, and the request can pass only once every exhausted rule has room again.
        raise too_many_requests(max(waits))


# --- named policies: every number in one place -------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """A limit per window, to be applied to some key."""

    limit: int
    window_seconds: int

    def rule(self, key: str) -> Rule:
        """Apply this limit to `key`."""
        return Rule(key, self.limit, self.window_seconds)


MINUTE, HOUR = 60, 3600
LIMITS: dict[str, Limit] = {
    # Login per IP: enough for a household or office NAT mistyping, far too few for credential stuffing
    # from one address (which then has to rent many addresses). Per account: 10 guesses per 15 minutes
    # caps online guessing of one password at ~1,000 a day even from a botnet; Lockout bites long before.
    "login:ip": Limit(20, MINUTE),
    "login:account": Limit(10, 15 * MINUTE),
    # Sign-ups cost us mail and rows; a person makes one, a family a few.
    "signup:ip": Limit(5, HOUR),
    # Reset mail goes to someone's inbox: per account stops mail-bombing a victim, per IP stops one client
    # spraying many addresses.
    "password_reset:ip": Limit(5, HOUR),
    "password_reset:account": Limit(3, HOUR),
    # Resending the verification mail: same reasoning as reset.
    "verification_resend:ip": Limit(10, HOUR),
    "verification_resend:account": Limit(3, HOUR),
    # A TOTP guess succeeds with p ~ 3e-6 (a 6-digit code, +-1 step accepted). 5 per 5 minutes is plenty
    # for a person who mistypes, and caps a guesser at 1,440 tries a day (~0.4%); the TOTP lockout makes
    # that far smaller. Backup codes share these budgets.
    "totp:ip": Limit(20, 5 * MINUTE),
    "totp:account": Limit(5, 5 * MINUTE),
}

_ACCOUNT_KEY = re.compile(r"[0-9a-f]{64}")


def account_key(identifier: str) -> str:
    """The key for an account in limits and locks: sha256 of the trimmed, lower-cased email (or user id).

    Hashing keeps addresses out of Redis, and unknown emails get keys exactly like known ones, so limits
    and locks behave the same for both (no enumeration).
    """
    return hashlib.sha256(identifier.strip().lower().encode()).hexdigest()


def _account(value: str) -> str:
    if not _ACCOUNT_KEY.fullmatch(value):
        raise ValueError("pass account_key(email or user id), never the raw identifier")
    return value


def _ip_rule(policy: str, ip: str) -> Rule:
    return LIMITS[f"{policy}:ip"].rule(f"{policy}:ip:{ip_bucket(ip)}")


def _account_rule(policy: str, account: str) -> Rule:
    return LIMITS[f"{policy}:account"].rule(f"{policy}:account:{_account(account)}")


def login_rules(*, ip: str, account: str) -> list[Rule]:
    """Login attempts: per client IP (/64 for IPv6) and per account (an account_key)."""
    return [_ip_rule("login", ip), _account_rule("login", account)]


def signup_rules(*, ip: str) -> list[Rule]:
    """Sign-ups per client IP."""
    return [_ip_rule("signup", ip)]


def password_reset_rules(*, ip: str, account: str) -> list[Rule]:
    """Password-reset requests: per client IP and per account (an account_key)."""
    return [_ip_rule("password_reset", ip), _account_rule("password_reset", account)]


def verification_resend_rules(*, ip: str, account: str) -> list[Rule]:
    """Verification-mail resends: per client IP and per account (an account_key)."""
    return [_ip_rule("verification_resend", ip), _account_rule("verification_resend", account)]


def totp_rules(*, ip: str, account: str) -> list[Rule]:
    """TOTP and backup-code attempts: per client IP and per account (an account_key)."""
    return [_ip_rule("totp", ip), _account_rule("totp", account)]


# --- progressive lockout -----------------------------------------------------------------------------

# KEYS: failure counter, lock. ARGV: threshold, first lock (s), max lock (s), memory (s).
# Every failure from the threshold on locks for first * 2^(failures - threshold), capped: an attacker gets
# one guess per lock, a person who remembers gets back in when it ends. Racing failures never shorten a
# lock already in place. Returns the lock's seconds, or 0 when this failure did not lock.
_RECORD_FAILURE = Script(
    """
local failures = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
local threshold = tonumber(ARGV[1])
if failures < threshold then return 0 end
local lock_ms = math.min(tonumber(ARGV[2]) * 2 ^ math.min(failures - threshold, 30), tonumber(ARGV[3])) * 1000
local left = redis.call('PTTL', KEYS[2])
if left < lock_ms then
  redis.call('SET', KEYS[2], failures, 'PX', lock_ms)
  left = lock_ms
end
return math.ceil(left / 1000)
"""
)

# PTTL, not TTL: TTL rounds, and would call a lock with 0.4 s left "0", i.e. not locked.
_LOCK_LEFT = Script("return redis.call('PTTL', KEYS[1])")


@dataclass(frozen=True)
class Lockout:
    """Progressive lockout after consecutive failures, keyed on account_key() so it works for any email.

    After `threshold` failures the account locks for `first_lock_seconds`; each further failure doubles
    the lock (1, 2, 4, ... minutes) up to `max_lock_seconds`. Failures are forgotten `memory_seconds`
    after the last one; a success (or a completed password reset) calls clear(). Because anyone can
    trigger this for any address, the cap is short and the owner recovers by email (reset clears it).
    """

    name: str
    threshold: int = 5
    first_lock_seconds: int = MINUTE
    max_lock_seconds: int = 60 * MINUTE
    memory_seconds: int = 24 * HOUR

    def _keys(self, account: str) -> list[str]:
        base = f"lock:{self.name}:{_account(account)}"
        return [f"{base}:failures", f"{base}:until"]

    async def check(self, store: KeyValueStore, account_key: str) -> int | None:
        """Seconds left when the account is locked, else None."""
        left_ms = int(await store.eval(_LOCK_LEFT, self._keys(account_key)[1:]))
        return math.ceil(left_ms / 1000) if left_ms > 0 else None

    async def record_failure(self, store: KeyValueStore, account_key: str) -> int | None:
        """Count a failure; return the lock's seconds if the account is now locked, else None."""
        args = [self.threshold, self.first_lock_seconds, self.max_lock_seconds, self.memory_seconds]
        seconds = int(await store.eval(_RECORD_FAILURE, self._keys(account_key), args))
        return seconds or None

    async def clear(self, store: KeyValueStore, account_key: str) -> None:
        """Forget failures and lift the lock (successful login, completed password reset)."""
        await store.delete(*self._keys(account_key))


# Separate counters: a TOTP guesser must not be able to lock the password step and vice versa.
LOGIN_LOCKOUT = Lockout("login")
TOTP_LOCKOUT = Lockout("totp")
