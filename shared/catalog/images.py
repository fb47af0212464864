"""Responsive image URLs for catalog images: Cloudinary transformations, or originals from object storage.

An image entry in a title's (season's, episode's, person's) `images` jsonb says where the image lives:
- {"public_id": ..., "version"?: ...}: uploaded to Cloudinary; each size is a transformation URL
  (smart-cropped to the kind's aspect ratio, automatic format and quality, the size's width).
- {"key": ..., "sizes"?: {"w185": key, ...}}: stored in object storage; each size with a variant in
  `sizes` (WebP made at upload by shared.images.variants) is that variant's signed URL, every other size
  and "original" the original's (entries stored before variants existed have no `sizes`).
- {"url": "https://..."}: an external image (e.g. from an import), used as is for every size.
The entry decides rather than IMAGES_BACKEND, so images stored before the backend changed keep working
(the demo catalog lives in storage even when Cloudinary is configured); a Cloudinary entry needs
CLOUDINARY_URL to be buildable and is left out otherwise.

The function is async because signing a storage URL goes through the async Storage interface (S3
presigning runs boto3 on a worker thread, all of a call's keys in one batch); building Cloudinary URLs is
pure string work, done offline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shared.infra.storage import LocalStorage, Storage, get_storage
from shared.infra.storage.rules import MAX_EXPIRES_IN
from shared.settings import Settings


@dataclass(frozen=True)
class ImageKind:
    """How one kind of image is delivered: its aspect ratio (None keeps the image's own) and widths."""

    aspect_ratio: str | None
    widths: tuple[int, ...]


# Widths after TMDB's conventional sizes, which web and TV clients already know how to pick from.
KINDS: dict[str, ImageKind] = {
    "poster": ImageKind("2:3", (185, 342, 500, 780)),
    "backdrop": ImageKind("16:9", (780, 1280, 1920)),
    "still": ImageKind("16:9", (300, 780, 1280)),
    "logo": ImageKind(None, (185, 300, 500)),
    "photo": ImageKind("2:3", (185, 342, 632)),
}
ORIGINAL = "original"


def size_names(kind: str) -> list[str]:
    """The size names of a kind, smallest first, then "original" (e.g. w185 ... w780, original)."""
    return [f"w{width}" for width in KINDS[kind].widths] + [ORIGINAL]


async def image_urls(
    images: dict[str, Any] | None,
    *,
    settings: Settings,
    storage: Storage | None = None,
    now: float | None = None,
) -> dict[str, dict[str, str]]:
    """For every known kind in `images`: {size name: URL}; unknown or unusable entries are left out."""
    if not isinstance(images, dict):
        return {}
    result: dict[str, dict[str, str]] = {}
    stored: dict[str, dict[str, str]] = {}  # kind -> {size name: key}
    for kind, entry in images.items():
        if kind not in KINDS or not isinstance(entry, dict):
            continue
        public_id, key, url = entry.get("public_id"), entry.get("key"), entry.get("url")
        if isinstance(public_id, str) and public_id and settings.cloudinary_url:
            result[kind] = _cloudinary_sizes(kind, public_id, entry.get("version"), settings.cloudinary_url)
        elif isinstance(key, str) and key:
            stored[kind] = _stored_sizes(kind, key, entry.get("sizes"))
        elif isinstance(url, str) and url.startswith(("https://", "http://")):
            result[kind] = dict.fromkeys(size_names(kind), url)
    if stored:
        storage = storage or await get_storage()
        keys = list(dict.fromkeys(key for sizes in stored.values() for key in sizes.values()))
        signed = await _signed_urls(storage, keys, settings.storage_url_ttl_seconds, now)
        url_of = dict(zip(keys, signed, strict=True))
        for kind, sizes in stored.items():
            result[kind] = {name: url_of[key] for name, key in sizes.items()}
    return {kind: result[kind] for kind in images if kind in result}  # keep the entry's order


def _stored_sizes(kind: str, key: str, sizes: Any) -> dict[str, str]:
    """{size name: key} of a stored entry: its variant where `sizes` has one, else the original."""
    variants = sizes if isinstance(sizes, dict) else {}
    result: dict[str, str] = {}
    for name in size_names(kind):
        variant = variants.get(name) if name != ORIGINAL else None
        result[name] = variant if isinstance(variant, str) and variant else key
    return result


async def _signed_urls(storage: Storage, keys: list[str], ttl: int, now: float | None) -> list[str]:
    current = int(time.time() if now is None else now)
    expires_in = stable_expires_in(ttl, now=current)
    if isinstance(storage, LocalStorage):
        # Signed with the absolute expiry, so a clock tick between here and the signer cannot change it.
        return [storage.sign_url("get", key, expires_at=current + expires_in) for key in keys]
    # S3 URLs carry their signing time anyway. One batch: a page of cards has ~200 keys, and a worker
    # thread hop per key costs more than signing it.
    return [request.url for request in await storage.presign_downloads(keys, expires_in=expires_in)]


def stable_expires_in(ttl: int, *, now: float | None = None) -> int:
    """A lifetime of at least `ttl` ending on a boundary, so repeated responses carry identical URLs.

    Local signed URLs then stay the same for a while (browsers reuse their cached images, responses stay
    byte-identical); the URL still outlives any cached catalog response by at least `ttl`.
    """
    current = int(time.time() if now is None else now)
    step = max(60, ttl // 4)
    expires_at = ((current + ttl) // step + 1) * step
    return min(expires_at - current, MAX_EXPIRES_IN)


def _cloudinary_sizes(kind: str, public_id: str, version: Any, cloudinary_url: str) -> dict[str, str]:
    options = _delivery_options(cloudinary_url)
    if isinstance(version, int | str) and str(version).isdigit():
        options["version"] = str(version)  # a new upload under the same id gets a new URL (CDN caches)
    spec = KINDS[kind]
    urls: dict[str, str] = {}
    for width in spec.widths:
        if spec.aspect_ratio is None:
            # Logos keep their shape (and transparency, which f_auto preserves): only scaled down.
            step: dict[str, Any] = {"crop": "limit", "width": width}
        else:
            # fill + g_auto: Cloudinary's content-aware crop keeps faces and the subject in frame.
            step = {"crop": "fill", "gravity": "auto", "aspect_ratio": spec.aspect_ratio, "width": width}
        urls[f"w{width}"] = _build(public_id, {**step, "fetch_format": "auto", "quality": "auto"}, options)
    urls[ORIGINAL] = _build(public_id, {"fetch_format": "auto", "quality": "auto"}, options)
    return urls


def _build(public_id: str, transformation: dict[str, Any], options: dict[str, Any]) -> str:
    import cloudinary.utils

    url, _ = cloudinary.utils.cloudinary_url(public_id, transformation=[transformation], **options)
    return str(url)


def _delivery_options(cloudinary_url: str) -> dict[str, Any]:
    """The delivery part of CLOUDINARY_URL, passed explicitly so the SDK's global config is not involved.

    Parsed as the SDK does: the host is the cloud name, a path names a private CDN distribution, and
    query parameters (cname, secure_distribution, private_cdn, cdn_subdomain) override.
    """
    parsed = urlsplit(cloudinary_url)
    options: dict[str, Any] = {"cloud_name": parsed.hostname, "secure": True}
    if parsed.path.strip("/"):
        options.update(private_cdn=True, secure_distribution=unquote(parsed.path.strip("/")))
    for name, values in parse_qs(parsed.query).items():
        if name in ("cname", "secure_distribution"):
            options[name] = values[0]
        elif name in ("private_cdn", "cdn_subdomain", "secure_cdn_subdomain"):
            options[name] = values[0].lower() == "true"
    return options
