"""The FastAPI dependency that tells the catalog who is looking (country, profile maturity, staff)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared.catalog.visibility import MAX_RANK, Viewer
from shared.http.auth import Principal, optional_principal
from shared.http.permissions import has_permission
from shared.infra.db import Tx
from shared.profiles.schemas import maturity_rank
from shared.settings import Settings, get_settings

# Codes CDNs send when they do not know the country (Cloudflare: XX unknown, T1 Tor; ZZ elsewhere): a
# viewer there is of unknown country, never a viewer "in" XX.
UNKNOWN_COUNTRY_CODES = frozenset({"XX", "T1", "ZZ"})


def edge_country(request: Request, settings: Settings) -> str | None:
    """The CDN's country header when it comes through a trusted proxy and names a country, else None."""
    from shared.http.client_ip import peer_is_trusted_proxy

    value = request.headers.get(settings.country_header, "").strip().upper()
    if len(value) != 2 or not value.isalpha() or value in UNKNOWN_COUNTRY_CODES:
        return None
    return value if peer_is_trusted_proxy(request, settings.trusted_proxies) else None


def viewer_country(request: Request, settings: Settings) -> str | None:
    """For browsing: the edge's country, else DEFAULT_COUNTRY (playback uses edge_country alone)."""
    return edge_country(request, settings) or settings.default_country


async def current_viewer(
    request: Request, tx: Tx, principal: Annotated[Principal | None, Depends(optional_principal)]
) -> Viewer:
    """Country from the edge, maturity from the token's active profile, staff from the roles."""
    settings = get_settings()
    country = viewer_country(request, settings)
    if principal is None:
        return Viewer(country=country)
    max_rank = MAX_RANK
    if principal.profile_id is not None:
        from shared.errors import NotFound
        from shared.profiles import service as profiles

        try:
            profile = await profiles.get_profile(
                tx, user_id=principal.user_id, profile_id=principal.profile_id
            )
        except NotFound:  # deleted since the token was issued (maybe a kids profile): the strictest level
            profile = None
        max_rank = maturity_rank(str(profile["maturity_level"])) if profile is not None else 0
    return Viewer(
        country=country,
        max_rank=max_rank,
        # Staff see everything only outside a viewer profile (a manager's kids profile is a kids profile).
        manager=has_permission(principal, "catalog:write") and principal.profile_id is None,
        user_id=principal.user_id,
        profile_id=principal.profile_id,
    )


CurrentViewer = Annotated[Viewer, Depends(current_viewer)]
