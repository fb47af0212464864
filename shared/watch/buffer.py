"""The Redis side of positions: the latest write per (profile, content), kept by atomic Lua scripts.

One hash per (profile, content) holds the newest accepted write: the session that made it (id and start
time), the client's sequence, the position, duration, watched flag, `at` (the acceptance time in ms,
strictly increasing per key: the order Postgres compares) and the last flush (`fl` time, `fa` the `at` it
wrote). Writes are ordered by (session start, session id, sequence): within a session the sequence
decides; a write of a session started later always wins over an older session (its sequence restarts at
0), so an old device still sending cannot rewind the position a newer one set.
A sorted set `watch:dirty` lists keys with a write not yet in Postgres (score = the first such write), so
the periodic flush finds positions of sessions that stopped sending.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.infra.redis import KeyValueStore, Script

DIRTY_KEY = "watch:dirty"
TTL_SECONDS = 14 * 24 * 3600  # Postgres holds the lasting copy; Redis only needs the recent ones


def position_key(profile_id: str, content_id: str) -> str:
    """The hash of one profile's position in one content item."""
    return f"watch:pos:{profile_id}:{content_id}"


def session_key(session_id: str) -> str:
    """Which position key a stream session wrote (flush_session finds it without the session blob)."""
    return f"watch:session:{session_id}"


def member(profile_id: str, content_id: str) -> str:
    """The dirty-set member of a position key."""
    return f"{profile_id}:{content_id}"


# KEYS: position hash, dirty set, session pointer.
# ARGV: session id, session start (ms), sequence, position, duration ('' = keep), now (ms), flush interval
# (ms), ttl (s), dirty member, title id, episode id (''), credits start (''), watched fraction, fallback
# duration ('': the client's duration wins, then the stored one, then the fallback: the asset's).
# Returns {order, position, duration, sequence, watched, flush_due, at}: order 1 = applied, 0 = the same
# write again, -1 = older than the stored one (nothing changed; the stored values come back).
_RECORD = Script(
    """
local cur = redis.call('HMGET', KEYS[1], 'sid', 'sst', 'seq', 'at', 'fl', 'pos', 'dur', 'w')
local order = 1
if cur[1] then
  if cur[1] == ARGV[1] then
    local a, b = tonumber(ARGV[3]), tonumber(cur[3])
    if a == b then order = 0 elseif a < b then order = -1 end
  else
    local a, b = tonumber(ARGV[2]), tonumber(cur[2])
    if a < b or (a == b and ARGV[1] < cur[1]) then order = -1 end
  end
end
if order ~= 1 then
  return {order, cur[6] or '0', cur[7] or '', cur[3] or '0', tonumber(cur[8] or '0'), 0, cur[4] or '0'}
end
local now = tonumber(ARGV[6])
local at = now
if cur[4] and tonumber(cur[4]) >= at then at = tonumber(cur[4]) + 1 end
at = string.format('%d', at)
local dur = ARGV[5]
if dur == '' and cur[7] then dur = cur[7] end
if dur == '' then dur = ARGV[14] end
local pos = tonumber(ARGV[4])
local watched = 0
local d = tonumber(dur)
if d and d > 0 and pos >= d * tonumber(ARGV[13]) then watched = 1 end
if ARGV[12] ~= '' and pos >= tonumber(ARGV[12]) then watched = 1 end
redis.call('HSET', KEYS[1], 'sid', ARGV[1], 'sst', ARGV[2], 'seq', ARGV[3], 'pos', ARGV[4], 'dur', dur,
  'w', watched, 'at', at, 'tid', ARGV[10], 'eid', ARGV[11])
local due = 0
if not cur[5] or now - tonumber(cur[5]) >= tonumber(ARGV[7]) then
  due = 1
  redis.call('HSET', KEYS[1], 'fl', ARGV[6], 'fa', at)
  redis.call('ZREM', KEYS[2], ARGV[9])
else
  redis.call('ZADD', KEYS[2], 'NX', at, ARGV[9])
end
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('SET', KEYS[3], ARGV[9], 'EX', ARGV[8])
return {1, ARGV[4], dur, ARGV[3], watched, due, at}
"""
)

# KEYS: position hashes. Returns each hash as a flat field/value list ({} when gone).
_FETCH = Script(
    """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"""
)

# KEYS: dirty set, then position hashes. ARGV: now (ms), then per hash its dirty member and the `at` that
# was written to Postgres. A key rewritten since stays dirty (its newer write is not in Postgres yet).
_MARK = Script(
    """
local n = #KEYS - 1
for i = 1, n do
  local key, mem, at = KEYS[i + 1], ARGV[2 * i], ARGV[2 * i + 1]
  local cur = redis.call('HGET', key, 'at')
  if not cur then
    redis.call('ZREM', KEYS[1], mem)
  elseif cur == at then
    redis.call('HSET', key, 'fl', ARGV[1], 'fa', at)
    redis.call('ZREM', KEYS[1], mem)
  end
end
return n
"""
)


@dataclass(frozen=True)
class Buffered:
    """The newest accepted position of a profile in a content item, as Redis holds it."""

    profile_id: str
    content_id: str
    title_id: str
    episode_id: str | None
    session_id: str
    sequence: int
    position_seconds: float
    duration_seconds: float | None
    watched: bool
    at_ms: int  # acceptance time: strictly increasing per key
    flushed_at_ms: int | None  # `at` of the write last written to Postgres

    @property
    def dirty(self) -> bool:
        """True when Postgres does not have this write yet."""
        return self.flushed_at_ms != self.at_ms

    @property
    def member(self) -> str:
        """The dirty-set member of this key."""
        return member(self.profile_id, self.content_id)


