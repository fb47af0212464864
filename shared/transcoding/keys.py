"""Per-asset content keys under envelope encryption: AES-256-GCM wrapped by a master key from the environment.

Only wrapped keys reach the database (media_keys); the master key never does. Each wrap is
nonce(12) || ciphertext+tag, with the asset id and the key's purpose as associated data, so a wrapped key
copied onto another asset or into the other column does not unwrap. master_key_id (a short hash of the
master key) says which master wrapped a row: after MEDIA_MASTER_KEY changes, rows wrapped by a key listed
in MEDIA_PREVIOUS_MASTER_KEYS still unwrap (and `rewrap_keys` moves them to the current one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.transcoding.pipeline.model import ContentKeys, PipelineError

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.settings import Settings

_NONCE_BYTES = 12


class KeyUnavailable(Exception):
    """The asset has no keys, or they were wrapped by a master key this deployment does not hold."""


class KeysMissing(KeyUnavailable):
    """The asset has no keys yet (a first run creates them)."""


@dataclass(frozen=True)
class MasterKey:
    """A 32-byte key-encryption key and its public id."""

    key_id: str
    secret: bytes = field(repr=False)  # never printed in tracebacks or logs


def master_key_id(secret: bytes) -> str:
    """A short public id of a master key (a hash prefix; reveals nothing useful about the key)."""
    return hashlib.sha256(b"cinema-media-master-key:" + secret).hexdigest()[:16]


def _decode_master(value: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError("a media master key must be base64 of 32 bytes") from error
    if len(raw) != 32:
        raise ValueError(f"a media master key must be 32 bytes, got {len(raw)}")
    return raw


def master_keys(settings: Settings) -> list[MasterKey]:
    """The current master key first, then the previous ones (for unwrapping only)."""
    from shared.settings import derived_key

    current = (
        _decode_master(settings.media_master_key)
        if settings.media_master_key
        else derived_key(settings, "media-master-key")
    )
    keys = [MasterKey(master_key_id(current), current)]
    for value in settings.media_previous_master_keys:
        secret = _decode_master(value)
        keys.append(MasterKey(master_key_id(secret), secret))
    return keys


def new_content_keys() -> ContentKeys:
    """A fresh random key set: a CENC key with its KID and a separate AES-128 key for HLS."""
    return ContentKeys(key_id=os.urandom(16), cenc_key=os.urandom(16), hls_key=os.urandom(16))


def _aad(asset_id: uuid.UUID, purpose: str) -> bytes:
    return f"cinema-media-key:{asset_id}:{purpose}".encode()


def wrap(master: MasterKey, key: bytes, *, asset_id: uuid.UUID, purpose: str) -> bytes:
    """Encrypt one content key under the master key, bound to its asset and purpose."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(master.secret).encrypt(nonce, key, _aad(asset_id, purpose))


def unwrap(master: MasterKey, wrapped: bytes, *, asset_id: uuid.UUID, purpose: str) -> bytes:
    """Decrypt one wrapped content key; KeyUnavailable when it was not wrapped this way."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce, sealed = bytes(wrapped[:_NONCE_BYTES]), bytes(wrapped[_NONCE_BYTES:])
    try:
        return AESGCM(master.secret).decrypt(nonce, sealed, _aad(asset_id, purpose))
    except InvalidTag as error:
        raise KeyUnavailable(f"the {purpose} key of asset {asset_id} does not unwrap") from error


async def store_keys(
    conn: AsyncConnection[Any], *, asset_id: uuid.UUID, keys: ContentKeys, settings: Settings
) -> None:
    """Store the asset's keys wrapped under the current master key (first write wins: keys never change)."""
    master = master_keys(settings)[0]
    await conn.execute(
        """
        insert into public.media_keys (asset_id, key_id, wrapped_cenc_key, wrapped_hls_key, master_key_id)
        values (%s, %s, %s, %s, %s)
        on conflict (asset_id) do nothing
        """,
        (
            asset_id,
            keys.key_id.hex(),
            wrap(master, keys.cenc_key, asset_id=asset_id, purpose="cenc"),
            wrap(master, keys.hls_key, asset_id=asset_id, purpose="hls"),
            master.key_id,
        ),
    )


async def load_keys(conn: AsyncConnection[Any], *, asset_id: uuid.UUID, settings: Settings) -> ContentKeys:
    """The asset's keys, unwrapped; KeyUnavailable when absent or wrapped by an unknown master key."""
    from shared.infra.db import fetch_one

    row = await fetch_one(
        conn,
        "select key_id, wrapped_cenc_key, wrapped_hls_key, master_key_id from public.media_keys"
        " where asset_id = %s",
        (asset_id,),
    )
    if row is None:
        raise KeysMissing(f"asset {asset_id} has no content keys")
    master = next((key for key in master_keys(settings) if key.key_id == row["master_key_id"]), None)
    if master is None:
        raise KeyUnavailable(
            f"the keys of asset {asset_id} were wrapped by master key {row['master_key_id']}, which is"
            " neither MEDIA_MASTER_KEY nor in MEDIA_PREVIOUS_MASTER_KEYS"
        )
    return ContentKeys(
        key_id=bytes.fromhex(row["key_id"]),
        cenc_key=unwrap(master, row["wrapped_cenc_key"], asset_id=asset_id, purpose="cenc"),
        hls_key=unwrap(master, row["wrapped_hls_key"], asset_id=asset_id, purpose="hls"),
    )


async def asset_keys(conn: AsyncConnection[Any], *, asset_id: uuid.UUID, settings: Settings) -> ContentKeys:
    """load_keys for the pipeline: keys this deployment cannot unwrap are a permanent job failure.

    A retry cannot help (the master key is configuration), so it is PipelineError 'keys_unavailable',
    not an internal error retried until the attempts run out. KeysMissing passes through.
    """
    try:
        return await load_keys(conn, asset_id=asset_id, settings=settings)
    except KeysMissing:
        raise
    except KeyUnavailable as error:
        raise PipelineError(
            "The asset's content keys cannot be unwrapped: they were wrapped by a master key that is"
            " neither MEDIA_MASTER_KEY nor in MEDIA_PREVIOUS_MASTER_KEYS. Restore that key and re-encode.",
            code="keys_unavailable",
        ) from error


async def rewrap_keys(conn: AsyncConnection[Any], *, settings: Settings, limit: int = 500) -> int:
    """Re-wrap up to `limit` key rows still under a previous master key with the current one; the count."""
    from shared.infra.db import fetch_all

    current = master_keys(settings)[0]
    rows = await fetch_all(
        conn,
        "select asset_id from public.media_keys where master_key_id <> %s limit %s for update skip locked",
        (current.key_id, limit),
    )
    done = 0
    for row in rows:
        try:
            keys = await load_keys(conn, asset_id=row["asset_id"], settings=settings)
        except KeyUnavailable:
            continue  # wrapped by a key we no longer hold: leave it for someone who has it
        await conn.execute(
            "update public.media_keys set wrapped_cenc_key = %s, wrapped_hls_key = %s, master_key_id = %s"
            " where asset_id = %s",
            (
                wrap(current, keys.cenc_key, asset_id=row["asset_id"], purpose="cenc"),
                wrap(current, keys.hls_key, asset_id=row["asset_id"], purpose="hls"),
                current.key_id,
                row["asset_id"],
            ),
        )
        done += 1
    return done
