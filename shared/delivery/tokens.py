"""Delivery tokens: an expiring HMAC bound to a stream session, one asset's storage prefix and a quality cap.

The token sits in the URL PATH, `{media_base_url}/t/<token>/media/assets/<asset_id>/hls/<rendition>/...`,
so the relative URIs inside the static media playlists (`seg-00001.m4s`, `../keys/hls.key`) resolve
under the same `/t/<token>/` and inherit it: the playlists stay identical for every viewer and cacheable.

What a token opens, beyond its asset prefix (the same rules in edge/cloudflare/worker.js):
- never the stored masters `hls/master.m3u8` and `dash/manifest.mpd`: they list every rendition, and a
  session's master (capped) comes from the API's manifest endpoint only;
- no rendition folder `<codec>_<N>p` with N above the session's max_height (the player would otherwise
  fetch the uncapped renditions by name). A cap below the lowest ladder rung (LOWEST_RUNG) still opens
  that rung, as the manifest keeps the lowest variant when nothing fits. Trick play, audio, subtitles,
  images and keys carry no height and stay open.

Wire format, VERSION 2 (the Worker parses the same bytes):
  base64url, no padding, canonical, of  version (1 byte = 2) | session uuid (16) | asset uuid (16)
      | expires_at (uint32 big-endian, unix seconds) | max_height (uint16 big-endian) | HMAC-SHA256 (32)
  the MAC covering the 39 bytes before it, keyed by delivery_secret(settings). 71 bytes are 95
  characters; the last one carries 4 bits, so only the encoding with its 2 spare bits at zero is accepted
  (one token per claim set: nothing to vary without the secret).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from shared.settings import Settings

VERSION = 2
_HEAD = struct.Struct(">B16s16sIH")  # version, session, asset, expires_at, max_height
MAC_BYTES = 32
TOKEN_BYTES = _HEAD.size + MAC_BYTES  # 71 bytes -> 95 base64url characters
TOKEN_CHARS = 95
_TOKEN = re.compile(r"[A-Za-z0-9_-]{95}")
# A storage key segment: no empty segment ('//'), no '.'/'..', no '%' (an encoded slash or dot decoded
# once more somewhere), no backslash or control character.
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")
# A video rendition folder as the pipeline names it (shared.transcoding.pipeline.ladder): h264_720p.
RENDITION = re.compile(r"[a-z][a-z0-9]*_(?P<height>[0-9]{1,5})p", re.IGNORECASE)
# The stored masters list every rendition: sessions get theirs from the manifest endpoint only.
MASTERS = frozenset({"hls/master.m3u8", "dash/manifest.mpd"})
LOWEST_RUNG = 240  # the ladder's lowest step (ladder.STEPS[0]); every asset has it or a smaller one
UNCAPPED = 4320  # the largest cap (8K's 4320 lines): tests forging tokens that must open every rendition
TOKEN_PURPOSE = "delivery-token"  # noqa: S105 - an HKDF label, not a secret

Reason = Literal["malformed", "bad_signature", "expired", "wrong_prefix", "forbidden_path"]

# The problem code each refusal is reported with (dev server, Worker, key and licence endpoints).
PROBLEM_CODES: dict[str, str] = {
    "malformed": "invalid_token",
    "bad_signature": "invalid_token",
    "expired": "token_expired",
    "wrong_prefix": "wrong_asset",
    "forbidden_path": "path_not_allowed",
}


class TokenError(Exception):
    """A token that must not be honoured; `reason` is one of Reason (PROBLEM_CODES maps it to a code)."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason: Reason = reason
        self.detail = detail

    @property
    def code(self) -> str:
        """The problem code of this refusal."""
        return PROBLEM_CODES[self.reason]


@dataclass(frozen=True)
class TokenClaims:
    """What a verified token grants."""

    session_id: str
    asset_id: str
    expires_at: int
    max_height: int

    @property
    def prefix(self) -> str:
        """The storage prefix the token opens: `media/assets/<asset_id>/`."""
        return asset_prefix(self.asset_id)


class _Session(Protocol):
    """The fields of a stream session a token is bound to (shared.streaming.sessions.StreamSession)."""

    @property
    def id(self) -> str: ...

    @property
    def asset_id(self) -> str: ...

    @property
    def max_height(self) -> int: ...


def asset_prefix(asset_id: str) -> str:
    """The storage prefix of an asset's published files."""
    return f"media/assets/{uuid.UUID(str(asset_id))}/"


def same_id(left: object, right: object) -> bool:
    """Two ids compared as UUIDs (a session blob may hold them as text); False when either is not one."""
    try:
        return uuid.UUID(str(left)) == uuid.UUID(str(right))
    except ValueError:
        return False


