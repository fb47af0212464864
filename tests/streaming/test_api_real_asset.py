"""A session on a real transcoded asset: every track URL the start hands out is fetchable through the dev
server's signed /t/<token>/ route, and so are they with the token of a later heartbeat."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.streaming.conftest import SESSIONS, Db, Viewer, entitle, start, streaming_app
from tests.support import catalog_factory as factory
from tests.support.identity import client_for, random_ip
from tests.support.playback import asset_for

pytestmark = pytest.mark.slow


async def test_tracks_and_thumbnails_are_served_under_the_session_token(
    viewer: Viewer, db: Db, database_url: str
) -> None:
    from shared.local.devserver import DevServer

    title_id = await factory.title(db, "Real tracks", maturity_level="all")
    asset = await asset_for(database_url, title_id=title_id)
    await entitle(db, viewer.user_id)
    address = random_ip()
    async with (
        client_for(streaming_app(), client_ip=address) as api,
        client_for(DevServer(), client_ip=address) as edge,
    ):
        body = (await start(api, viewer, title_id)).json()
        assert sorted(t["language"] for t in body["audio_tracks"]) == sorted(asset.audio_languages)
        forced = {t["language"]: t["forced"] for t in body["subtitle_tracks"]}
        assert forced == {"en": False, "fr": True}
        urls = [t["url"] for t in body["subtitle_tracks"]] + [body["thumbnails"]["url"]]
        for url in urls:
            response = await edge.get(urlsplit(url).path)
            assert response.status_code == 200, (url, response.text)
        vtt = await edge.get(urlsplit(body["thumbnails"]["url"]).path)
        assert vtt.headers["content-type"].startswith("text/vtt") and vtt.text.startswith("WEBVTT")
        # The storyboard sprites the thumbnails track names relatively inherit the token.
        sprite = next(line for line in vtt.text.splitlines() if "#xywh=" in line).split("#")[0]
        base = urlsplit(body["thumbnails"]["url"]).path.rsplit("/", 1)[0]
        image = await edge.get(f"{base}/{sprite}")
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        beat = await api.post(f"{SESSIONS}/{body['session_id']}/heartbeat", headers=viewer.headers)
        fresh = beat.json()["delivery_token"]
        swapped = urlsplit(urls[0]).path.replace(body["delivery_token"], fresh)
        assert (await edge.get(swapped)).status_code == 200