@dataclass(frozen=True)
class Recorded:
    """The outcome of one position write."""

    order: int  # 1 applied, 0 duplicate, -1 older than the stored write
    position_seconds: float
    duration_seconds: float | None
    sequence: int
    watched: bool
    flush_due: bool
    at_ms: int


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def parse(profile_id: str, content_id: str, flat: list[str]) -> Buffered | None:
    """A Buffered from an HGETALL reply (None for a missing or incomplete hash)."""
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    if not {"sid", "seq", "pos", "at", "tid"} <= fields.keys():
        return None
    return Buffered(
        profile_id=profile_id,
        content_id=content_id,
        title_id=fields["tid"],
        episode_id=fields.get("eid") or None,
        session_id=fields["sid"],
        sequence=int(fields["seq"]),
        position_seconds=float(fields["pos"]),
        duration_seconds=_float(fields.get("dur")),
        watched=fields.get("w") == "1",
        at_ms=int(fields["at"]),
        flushed_at_ms=int(fields["fa"]) if fields.get("fa") else None,
    )


async def record(
    store: KeyValueStore,
    *,
    profile_id: str,
    content_id: str,
    title_id: str,
    episode_id: str | None,
    session_id: str,
    session_started_ms: int,
    sequence: int,
    position_seconds: float,
    duration_seconds: float | None,
    credits_start_seconds: float | None,
    fallback_duration_seconds: float | None,
    watched_fraction: float,
    now_ms: int,
    flush_ms: int,
) -> Recorded:
    """Keep this write if it is newer than the stored one (one Lua call); say whether a flush is due."""
    reply = await store.eval(
        _RECORD,
        keys=[position_key(profile_id, content_id), DIRTY_KEY, session_key(session_id)],
        args=[
            session_id,
            session_started_ms,
            sequence,
            float(position_seconds),
            "" if duration_seconds is None else float(duration_seconds),
            now_ms,
            flush_ms,
            TTL_SECONDS,
            member(profile_id, content_id),
            title_id,
            episode_id or "",
            "" if credits_start_seconds is None else float(credits_start_seconds),
            float(watched_fraction),
            "" if fallback_duration_seconds is None else float(fallback_duration_seconds),
        ],
    )
    order, position, duration, seq, watched, due, at = reply
    return Recorded(
        order=int(order),
        position_seconds=float(position),
        duration_seconds=_float(duration),
        sequence=int(seq),
        watched=int(watched) == 1,
        flush_due=int(due) == 1,
        at_ms=int(at),
    )


async def fetch(store: KeyValueStore, keys: list[tuple[str, str]]) -> list[Buffered | None]:
    """The buffered positions of these (profile, content) pairs, in order (one call)."""
    if not keys:
        return []
    reply = await store.eval(_FETCH, keys=[position_key(p, c) for p, c in keys])
    return [parse(p, c, list(flat or [])) for (p, c), flat in zip(keys, reply, strict=True)]


async def get(store: KeyValueStore, profile_id: str, content_id: str) -> Buffered | None:
    """One buffered position (one call)."""
    (found,) = await fetch(store, [(profile_id, content_id)])
    return found


async def mark_flushed(store: KeyValueStore, rows: list[Buffered], *, now_ms: int) -> None:
    """Record that these writes are in Postgres (those rewritten meanwhile stay dirty)."""
    if not rows:
        return
    args: list[str | int] = [now_ms]
    for row in rows:
        args += [row.member, str(row.at_ms)]
    await store.eval(
        _MARK, keys=[DIRTY_KEY, *(position_key(r.profile_id, r.content_id) for r in rows)], args=args
    )


async def mark_dirty(store: KeyValueStore, rows: list[Buffered]) -> None:
    """Put writes whose flush failed back on the dirty set (the periodic flush retries them)."""
    if rows:
        await store.zadd(DIRTY_KEY, {row.member: float(row.at_ms) for row in rows})


async def due(store: KeyValueStore, *, older_than_ms: int, limit: int) -> list[tuple[str, str]]:
    """Dirty (profile, content) pairs whose first unflushed write is at or before older_than_ms."""
    found = await store.zrangebyscore(DIRTY_KEY, "-inf", older_than_ms, count=limit)
    pairs: list[tuple[str, str]] = []
    for item in found:
        profile_id, _, content_id = item.partition(":")
        pairs.append((profile_id, content_id))
    return pairs


async def session_member(store: KeyValueStore, session_id: str) -> tuple[str, str] | None:
    """The (profile, content) a session wrote positions for, if any."""
    value = await store.get(session_key(session_id))
    if not value:
        return None
    profile_id, _, content_id = value.partition(":")
    return profile_id, content_id


async def drop_dirty(store: KeyValueStore, keys: list[tuple[str, str]]) -> None:
    """Take pairs off the dirty set (their hash expired: nothing left to flush)."""
    if keys:
        await store.zrem(DIRTY_KEY, *(member(p, c) for p, c in keys))


async def forget(store: KeyValueStore, keys: list[tuple[str, str]]) -> None:
    """Drop buffered positions (history removal) and their dirty entries."""
    if keys:
        await store.delete(*(position_key(p, c) for p, c in keys))
        await store.zrem(DIRTY_KEY, *(member(p, c) for p, c in keys))
