"""Per-session master manifests: the stored HLS master / DASH MPD, capped and with signed absolute URLs.

The stored manifests (written by the media pipeline) are the same for every viewer: relative URIs, every
rendition. A session gets:
A rendition's height is the larger of its picture's shorter side and the N of its `<codec>_<N>p` name (a
2.39:1 "720p" rung is 1280x536): the same N the delivery token's cap checks on the folder, so no URL
in a manifest is refused at the edge.
- HLS: variants and I-frame playlists above session.max_height dropped; every URI (variants, audio,
  subtitles, I-frames) made absolute under `{media_base}/t/<token>/media/assets/<id>/hls/`. The media
  playlists they point at stay static: their relative segment and key URIs inherit the token.
- DASH: Representations above the cap dropped, an MPD-level BaseURL on the signed `.../dash/` prefix (every
  relative template, init and subtitle href resolves under it), and licence URLs (ClearKey always;
  Widevine / PlayReady when their licence servers are configured) on the licence endpoints with the token.

Cost: the stored text is cached in process for CACHE_SECONDS per asset (bounded LRU). The manifests are
rewritten in place when subtitles change or phase 2 adds rungs, and noticing that without a storage or
Postgres round trip on every request is impossible, so a short TTL is the version: a change reaches new
manifests within CACHE_SECONDS. The capped rendering (the costly part: parse, filter, serialise) is
memoised per cap with the token as a placeholder, so a warm request is one string replacement.
"""

from __future__ import annotations

import posixpath
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from shared.delivery.tokens import asset_prefix, media_base, rendition_height

if TYPE_CHECKING:
    from shared.infra.storage.base import Storage
    from shared.settings import Settings

Kind = Literal["hls", "dash"]
HLS_MASTER = "hls/master.m3u8"  # the asset layout of shared.transcoding.pipeline.manifests
DASH_MANIFEST = "dash/manifest.mpd"
STORED = {"hls": HLS_MASTER, "dash": DASH_MANIFEST}
CONTENT_TYPES = {"hls": "application/vnd.apple.mpegurl", "dash": "application/dash+xml"}
CACHE_SECONDS = 30.0
CACHE_ENTRIES = 256
# Where the token goes in memoised renderings (a token is base64url: safe in both formats as is).
PLACEHOLDER = "@@DELIVERY_TOKEN@@"

MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
DASHIF_NS = "https://dashif.org/CPS"  # dashif:Laurl (DASH-IF IOP, read by dash.js and Shaka)
CLEARKEY_NS = "http://dashif.org/guidelines/clearKey"  # clearkey:Laurl (older dash.js versions)
TRICK_MODE = "http://dashif.org/guidelines/trickmode"
CLEARKEY_URN = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
LICENSED_SYSTEMS = {
    "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed": "widevine",
    "urn:uuid:9a04f079-9840-4286-ab92-e65be0885f95": "playready",
}
for _prefix, _uri in {
    "": MPD_NS,
    "cenc": "urn:mpeg:cenc:2013",
    "mspr": "urn:microsoft:playready",
    "dashif": DASHIF_NS,
    "clearkey": CLEARKEY_NS,
}.items():
    ET.register_namespace(_prefix, _uri)


class ManifestMissing(Exception):
    """The asset has no stored manifest of that kind (not published, or deleted)."""


@dataclass(frozen=True)
class Context:
    """What a rendering depends on besides the stored text (part of the memo key)."""

    asset_id: str
    max_height: int
    media_base: str  # MEDIA_BASE_URL without the trailing slash
    api_base: str  # PUBLIC_BASE_URL without the trailing slash (licence endpoints)
    licensed: frozenset[str] = frozenset()  # DRM systems with a configured licence server


@dataclass
class _Entry:
    text: str
    fetched_at: float
    rendered: dict[Context, str] = field(default_factory=dict)


class ManifestCache:
    """Stored manifests by (asset, kind), least recently used evicted, each kept `ttl` seconds."""

    def __init__(self, *, ttl: float = CACHE_SECONDS, entries: int = CACHE_ENTRIES) -> None:
        self.ttl = ttl
        self.entries = entries
        self._items: OrderedDict[tuple[str, Kind], _Entry] = OrderedDict()
        self.fetches = 0  # storage reads, for tests and the benchmark

    def clear(self) -> None:
        """Forget everything (tests; an operator's manual refresh)."""
        self._items.clear()

    async def entry(self, storage: Storage, asset_id: str, kind: Kind, *, now: float) -> _Entry:
        """The cached stored manifest, read from storage when absent or older than the TTL."""
        key = (asset_id, kind)
        entry = self._items.get(key)
        if entry is not None and now - entry.fetched_at < self.ttl:
            self._items.move_to_end(key)
            return entry
        from shared.errors import NotFound

        self.fetches += 1
        try:
            data = await storage.get_bytes(asset_prefix(asset_id) + STORED[kind])
        except NotFound:
            self._items.pop(key, None)
            raise ManifestMissing(f"asset {asset_id} has no {kind} manifest") from None
        entry = _Entry(data.decode("utf-8"), now)
        self._items[key] = entry
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)
        return entry


