"""Per-user concurrent stream limits, enforced atomically in Redis (one Lua script per start: no race).

Slots live in the user's sorted set (see shared.streaming.sessions), scored by heartbeat expiry. A start
drops the expired members, counts the rest and either refuses (returning the active sessions, so the
viewer can end one) or adds itself and stores the session blob, all in one script. A device holds one slot:
a new start from the same device replaces its previous stream (its slot goes in the script, its blob right
after, from Python: scripts touch only their declared KEYS). Every failure to reach Redis refuses the
start (fail closed): `stream_limit_unavailable`, 503.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ServiceUnavailable
from shared.infra.redis import RedisUnavailable, Script, get_redis
from shared.streaming.sessions import SESSION_KEY, USER_KEY, StreamSession, live_from_blob, session_of_member

logger = logging.getLogger("cinema.streaming")


class StreamLimitUnavailable(ServiceUnavailable):
    """The stream limit cannot be checked (Redis unreachable): no stream starts unchecked."""

    code = "stream_limit_unavailable"
    title = "Stream limit unavailable"


# KEYS: user's sorted set, new session's blob.
# ARGV: now, expiry, limit, member, blob, ttl (s), '|<device id>', mode ('claim'|'check').
# Returns {ok (1|0), expired members, replaced members, other active members}.
# The script touches only the keys declared in KEYS: Redis requires it of scripts (a cluster routes a
# script by its KEYS, and Redis Cluster / Upstash refuse or misroute a key built inside the script), so
# the replaced sessions' blobs are deleted by the caller, from Python, after the script.
_START = Script(
    """
local now = ARGV[1]
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end
local suffix = ARGV[7]
local same, others = {}, {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  if string.sub(member, -string.len(suffix)) == suffix then table.insert(same, member)
  else table.insert(others, member) end
end
if #others >= tonumber(ARGV[3]) then return {0, expired, {}, others} end
if ARGV[8] ~= 'claim' then return {1, expired, {}, others} end
for _, member in ipairs(same) do
  redis.call('ZREM', KEYS[1], member)
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], ARGV[5], 'EX', ARGV[6])
return {1, expired, same, others}
"""
)

# KEYS: user's sorted set, session blob. ARGV: now, new expiry, member, blob, ttl.
# 1 = renewed; 0 = the slot is gone (ended, replaced or expired): the session is over.
_RENEW = Script(
    """
local score = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not score or tonumber(score) <= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
return 1
"""
)

# KEYS: user's sorted set, session blob. ARGV: member.
_RELEASE = Script(
    """
redis.call('ZREM', KEYS[1], ARGV[1])
return redis.call('DEL', KEYS[2])
"""
)


@dataclass(frozen=True)
class Claim:
    """What a start script decided."""

    ok: bool
    expired: list[str] = field(default_factory=list)  # session ids whose heartbeat lapsed (slots freed)
    replaced: list[str] = field(default_factory=list)  # the same device's previous session ids
    active: list[str] = field(default_factory=list)  # the other live session ids


def _ids(members: Any) -> list[str]:
    return [session_of_member(str(member)) for member in members or []]


async def claim(
    session: StreamSession, *, limit: int, ttl: int, now: float, check_only: bool = False
) -> Claim:
    """Take a slot for the session (and store its blob) unless the user is at the limit; one Redis call."""
    args: list[str | int] = [
        repr(now),
        repr(session.expires_at),
        limit,
        session.member,
        session.to_json(),
        ttl,
        f"|{session.device_id}",
        "check" if check_only else "claim",
    ]
    try:
        store = await get_redis()
        reply = await store.eval(_START, keys=[session.user_key, session.key], args=args)
    except RedisUnavailable as error:
        raise StreamLimitUnavailable(
            "Playback cannot start right now (the stream limit cannot be checked); try again shortly."
        ) from error
    ok, expired, replaced, active = reply
    result = Claim(ok=int(ok) == 1, expired=_ids(expired), replaced=_ids(replaced), active=_ids(active))
    if result.replaced:
        # Their slots are gone already (so their heartbeats end them); the blobs go now rather than at
        # their TTL, so manifests and keys stop at once.
        try:
            await store.delete(*(SESSION_KEY.format(session_id) for session_id in result.replaced))
        except RedisUnavailable:
            logger.warning("replaced stream sessions' blobs left to expire: %s", result.replaced)
    return result


async def renew(session: StreamSession, *, ttl: int, now: float) -> bool:
    """Extend the slot and the blob (the session carries its new expiry); False when it is already over."""
    store = await get_redis()
    reply = await store.eval(
        _RENEW,
        keys=[session.user_key, session.key],
        args=[repr(now), repr(session.expires_at), session.member, session.to_json(), ttl],
    )
    return int(reply) == 1


async def release(session: StreamSession) -> None:
    """Free the slot and drop the live state."""
    store = await get_redis()
    await store.eval(_RELEASE, keys=[session.user_key, session.key], args=[session.member])


async def active_sessions(user_id: str, *, now: float) -> list[StreamSession]:
    """The user's live sessions, oldest first (one ZRANGEBYSCORE and one MGET)."""
    store = await get_redis()
    members = await store.zrangebyscore(USER_KEY.format(user_id), f"({now!r}", "+inf")
    return await sessions_by_id(_ids(members), now=now)


async def sessions_by_id(session_ids: list[str], *, now: float) -> list[StreamSession]:
    """The live sessions among these ids (one MGET), oldest first."""
    if not session_ids:
        return []
    store = await get_redis()
    blobs = await store.mget(*(SESSION_KEY.format(session_id) for session_id in session_ids))
    live = [session for session in (live_from_blob(blob, now) for blob in blobs) if session is not None]
    return sorted(live, key=lambda s: s.started_at)
