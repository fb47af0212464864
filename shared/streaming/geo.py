"""Where the viewer is, for playback: the catalog's country rules, plus the unknown-country policy.

The country comes from the platform's header (CF-IPCountry, x-vercel-ip-country: COUNTRY_HEADER) only when
the request came through a trusted proxy (shared.catalog.viewer.edge_country); the CDN's "unknown" codes
(XX, T1 for Tor, ZZ) are no country. Unlike browsing, playback never falls back to DEFAULT_COUNTRY: a
missing, untrusted or unknown country is unknown. Whether a title may be seen from a country is the
catalog's one visibility rule (shared.catalog.visibility), never restated here. When no country is known,
UNKNOWN_COUNTRY_POLICY decides: "allow" plays what has no allow list (the catalog's rule for an unknown
country), "deny" plays nothing. A deployment without TRUSTED_PROXIES therefore plays only under "allow".
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.settings import Settings

# A user-assigned ISO 3166 code no real viewer has: the witness for "some country" when a title has no
# allow list (see witness_country).
_NOWHERE = "ZZ"


def unknown_country_refused(country: str | None, settings: Settings) -> bool:
    """True when the country is unknown and the policy refuses such viewers."""
    return country is None and settings.unknown_country_policy == "deny"


def witness_country(allow: Sequence[str], deny: Sequence[str]) -> str | None:
    """A country the title's own lists admit (None: none does), to ask the catalog rule "anywhere?".

    Used only after a refusal, to tell `geo_blocked` (playable elsewhere) from `not_available`; the
    visibility rule itself then decides, with this country in place of the viewer's.
    """
    candidates = list(allow) if allow else [_NOWHERE]
    return next((country for country in candidates if country not in deny), None)
