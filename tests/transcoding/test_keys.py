"""Content keys under envelope encryption: wrapped at rest, bound to their asset, master key rotation."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from shared.settings import ConfigError, get_settings
from shared.transcoding.keys import (
    KeyUnavailable,
    load_keys,
    master_key_id,
    master_keys,
    new_content_keys,
    rewrap_keys,
    store_keys,
)
from tests.transcoding.jobs_support import Db, make_source


async def new_asset(db: Db, tmp_path: Path) -> uuid.UUID:
    path = tmp_path / f"{uuid.uuid4().hex}.mp4"
    path.write_bytes(b"\0" * 8)
    source_id, title_id = await make_source(db, path)
    asset_id = uuid.uuid4()
    await db.execute(
        "insert into public.media_assets (id, source_id, title_id, storage_prefix) values (%s, %s, %s, %s)",
        (asset_id, source_id, title_id, f"media/assets/{asset_id}/"),
    )
    return asset_id


def master() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def test_new_keys_are_random_and_the_right_size() -> None:
    one, two = new_content_keys(), new_content_keys()
    assert {len(one.key_id), len(one.cenc_key), len(one.hls_key)} == {16}
    assert one != two and one.cenc_key != one.hls_key


async def test_keys_are_stored_wrapped_and_unwrap_to_the_same(db: Db, tmp_path: Path) -> None:
    asset_id = await new_asset(db, tmp_path)
    keys = new_content_keys()
    await store_keys(db, asset_id=asset_id, keys=keys, settings=get_settings())
    await store_keys(db, asset_id=asset_id, keys=new_content_keys(), settings=get_settings())  # first wins
    cursor = await db.execute(
        "select key_id, wrapped_cenc_key, wrapped_hls_key, master_key_id from public.media_keys"
        " where asset_id = %s",
        (asset_id,),
    )
    [(key_id, wrapped_cenc, wrapped_hls, master_id)] = await cursor.fetchall()
    assert key_id == keys.key_id.hex()
    assert keys.cenc_key not in bytes(wrapped_cenc) and keys.hls_key not in bytes(wrapped_hls)
    assert len(bytes(wrapped_cenc)) == 12 + 16 + 16  # nonce, key, GCM tag
    assert master_id == master_keys(get_settings())[0].key_id
    assert await load_keys(db, asset_id=asset_id, settings=get_settings()) == keys


async def test_a_wrapped_key_does_not_unwrap_on_another_asset_or_purpose(db: Db, tmp_path: Path) -> None:
    first, second = await new_asset(db, tmp_path), await new_asset(db, tmp_path)
    await store_keys(db, asset_id=first, keys=new_content_keys(), settings=get_settings())
    await store_keys(db, asset_id=second, keys=new_content_keys(), settings=get_settings())
    # Copy the first asset's wrapped keys onto the second (a database-level swap).
    await db.execute(
        "update public.media_keys set wrapped_cenc_key = (select wrapped_cenc_key from public.media_keys"
        " where asset_id = %s) where asset_id = %s",
        (first, second),
    )
    with pytest.raises(KeyUnavailable):
        await load_keys(db, asset_id=second, settings=get_settings())
    await db.execute(
        "update public.media_keys set wrapped_hls_key = wrapped_cenc_key where asset_id = %s", (first,)
    )
    with pytest.raises(KeyUnavailable):
        await load_keys(db, asset_id=first, settings=get_settings())
    with pytest.raises(KeyUnavailable):
        await load_keys(db, asset_id=uuid.uuid4(), settings=get_settings())


async def test_master_key_rotation(db: Db, tmp_path: Path, settings_env: Any) -> None:
    old, new = master(), master()
    settings_env(MEDIA_MASTER_KEY=old)
    asset_id = await new_asset(db, tmp_path)
    keys = new_content_keys()
    await store_keys(db, asset_id=asset_id, keys=keys, settings=get_settings())

    settings_env(MEDIA_MASTER_KEY=new)  # the old key forgotten: nothing unwraps
    with pytest.raises(KeyUnavailable, match="MEDIA_PREVIOUS_MASTER_KEYS"):
        await load_keys(db, asset_id=asset_id, settings=get_settings())

    settings_env(MEDIA_MASTER_KEY=new, MEDIA_PREVIOUS_MASTER_KEYS=old)
    assert await load_keys(db, asset_id=asset_id, settings=get_settings()) == keys
    assert await rewrap_keys(db, settings=get_settings()) >= 1
    cursor = await db.execute("select master_key_id from public.media_keys where asset_id = %s", (asset_id,))
    assert await cursor.fetchone() == (master_key_id(base64.b64decode(new)),)

    settings_env(MEDIA_MASTER_KEY=new, MEDIA_PREVIOUS_MASTER_KEYS=None)  # now the old key may go
    assert await load_keys(db, asset_id=asset_id, settings=get_settings()) == keys


def test_a_malformed_master_key_is_refused(settings_env: Any) -> None:
    # The settings refuse it at start-up ...
    settings_env(MEDIA_MASTER_KEY=base64.b64encode(b"short" * 9).decode())
    with pytest.raises(ConfigError, match="32 bytes"):
        get_settings()
    settings_env(MEDIA_MASTER_KEY=None)
    # ... and master_keys itself too, for settings built without that validation.
    short = get_settings().model_copy(update={"media_master_key": base64.b64encode(b"short" * 9).decode()})
    with pytest.raises(ValueError, match="32 bytes"):
        master_keys(short)
    garbage = get_settings().model_copy(update={"media_previous_master_keys": ["!" * 44]})
    with pytest.raises(ValueError, match="base64"):
        master_keys(garbage)