def sign(*, session_id: str, asset_id: str, expires_at: int, secret: bytes, max_height: int) -> str:
    """A url-safe token for the session, the asset's prefix, the quality cap and the expiry."""
    if not 0 < expires_at < 2**32:
        raise ValueError("expires_at must be a unix time in seconds before 2106")
    if not 0 < max_height < 2**16:
        raise ValueError("max_height must be a height in pixels, 1 to 65535")
    head = _HEAD.pack(
        VERSION, uuid.UUID(str(session_id)).bytes, uuid.UUID(str(asset_id)).bytes, expires_at, max_height
    )
    mac = hmac.new(secret, head, hashlib.sha256).digest()
    return _encode(head + mac)


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(token: str, *, secret: bytes) -> TokenClaims:
    """The claims of a well-formed, authentic token (expiry NOT checked); TokenError otherwise."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise TokenError("malformed", "The delivery token is malformed.")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed", "The delivery token is malformed.") from None
    # Canonical only: the decoder ignores the last character's spare bits, so a token differing in them
    # would verify too; refused, so a token is one string (cache keys, logs, revocation lists agree).
    if len(raw) != TOKEN_BYTES or raw[0] != VERSION or _encode(raw) != token:
        raise TokenError("malformed", "The delivery token is malformed.")
    head, mac = raw[: _HEAD.size], raw[_HEAD.size :]
    if not hmac.compare_digest(mac, hmac.new(secret, head, hashlib.sha256).digest()):
        raise TokenError("bad_signature", "The delivery token's signature is not valid.")
    _, session, asset, expires_at, max_height = _HEAD.unpack(head)
    return TokenClaims(str(uuid.UUID(bytes=session)), str(uuid.UUID(bytes=asset)), expires_at, max_height)


def verify_claims(token: str, *, secret: bytes, now: int) -> TokenClaims:
    """The claims of an authentic, unexpired token, whatever path it is used for; TokenError otherwise."""
    claims = decode(token, secret=secret)
    if now >= claims.expires_at:
        raise TokenError("expired", "The delivery token has expired.")
    return claims


def verify(token: str, path: str, *, secret: bytes, now: int) -> TokenClaims:
    """Check the token and that it opens `path` (the storage key after `/t/<token>/`)."""
    claims = verify_claims(token, secret=secret, now=now)
    if not path_allowed(path, claims.prefix):
        raise TokenError("wrong_prefix", "The delivery token does not open this path.")
    if not within_cap(path[len(claims.prefix) :], claims.max_height):
        raise TokenError(
            "forbidden_path",
            "Master manifests come from the manifest endpoint, and renditions above the session's quality"
            " are not served.",
        )
    return claims


def path_allowed(path: str, prefix: str) -> bool:
    """True when `path` is a plain storage key strictly under `prefix` (no '..', '.', '//', '%')."""
    if not path.startswith(prefix) or len(path) <= len(prefix):
        return False
    # Every segment, the prefix's included, must be plain: a path that only LOOKS under the prefix
    # ('media/assets/<id>/../<other>/x') or that a later decoding step could change is refused.
    return all(_SEGMENT.fullmatch(part) and part not in (".", "..") for part in path.split("/"))


def rendition_height(name: str) -> int | None:
    """N of a rendition folder or id named `<codec>_<N>p` (h264_720p -> 720); None for anything else."""
    match = RENDITION.fullmatch(name)
    return int(match["height"]) if match else None


def within_cap(relative: str, max_height: int) -> bool:
    """Whether a path under the asset prefix is neither a stored master nor a rendition above the cap."""
    if relative.lower() in MASTERS:  # case-folded: a case-insensitive file system would serve 'HLS/...'
        return False
    cap = max(max_height, LOWEST_RUNG)
    return all((height := rendition_height(part)) is None or height <= cap for part in relative.split("/"))


_cached: tuple[object, bytes] | None = None


def delivery_secret(settings: Settings) -> bytes:
    """The HMAC key: DELIVERY_TOKEN_SECRET as bytes (shared with the edge Worker), else derived locally."""
    global _cached
    if _cached is not None and _cached[0] is settings:
        return _cached[1]
    if settings.delivery_token_secret:
        # Used as is (not derived): the Worker holds the same string as its DELIVERY_TOKEN_SECRET secret.
        secret = settings.delivery_token_secret.encode()
    else:
        from shared.settings import derived_key

        secret = derived_key(settings, TOKEN_PURPOSE)  # HKDF: computed once per settings object
    _cached = (settings, secret)
    return secret


def media_base(settings: Settings) -> str:
    """MEDIA_BASE_URL (else PUBLIC_BASE_URL) without a trailing slash."""
    return str(settings.media_base_url or settings.public_base_url).rstrip("/")


def session_token(settings: Settings, *, session: _Session, now: int) -> tuple[str, int]:
    """A fresh token for the session (its asset, its max_height) and its expiry (now + token TTL).

    Never past the session's `valid_until` (a rental's or a pass's end) when it has one.
    """
    expires_at = int(now) + settings.stream_token_ttl_seconds
    valid_until = getattr(session, "valid_until", None)
    if valid_until is not None:
        expires_at = max(1, min(expires_at, int(valid_until)))
    token = sign(
        session_id=session.id,
        asset_id=session.asset_id,
        expires_at=expires_at,
        secret=delivery_secret(settings),
        max_height=int(session.max_height),
    )
    return token, expires_at


def token_base(settings: Settings, token: str) -> str:
    """`{media_base_url}/t/{token}/`: prefix it to a storage key to get a signed URL."""
    return f"{media_base(settings)}/t/{token}/"


def signed_base(settings: Settings, *, session: _Session, now: int) -> str:
    """`{media_base_url}/t/{token}/` with a fresh token of the session (capped at its max_height)."""
    token, _ = session_token(settings, session=session, now=now)
    return token_base(settings, token)


def split_token_path(path: str) -> tuple[str, str] | None:
    """`/t/<token>/<key>` (a request path) -> (token, key); None when it is not that shape."""
    if not path.startswith("/t/"):
        return None
    token, slash, key = path[3:].partition("/")
    return (token, key) if slash else None
