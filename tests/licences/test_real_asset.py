"""On a real transcoded asset: the key from the endpoint decrypts a real HLS segment into decodable video,
and the ClearKey licence answers the KID the real MPD announces."""

from __future__ import annotations

import asyncio
import posixpath
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.licences.schemas import b64url, b64url_decode
from tests.licences.conftest import KEY_PATH, Asset, new_playback
from tests.support.catalog_factory import title

pytestmark = pytest.mark.slow
Db = psycopg.AsyncConnection[Any]


def _decrypt(data: bytes, *, key: bytes, sequence: int) -> bytes:
    """AES-128-CBC, IV = media sequence number (RFC 8216 5.2), PKCS#7: written out here, not our helper."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key), modes.CBC(sequence.to_bytes(16, "big"))).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _decode_one_frame(path: Path) -> tuple[int, int]:
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


async def _real(database_url: str, db: Db) -> Asset:
    from shared.settings import get_settings
    from shared.transcoding.keys import load_keys
    from tests.support.playback import asset_for

    title_id = await title(db, f"Real {uuid.uuid4().hex[:8]}", access="subscription", min_tier=1)
    copy = await asset_for(database_url, title_id=title_id)
    async with db.transaction():
        keys = await load_keys(db, asset_id=uuid.UUID(copy.asset_id), settings=get_settings())
    return Asset(title_id=title_id, asset_id=uuid.UUID(copy.asset_id), keys=keys)


async def test_key_decrypts_a_real_segment(database_url: str, db: Db, keys_client: httpx.AsyncClient) -> None:
    import m3u8

    from shared.infra.storage import get_storage

    asset = await _real(database_url, db)
    playback = await new_playback(database_url, db, asset)
    response = await keys_client.get(playback.key_url)
    assert response.status_code == 200, response.text
    key = response.content

    storage = await get_storage()
    prefix = f"media/assets/{asset.asset_id}/hls/"
    master = m3u8.loads((await storage.get_bytes(prefix + "master.m3u8")).decode())
    variant = master.playlists[0].uri
    media = m3u8.loads((await storage.get_bytes(prefix + variant)).decode())
    (segment_key,) = {k.uri for k in media.keys if k is not None}
    # The relative key URI resolves, under the variant's folder, to the endpoint's hls.key.
    assert posixpath.normpath(posixpath.join(posixpath.dirname(prefix + variant), segment_key)) == (
        prefix + "keys/hls.key"
    )
    assert KEY_PATH.format(asset=asset.asset_id).endswith("/hls.key")
    base = posixpath.dirname(prefix + variant)
    init = await storage.get_bytes(posixpath.join(base, media.segment_map[0].uri))
    encrypted = await storage.get_bytes(posixpath.join(base, media.segments[0].uri))
    clear = _decrypt(encrypted, key=key, sequence=media.media_sequence or 0)
    assert clear[4:8] in (b"styp", b"moof", b"sidx")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "first.mp4"
        path.write_bytes(init + clear)
        width, height = await asyncio.to_thread(_decode_one_frame, path)
    assert width > 0 and height > 0


async def test_clearkey_answers_the_real_mpd_kid(
    database_url: str, db: Db, keys_client: httpx.AsyncClient
) -> None:
    from shared.infra.storage import get_storage

    asset = await _real(database_url, db)
    playback = await new_playback(database_url, db, asset)
    storage = await get_storage()
    mpd = (await storage.get_bytes(f"media/assets/{asset.asset_id}/dash/manifest.mpd")).decode()
    match = re.search(r'default_KID="([0-9a-fA-F-]{36})"', mpd)
    assert match, mpd[:500]
    kid = uuid.UUID(match[1]).bytes
    response = await keys_client.post(
        playback.clearkey_url, json={"kids": [b64url(kid)], "type": "temporary"}
    )
    assert response.status_code == 200, response.text
    (jwk,) = response.json()["keys"]
    assert b64url_decode(jwk["kid"]) == kid
    assert b64url_decode(jwk["k"]) == asset.keys.cenc_key