cache = ManifestCache()


def context_for(settings: Settings, *, asset_id: str, max_height: int) -> Context:
    """The rendering context of a session under the current settings."""
    licensed = frozenset(
        name
        for name, url in (("widevine", settings.drm_widevine_url), ("playready", settings.drm_playready_url))
        if url
    )
    return Context(
        asset_id=str(asset_id),
        max_height=max_height,
        media_base=media_base(settings),
        api_base=str(settings.public_base_url).rstrip("/"),
        licensed=licensed,
    )


async def session_manifest(
    storage: Storage, *, kind: Kind, context: Context, token: str, now: float | None = None
) -> str:
    """The master manifest of `kind` for a session: capped, every URL signed with `token`."""
    entry = await cache.entry(storage, context.asset_id, kind, now=time.monotonic() if now is None else now)
    template = entry.rendered.get(context)
    if template is None:
        template = render_hls(entry.text, context) if kind == "hls" else render_dash(entry.text, context)
        entry.rendered[context] = template
    return template.replace(PLACEHOLDER, token)


def signed_prefix(context: Context) -> str:
    """The signed base with the token placeholder, on the asset's storage prefix."""
    return f"{context.media_base}/t/{PLACEHOLDER}/{asset_prefix(context.asset_id)}"


def licence_url(context: Context, system: str) -> str:
    """A licence endpoint URL carrying the token (the player posts its licence request there)."""
    return f"{context.api_base}/api/v1/streaming/licence/{system}?token={PLACEHOLDER}"


# --- HLS --------------------------------------------------------------------------------------------


def render_hls(text: str, context: Context) -> str:
    """The stored master playlist capped at context.max_height, URIs absolute under the signed prefix."""
    lines = text.splitlines()
    base = signed_prefix(context)
    variants: list[tuple[int, int, int]] = []  # (line index of the tag, height, bandwidth)
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = parse_attributes(line.partition(":")[2])
            height = max(_height(attributes), _named_height(_uri_after(lines, index)))
            variants.append((index, height, _int(attributes.get("BANDWIDTH"))))
    too_high = {index for index, height, _ in variants if height > context.max_height}
    if variants and len(too_high) == len(variants):
        # Nothing fits the cap (a cap below the lowest rung): the lowest variant still plays.
        too_high.discard(min(variants, key=lambda v: (v[1], v[2]))[0])
    out: list[str] = []
    skip_uri = False
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            skip_uri = False
            if stripped.startswith("#EXT-X-STREAM-INF:") and index in too_high:
                skip_uri = True  # its URI line goes too
                continue
            if stripped.startswith("#EXT-X-I-FRAME-STREAM-INF:"):
                attributes = parse_attributes(stripped.partition(":")[2])
                height = max(_height(attributes), _named_height(attributes.get("URI", "")))
                if height > context.max_height:
                    continue
            out.append(_rewrite_uri_attribute(stripped, base))
            continue
        if skip_uri:
            skip_uri = False
            continue
        out.append(_absolute(stripped, base))
    return "\n".join(out) + "\n"


def _uri_after(lines: list[str], index: int) -> str:
    """The URI line following the tag at `index` ('' when none)."""
    for line in lines[index + 1 :]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return stripped
        if stripped.startswith("#EXT-X-STREAM-INF:"):
            break
    return ""


def _named_height(uri: str) -> int:
    """The largest N of the `<codec>_<N>p` folders a URI goes through (0 when none)."""
    path = uri.split("?", 1)[0].split("#", 1)[0]
    return max((rendition_height(part) or 0 for part in path.split("/")), default=0)


def parse_attributes(text: str) -> dict[str, str]:
    """An HLS attribute list (KEY=value,KEY="quoted, value") as a dict, quotes removed."""
    attributes: dict[str, str] = {}
    position = 0
    while position < len(text):
        equals = text.find("=", position)
        if equals < 0:
            break
        name = text[position:equals].strip()
        position = equals + 1
        if text.startswith('"', position):
            end = text.find('"', position + 1)
            end = len(text) if end < 0 else end
            attributes[name] = text[position + 1 : end]
            position = end + 1
        else:
            end = text.find(",", position)
            end = len(text) if end < 0 else end
            attributes[name] = text[position:end]
            position = end
        if text.startswith(",", position):
            position += 1
    return attributes


def _rewrite_uri_attribute(line: str, base: str) -> str:
    """A tag line with its URI="..." attribute (if any) made absolute."""
    marker = 'URI="'
    start = line.find(marker)
    if start < 0 or not (start == line.find(":") + 1 or line[start - 1] == ","):
        return line
    start += len(marker)
    end = line.find('"', start)
    if end < 0:
        return line
    return line[:start] + _absolute(line[start:end], base) + line[end:]


def _absolute(uri: str, base: str) -> str:
    """A URI relative to hls/master.m3u8 under the signed asset prefix; absolute URIs stay as they are."""
    if "://" in uri or uri.startswith("/"):
        return uri
    resolved = posixpath.normpath(posixpath.join("hls", uri))
    if resolved.startswith("../") or resolved == "..":
        raise ValueError(f"the master playlist names a file outside its asset: {uri!r}")
    return base + resolved


