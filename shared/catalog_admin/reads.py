"""What a write answers: the catalog's own read models, built by the catalog service for a content manager.

The answer is exactly what GET returns to a manager (resolved image URLs, `publishing`), so a client
needs one model of a title, and the read SQL lives in one place (shared.catalog).
"""

from __future__ import annotations

import uuid
from typing import Any

from shared.catalog import service as catalog
from shared.catalog.schemas import EpisodeRead, PersonDetail, SeasonRead, TitleDetail
from shared.catalog.visibility import Viewer

Row = dict[str, Any]


def _manager() -> Viewer:
    # Managers see every title that is not deleted, whatever its status, window, country or rating.
    return Viewer(manager=True)


async def title_detail(conn: Any, *, title_id: uuid.UUID) -> TitleDetail:
    """A live title with its taxonomy, credits, seasons and publishing state."""
    return await catalog.title_detail(conn, viewer=_manager(), ref=title_id)


async def season_read(conn: Any, *, title_id: uuid.UUID, number: int) -> SeasonRead:
    """One season with its episodes."""
    return await catalog.season(conn, viewer=_manager(), ref=title_id, number=number)


async def episode_read(conn: Any, episode: Row, *, season_number: int) -> EpisodeRead:
    """One episode, as its season lists it."""
    season = await season_read(conn, title_id=episode["title_id"], number=season_number)
    return next(item for item in season.episodes if item.id == episode["id"])


async def person_detail(conn: Any, *, person_id: uuid.UUID) -> PersonDetail:
    """A live person with their credits."""
    return await catalog.person(conn, viewer=_manager(), ref=person_id)
