"""Watched rules, continue watching (order, progress, next episode), history with removal, next episode."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from api.catalog import app as catalog_app
from shared.watch import service
from shared.watch.schemas import PositionInput
from tests.support import catalog_factory as make
from tests.support.identity import client_for
from tests.watch.conftest import STREAMING, Watcher, episodes_of, live_session, stored


class Player:
    """Plays items for a watcher through the service, on an injected clock moving 2 s per write."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher
        self.now = time.time()
        self.sessions: dict[uuid.UUID, Any] = {}
        self.sequence = 0

    async def play(
        self,
        title_id: uuid.UUID,
        position: float,
        duration: float | None,
        *,
        episode_id: uuid.UUID | None = None,
    ) -> Any:
        """Report a position (flushed to Postgres: each write is a flush interval after the last)."""
        content = episode_id or title_id
        if content not in self.sessions:
            self.sessions[content] = await live_session(
                self.watcher, title_id=title_id, episode_id=episode_id
            )
        self.now += 2
        self.sequence += 1
        return await service.save_position(
            session=self.sessions[content],
            position=PositionInput(
                position_seconds=position, duration_seconds=duration, sequence=self.sequence
            ),
            now=self.now,
        )


async def items(streaming: httpx.AsyncClient, watcher: Watcher) -> list[dict[str, Any]]:
    """The continue-watching items."""
    response = await streaming.get(f"{STREAMING}/continue-watching", headers=watcher.headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    return list(response.json()["items"])


def summary(found: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """(title id, content id, progress) of each item."""
    return [(item["title"]["id"], item["content_id"], item["progress"]) for item in found]


async def resume(watcher: Watcher, content_id: Any) -> float | None:
    """resume_position as session start calls it."""
    from shared.infra.db import get_pool

    async with (await get_pool()).connection() as conn:
        return await service.resume_position(conn, profile_id=watcher.profile_id, content_id=content_id)


async def test_watched_at_the_fraction_or_the_credits(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher, settings_env: Any
) -> None:
    settings_env(POSITION_FLUSH_SECONDS="1")
    player = Player(watcher)
    movie = await make.title(db, "Ninety-five")
    assert not (await player.play(movie, 94, 100)).watched
    assert await resume(watcher, movie) == 94
    assert (await player.play(movie, 95, 100)).watched
    assert await resume(watcher, movie) is None  # watched: start over
    assert (await stored(db, watcher.profile_id, movie) or {})["watched"] is True
    # Credits of a movie (the title's credits_start_seconds), the duration coming from an earlier write.
    credits = await make.title(db, "Credits", credits_start_seconds=80)
    assert not (await player.play(credits, 79, 100)).watched
    assert (await player.play(credits, 81, None)).watched
    # An episode's own credits.
    series = await make.title(db, "Credits series", kind="series")
    await make.season(db, series, 1, episodes=2)
    first, _ = await episodes_of(db, series)
    await db.execute("update public.catalog_episodes set credits_start_seconds = 50 where id = %s", (first,))
    assert (await player.play(series, 51, 3000, episode_id=first)).watched
    assert [item["title"]["id"] for item in await items(streaming, watcher)] == [str(series)]
    # Rewatching from the start makes it unwatched again.
    assert not (await player.play(movie, 5, 100)).watched
    assert await resume(watcher, movie) == 5


async def test_continue_watching_order_progress_and_next_episode(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher, settings_env: Any
) -> None:
    settings_env(POSITION_FLUSH_SECONDS="1")
    player = Player(watcher)
    m1 = await make.title(db, "First movie")
    m2 = await make.title(db, "Second movie")
    series = await make.title(db, "A series", kind="series")
    await make.season(db, series, 1, episodes=2)
    await make.season(db, series, 2, episodes=1)
    s1e1, s1e2, s2e1 = await episodes_of(db, series)
    assert await items(streaming, watcher) == []

    await player.play(m1, 30, 100)
    await player.play(series, 10, 50, episode_id=s1e1)
    await player.play(m2, 99, 100)  # finished: not to continue
    found = await items(streaming, watcher)
    assert summary(found) == [(str(series), str(s1e1), 20.0), (str(m1), str(m1), 30.0)]
    assert found[0]["episode"]["id"] == str(s1e1) and found[0]["episode"]["season_number"] == 1
    assert found[0]["next_episode"]["id"] == str(s1e2)
    assert found[1]["episode"] is None and found[1]["next_episode"] is None
    assert found[1]["position_seconds"] == 30 and found[1]["duration_seconds"] == 100

    # Finishing an episode moves the series on to the next one; m1 watched later comes first.
    await player.play(series, 48, 50, episode_id=s1e1)
    await player.play(m1, 50, 100)
    found = await items(streaming, watcher)
    assert summary(found) == [(str(m1), str(m1), 50.0), (str(series), str(s1e2), 0.0)]
    assert found[1]["next_episode"]["id"] == str(s2e1)

    # Across seasons: after the season's last episode comes the next season's first.
    await player.play(series, 50, 50, episode_id=s1e2)
    found = await items(streaming, watcher)
    assert summary(found)[0] == (str(series), str(s2e1), 0.0)
    assert found[0]["episode"]["season_number"] == 2 and found[0]["next_episode"] is None

    # The home row of the catalog is the same list.
    async with client_for(catalog_app) as catalog:
        home = (await catalog.get("/api/v1/catalog/home", headers=watcher.headers)).json()
    row = next(r for r in home["rows"] if r["id"] == "continue_watching")
    assert [card["id"] for card in row["items"]] == [str(series), str(m1)]

    # A title the profile may no longer see drops out; the finished series too.
    await db.execute("update public.catalog_titles set status = 'draft' where id = %s", (m1,))
    await player.play(series, 50, 50, episode_id=s2e1)
    assert await items(streaming, watcher) == []
    await db.execute("update public.catalog_titles set status = 'published' where id = %s", (m1,))
    assert summary(await items(streaming, watcher)) == [(str(m1), str(m1), 50.0)]
    limited = await streaming.get(f"{STREAMING}/continue-watching?limit=0", headers=watcher.headers)
    assert limited.status_code == 422


async def test_history_pages_and_removal(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher, settings_env: Any
) -> None:
    settings_env(POSITION_FLUSH_SECONDS="1")
    player = Player(watcher)
    m1 = await make.title(db, "History one")
    m2 = await make.title(db, "History two")
    series = await make.title(db, "History series", kind="series")
    await make.season(db, series, 1, episodes=2)
    e1, e2 = await episodes_of(db, series)
    await player.play(m1, 10, 100)
    await player.play(m2, 100, 100)  # watched: still history
    await player.play(series, 5, 60, episode_id=e1)
    await player.play(series, 6, 60, episode_id=e2)

    first = await streaming.get(f"{STREAMING}/history?limit=3", headers=watcher.headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["content_id"] for item in page["items"]] == [str(e2), str(e1), str(m2)]
    assert page["items"][2]["watched"] is True and page["items"][2]["progress"] == 100
    rest = await streaming.get(
        f"{STREAMING}/history", params={"limit": 3, "cursor": page["next_cursor"]}, headers=watcher.headers
    )
    assert [item["content_id"] for item in rest.json()["items"]] == [str(m1)]
    assert rest.json()["next_cursor"] is None
    assert (
        await streaming.get(f"{STREAMING}/history?cursor=zzz", headers=watcher.headers)
    ).status_code == 400

    # Removing a movie: gone from history, continue watching and resume; idempotent.
    for _ in range(2):
        removed = await streaming.delete(f"{STREAMING}/history/{m1}", headers=watcher.headers)
        assert removed.status_code == 204, removed.text
    history = (await streaming.get(f"{STREAMING}/history", headers=watcher.headers)).json()["items"]
    assert str(m1) not in [item["content_id"] for item in history]
    assert str(m1) not in [item["title"]["id"] for item in await items(streaming, watcher)]
    assert await resume(watcher, m1) is None
    # A series id removes all its episodes.
    assert (
        await streaming.delete(f"{STREAMING}/history/{series}", headers=watcher.headers)
    ).status_code == 204
    history = (await streaming.get(f"{STREAMING}/history", headers=watcher.headers)).json()["items"]
    assert [item["content_id"] for item in history] == [str(m2)]
    # Watching it again brings it back.
    await player.play(m1, 20, 100)
    history = (await streaming.get(f"{STREAMING}/history", headers=watcher.headers)).json()["items"]
    assert [item["content_id"] for item in history] == [str(m1), str(m2)]
    # Without a profile there is no history.
    plain = await streaming.get(f"{STREAMING}/history", headers=watcher.user.headers)
    assert plain.status_code == 400 and plain.json()["code"] == "profile_required"
    gone = await streaming.delete(f"{STREAMING}/history/{m1}", headers=watcher.user.headers)
    assert gone.status_code == 400


async def test_next_episode(
    db: Any, streaming: httpx.AsyncClient, watcher: Watcher, settings_env: Any
) -> None:
    settings_env(POSITION_FLUSH_SECONDS="1")
    player = Player(watcher)
    series = await make.title(db, "Next series", kind="series")
    await make.season(db, series, 1, episodes=2)
    await make.season(db, series, 2, episodes=2)
    s1e1, s1e2, s2e1, s2e2 = await episodes_of(db, series)
    movie = await make.title(db, "Next movie")

    async def next_of(content: Any) -> httpx.Response:
        return await streaming.get(f"{STREAMING}/{content}/next", headers=watcher.headers)

    answer = await next_of(s1e1)
    assert answer.status_code == 200, answer.text
    assert answer.json()["episode"]["id"] == str(s1e2) and answer.json()["title_id"] == str(series)
    assert (await next_of(s1e2)).json()["episode"]["id"] == str(s2e1)  # across seasons
    assert (await next_of(s2e1)).json()["episode"]["id"] == str(s2e2)
    assert (await next_of(s2e2)).status_code == 204  # the last one
    assert (await next_of(movie)).status_code == 204
    # For a series: the episode to play now (the first, then where the profile is).
    assert (await next_of(series)).json()["episode"]["id"] == str(s1e1)
    await player.play(series, 2700, 2700, episode_id=s1e1)
    assert (await next_of(series)).json()["episode"]["id"] == str(s1e2)
    await player.play(series, 600, 2700, episode_id=s1e2)
    up_next = (await next_of(series)).json()
    assert up_next["episode"]["id"] == str(s1e2) and up_next["position_seconds"] == 600
    # Unknown, or not visible to the viewer: 404.
    assert (await next_of(uuid.uuid4())).json()["code"] == "content_not_found"
    await db.execute("update public.catalog_titles set status = 'draft' where id = %s", (series,))
    assert (await next_of(s1e1)).status_code == 404
    assert (await next_of("not-a-uuid")).status_code == 422