def _height(attributes: dict[str, str]) -> int:
    """The 'p' of a RESOLUTION (its shorter side: a portrait 1080x1920 stream is 1080p); 0 when absent."""
    width, _, height = attributes.get("RESOLUTION", "").partition("x")
    return min(_int(width), _int(height)) if width and height else 0


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


# --- DASH -------------------------------------------------------------------------------------------


def _q(tag: str) -> str:
    return f"{{{MPD_NS}}}{tag}"


def render_dash(text: str, context: Context) -> str:
    """The stored MPD capped at context.max_height, with a signed BaseURL and licence URLs."""
    root = ET.fromstring(text)  # noqa: S314 - our own pipeline's output read back from our storage
    for period in root.iter(_q("Period")):
        _cap_period(period, context.max_height)
    base = ET.Element(_q("BaseURL"))
    base.text = signed_prefix(context) + "dash/"
    position = next(
        (i for i, child in enumerate(root) if child.tag not in (_q("ProgramInformation"), _q("BaseURL"))), 0
    )
    for old in root.findall(_q("BaseURL")):
        root.remove(old)
    root.insert(position, base)
    for protection in root.iter(_q("ContentProtection")):
        scheme = (protection.get("schemeIdUri") or "").lower()
        system = "clearkey" if scheme == CLEARKEY_URN else LICENSED_SYSTEMS.get(scheme)
        if system is None or (system != "clearkey" and system not in context.licensed):
            continue
        url = licence_url(context, system)
        ET.SubElement(protection, f"{{{DASHIF_NS}}}Laurl").text = url
        if system == "clearkey":
            ET.SubElement(protection, f"{{{CLEARKEY_NS}}}Laurl", {"Lic_type": "EME-1.0"}).text = url
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _cap_period(period: ET.Element, max_height: int) -> None:
    """Drop video Representations above the cap, then the sets left empty (and references to them)."""
    sized = [
        (adaptation, representation, height)
        for adaptation in period.findall(_q("AdaptationSet"))
        for representation in adaptation.findall(_q("Representation"))
        if (height := _rep_height(representation, adaptation)) is not None
    ]
    main = [item for item in sized if not _is_trick_mode(item[0])]
    keep = {id(representation) for _, representation, height in sized if height <= max_height}
    if main and not any(id(representation) in keep for _, representation, _ in main):
        # Nothing fits the cap (a cap below the lowest rung): the lowest main representation still plays.
        keep.add(id(min(main, key=lambda item: (item[2], _int(item[1].get("bandwidth"))))[1]))
    removed_sets: set[str] = set()
    for adaptation, representation, _ in sized:
        if id(representation) not in keep:
            adaptation.remove(representation)
    for adaptation in {id(a): a for a, _, _ in sized}.values():
        kept = adaptation.findall(_q("Representation"))
        if not kept:
            period.remove(adaptation)
            removed_sets.add(adaptation.get("id", ""))
            continue
        # maxWidth/maxHeight follow what is left (from the representations that state their size).
        stated = [r for r in kept if r.get("width") and r.get("height")]
        if adaptation.get("maxHeight") and stated:
            adaptation.set("maxWidth", str(max(_int(r.get("width")) for r in stated)))
            adaptation.set("maxHeight", str(max(_int(r.get("height")) for r in stated)))
    if removed_sets:
        _drop_trick_mode_references(period, removed_sets)


def _is_trick_mode(adaptation: ET.Element) -> bool:
    return any(prop.get("schemeIdUri") == TRICK_MODE for prop in adaptation.findall(_q("EssentialProperty")))


def _rep_height(representation: ET.Element, adaptation: ET.Element) -> int | None:
    """A video representation's height for the cap; None for one without any (audio, text).

    Its own width/height (the shorter side), else its set's height, else the set's maxHeight (a set
    states the size its representations share, or their largest); and never below the N of its id.
    """
    width, height = representation.get("width"), representation.get("height")
    if height is None:
        width = adaptation.get("width") or adaptation.get("maxWidth")
        height = adaptation.get("height") or adaptation.get("maxHeight")
    named = rendition_height(representation.get("id") or "")
    if height is None:
        return named
    pixels = min(_int(width), _int(height)) if width else _int(height)
    return max(pixels, named or 0)


def _drop_trick_mode_references(period: ET.Element, removed: set[str]) -> None:
    """A trick-mode set names the sets it speeds through: forget removed ones (and go with the last)."""
    for adaptation in list(period.findall(_q("AdaptationSet"))):
        for prop in adaptation.findall(_q("EssentialProperty")):
            if prop.get("schemeIdUri") != TRICK_MODE:
                continue
            remaining = [set_id for set_id in (prop.get("value") or "").split() if set_id not in removed]
            if remaining:
                prop.set("value", " ".join(remaining))
            else:
                period.remove(adaptation)  # otherwise players would take it for a main video set
