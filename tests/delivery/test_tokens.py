"""Delivery tokens: what they open (prefix, no stored master, nothing above the cap), for how long, and
everything a tamperer might try."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from typing import Any, get_args

import pytest

from shared.delivery import tokens
from shared.delivery.tokens import TokenError, sign, verify

SECRET = b"s" * 32
SESSION, ASSET, OTHER = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
NOW = 1_800_000_000
PREFIX = f"media/assets/{ASSET}/"


CAP = 720


def _token(**overrides: Any) -> str:
    values: dict[str, Any] = {
        "session_id": SESSION,
        "asset_id": ASSET,
        "expires_at": NOW + 900,
        "secret": SECRET,
        "max_height": CAP,
    }
    return sign(**(values | overrides))


def _head(version: int, asset: str, expires_at: int, max_height: int) -> bytes:
    return struct.pack(
        ">B16s16sIH", version, uuid.UUID(SESSION).bytes, uuid.UUID(asset).bytes, expires_at, max_height
    )


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _reason(
    token: str, path: str = PREFIX + "hls/h264_720p/seg-00001.m4s", *, now: int = NOW, secret: bytes = SECRET
) -> str:
    with pytest.raises(TokenError) as refused:
        verify(token, path, secret=secret, now=now)
    return refused.value.reason


def test_a_token_opens_its_asset_prefix_until_it_expires() -> None:
    token = _token()
    assert len(token) == tokens.TOKEN_CHARS == 95 and "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    for path in ("hls/h264_240p/playlist.m3u8", "hls/h264_240p/seg-00001.m4s", "hls/keys/hls.key"):
        claims = verify(token, PREFIX + path, secret=SECRET, now=NOW)
        assert (claims.session_id, claims.asset_id, claims.expires_at) == (SESSION, ASSET, NOW + 900)
        assert claims.max_height == CAP
        assert claims.prefix == PREFIX
    assert verify(token, PREFIX + "x", secret=SECRET, now=NOW + 899).expires_at == NOW + 900
    assert _reason(token, now=NOW + 900) == "expired"
    assert _reason(token, now=NOW + 10_000) == "expired"


@pytest.mark.parametrize(
    "relative",
    [
        "hls/h264_240p/playlist.m3u8",
        "hls/h264_720p/seg-00001.m4s",
        "dash/h264_720p/init.mp4",
        "hls/hevc_720p/seg-00001.m4s",
        "hls/trickplay/playlist.m3u8",
        "dash/trickplay/seg-00001.m4s",
        "hls/audio_eng/seg-00001.m4s",
        "dash/audio_fra/init.mp4",
        "hls/subtitles/en.m3u8",
        "dash/subtitles/fr_forced.vtt",
        "images/thumbnails.vtt",
        "images/storyboard-1.jpg",
        "hls/keys/hls.key",
    ],
)
def test_renditions_up_to_the_cap_and_height_free_files_are_open(relative: str) -> None:
    assert verify(_token(), PREFIX + relative, secret=SECRET, now=NOW).max_height == CAP


@pytest.mark.parametrize(
    "relative",
    [
        # The stored masters list every rendition: a session's capped master comes from the API only.
        "hls/master.m3u8",
        "dash/manifest.mpd",
        "HLS/Master.m3u8",  # a case-insensitive file system would serve it
        "dash/MANIFEST.mpd",
        # Renditions above the session's cap, whatever the codec, the format or the file.
        "hls/h264_1080p/playlist.m3u8",
        "hls/h264_1080p/seg-00001.m4s",
        "dash/h264_1080p/init.mp4",
        "hls/hevc_2160p/seg-00001.m4s",
        "dash/av1_1440p/seg-00001.m4s",
        "hls/H264_1080P/seg-00001.m4s",
        "hls/h264_721p/playlist.m3u8",
    ],
)
def test_stored_masters_and_renditions_above_the_cap_are_refused(relative: str) -> None:
    assert _reason(_token(), PREFIX + relative) == "forbidden_path"
    assert tokens.PROBLEM_CODES["forbidden_path"] == "path_not_allowed"
    # Even an uncapped token never opens the stored masters.
    if relative.lower() in tokens.MASTERS:
        assert _reason(_token(max_height=65535), PREFIX + relative) == "forbidden_path"


def test_a_cap_below_the_lowest_rung_still_opens_that_rung() -> None:
    # The manifest keeps the lowest variant when nothing fits the cap: its files must be served.
    token = _token(max_height=144)
    assert verify(token, PREFIX + "hls/h264_240p/seg-00001.m4s", secret=SECRET, now=NOW).max_height == 144
    assert verify(token, PREFIX + "hls/h264_180p/seg-00001.m4s", secret=SECRET, now=NOW)
    assert _reason(token, PREFIX + "hls/h264_360p/seg-00001.m4s") == "forbidden_path"


def test_rendition_heights() -> None:
    assert tokens.rendition_height("h264_720p") == 720
    assert tokens.rendition_height("hevc_2160p") == 2160
    for name in (
        "trickplay",
        "audio_eng",
        "subtitles",
        "keys",
        "images",
        "720p",
        "h264_720",
        "seg-00001.m4s",
    ):
        assert tokens.rendition_height(name) is None, name


def test_another_asset_or_prefix_is_refused() -> None:
    token = _token()
    assert _reason(token, f"media/assets/{OTHER}/hls/master.m3u8") == "wrong_prefix"
    assert _reason(token, f"media/sources/{ASSET}/movie.mp4") == "wrong_prefix"
    assert _reason(token, PREFIX.rstrip("/") + "x/hls/master.m3u8") == "wrong_prefix"  # a longer id
    assert _reason(token, PREFIX) == "wrong_prefix"  # the folder itself
    assert _reason(token, PREFIX.rstrip("/")) == "wrong_prefix"


@pytest.mark.parametrize(
    "relative",
    [
        f"../{OTHER}/hls/master.m3u8",
        f"hls/../../{OTHER}/hls/master.m3u8",
        "hls/./master.m3u8",
        "hls//master.m3u8",
        "hls/%2e%2e/%2e%2e/x",
        "hls%2Fmaster.m3u8",
        "hls\\..\\master.m3u8",
        "hls/master.m3u8\x00.jpg",
        "hls/master.m3u8\n",
        "hls/ master.m3u8",
        "hls/master.m3u8/",
    ],
)
def test_paths_that_only_look_inside_the_prefix_are_refused(relative: str) -> None:
    assert _reason(_token(), PREFIX + relative) == "wrong_prefix"
    assert not tokens.path_allowed(PREFIX + relative, PREFIX)


def test_leading_slash_or_traversal_before_the_prefix_is_refused() -> None:
    token = _token()
    assert _reason(token, "/" + PREFIX + "hls/master.m3u8") == "wrong_prefix"
    assert _reason(token, f"media/assets/{OTHER}/../{ASSET}/hls/master.m3u8") == "wrong_prefix"


def test_tampering_is_refused() -> None:
    token = _token()
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    # Every single-byte change, anywhere (version, ids, expiry, MAC), stops the token.
    for index in range(len(raw)):
        changed = bytearray(raw)
        changed[index] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(changed)).decode().rstrip("=")
        assert _reason(forged) in ("malformed", "bad_signature"), index
    # Another asset, a later expiry or a higher cap with the original MAC.
    mac = raw[39:]
    forged = _encode(_head(2, OTHER, NOW + 900, CAP) + mac)
    assert _reason(forged, f"media/assets/{OTHER}/hls/h264_240p/playlist.m3u8") == "bad_signature"
    assert _reason(_encode(_head(2, ASSET, NOW + 9000, CAP) + mac)) == "bad_signature"
    higher = _encode(_head(2, ASSET, NOW + 900, 2160) + mac)
    assert _reason(higher, PREFIX + "hls/h264_1080p/seg-00001.m4s") == "bad_signature"
    # The wrong key, and a MAC made with it.
    assert _reason(token, secret=b"t" * 32) == "bad_signature"
    assert _reason(_token(secret=b"t" * 32)) == "bad_signature"


def test_malformed_tokens_are_refused() -> None:
    good = _token()
    for token in ("", "abc", good[:-1], good + "A", good[:-1] + "=", good.replace(good[5], "+", 1), "é" * 95):
        assert _reason(token) == "malformed", token
    # Well-formed, authentic bytes of another version (a version 1 token is 92 characters anyway).
    head = _head(3, ASSET, NOW + 900, CAP)
    assert _reason(_encode(head + hmac.new(SECRET, head, hashlib.sha256).digest())) == "malformed"
    v1 = struct.pack(">B16s16sI", 1, uuid.UUID(SESSION).bytes, uuid.UUID(ASSET).bytes, NOW + 900)
    assert _reason(_encode(v1 + hmac.new(SECRET, v1, hashlib.sha256).digest())) == "malformed"


def test_only_the_canonical_encoding_is_accepted() -> None:
    # 71 bytes: the last character carries 4 bits and 2 spare ones; a decoder ignores the spare bits,
    # so without the check 4 strings would verify as the same token.
    good = _token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    value = alphabet.index(good[-1])
    assert value & 0b11 == 0
    for spare in (1, 2, 3):
        variant = good[:-1] + alphabet[value | spare]
        assert base64.urlsafe_b64decode(variant + "=") == base64.urlsafe_b64decode(good + "=")
        assert _reason(variant) == "malformed"


def test_verify_claims_checks_token_and_expiry_but_no_path() -> None:
    token = _token()
    claims = tokens.verify_claims(token, secret=SECRET, now=NOW)
    assert (claims.session_id, claims.asset_id, claims.max_height) == (SESSION, ASSET, CAP)
    with pytest.raises(TokenError) as expired:
        tokens.verify_claims(token, secret=SECRET, now=NOW + 900)
    assert expired.value.reason == "expired" and expired.value.code == "token_expired"
    with pytest.raises(TokenError) as forged:
        tokens.verify_claims(token, secret=b"t" * 32, now=NOW)
    assert forged.value.code == "invalid_token"


def test_every_reason_has_a_problem_code() -> None:
    assert set(tokens.PROBLEM_CODES) == set(get_args(tokens.Reason))
    assert tokens.PROBLEM_CODES == {
        "malformed": "invalid_token",
        "bad_signature": "invalid_token",
        "expired": "token_expired",
        "wrong_prefix": "wrong_asset",
        "forbidden_path": "path_not_allowed",
    }


def test_same_id() -> None:
    assert tokens.same_id(ASSET, uuid.UUID(ASSET)) and tokens.same_id(ASSET.upper(), ASSET)
    assert not tokens.same_id(ASSET, OTHER)
    assert not tokens.same_id("not-a-uuid", ASSET) and not tokens.same_id(None, None)


def test_sign_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        _token(asset_id="../etc")
    with pytest.raises(ValueError):
        _token(session_id="not-a-uuid")
    for expires_at in (0, -1, 2**32):
        with pytest.raises(ValueError):
            _token(expires_at=expires_at)
    for max_height in (0, -1, 2**16):
        with pytest.raises(ValueError):
            _token(max_height=max_height)
    # Even the largest cap never opens the stored masters.
    widest = sign(session_id=SESSION, asset_id=ASSET, expires_at=NOW + 900, secret=SECRET, max_height=4320)
    assert verify(widest, PREFIX + "hls/h264_2160p/x.m4s", secret=SECRET, now=NOW).max_height == 4320
    with pytest.raises(TokenError):
        verify(widest, PREFIX + "hls/master.m3u8", secret=SECRET, now=NOW)


def test_split_token_path() -> None:
    assert tokens.split_token_path(f"/t/abc/{PREFIX}hls/x.m3u8") == ("abc", f"{PREFIX}hls/x.m3u8")
    assert tokens.split_token_path("/t/abc") is None
    assert tokens.split_token_path("/api/v1/x") is None


def test_secret_setting_and_derived_default(settings_env: Any) -> None:
    from shared.settings import derived_key, get_settings, signing_secret

    settings_env(DELIVERY_TOKEN_SECRET=None)
    derived = tokens.delivery_secret(get_settings())
    assert len(derived) == 32 and derived == derived_key(get_settings(), "delivery-token")
    assert derived != signing_secret(get_settings())
    assert tokens.delivery_secret(get_settings()) is derived  # computed once per settings object
    settings_env(DELIVERY_TOKEN_SECRET="w" * 40)
    # As is, so the Cloudflare Worker can hold the same string.
    assert tokens.delivery_secret(get_settings()) == b"w" * 40


def test_signed_base_uses_media_base_url_and_token_ttl(settings_env: Any) -> None:
    from shared.settings import get_settings

    settings_env(MEDIA_BASE_URL="https://media.example.com/", STREAM_TOKEN_TTL_SECONDS="300")

    class Session:
        id = SESSION
        asset_id = ASSET
        max_height = 360

    base = tokens.signed_base(get_settings(), session=Session(), now=NOW)
    assert base.startswith("https://media.example.com/t/") and base.endswith("/")
    token = base.split("/")[-2]
    secret = tokens.delivery_secret(get_settings())
    claims = verify(token, PREFIX + "hls/h264_360p/playlist.m3u8", secret=secret, now=NOW)
    assert claims.expires_at == NOW + 300 and claims.max_height == 360
    # The session's cap is in the token: the next rung up is refused.
    with pytest.raises(TokenError) as refused:
        verify(token, PREFIX + "hls/h264_432p/playlist.m3u8", secret=secret, now=NOW)
    assert refused.value.reason == "forbidden_path"
    assert tokens.token_base(get_settings(), token) == base
    assert tokens.session_token(get_settings(), session=Session(), now=NOW) == (token, NOW + 300)

    class Rental(Session):
        valid_until = NOW + 120.7  # the entitlement ends before the token would

    token, expires_at = tokens.session_token(get_settings(), session=Rental(), now=NOW)
    assert (
        expires_at == NOW + 120 == verify(token, PREFIX + "images/x.jpg", secret=secret, now=NOW).expires_at
    )
    Rental.valid_until = NOW + 10_000
    assert tokens.session_token(get_settings(), session=Rental(), now=NOW)[1] == NOW + 300
    settings_env(MEDIA_BASE_URL=None, PUBLIC_BASE_URL="http://localhost:4000")
    assert tokens.signed_base(get_settings(), session=Session(), now=NOW).startswith(
        "http://localhost:4000/t/"
    )
