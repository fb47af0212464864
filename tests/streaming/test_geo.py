"""Geo checks of a stream start: the country from a trusted proxy's header only (never DEFAULT_COUNTRY, and
the CDN's "unknown" codes are unknown), the catalog's allow/deny rules, and the unknown-country policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.streaming.geo import witness_country
from tests.streaming.conftest import Db, SettingsEnv, Viewer, entitle, movie, problem, start, streaming_app
from tests.support.identity import client_for, random_ip

COUNTRY = {"x-vercel-ip-country": "US"}


async def test_the_country_header_counts_only_through_a_trusted_proxy(
    viewer: Viewer, db: Db, settings_env: SettingsEnv
) -> None:
    await entitle(db, viewer.user_id, max_streams=5)
    us_only = await movie(db, country_allow=["US"])
    not_in_us = await movie(db, country_deny=["US"])
    proxy, stranger = random_ip(), random_ip()
    settings_env(DEFAULT_COUNTRY="FR", TRUSTED_PROXIES=proxy)
    async with client_for(streaming_app(), client_ip=proxy) as via_proxy:
        assert (await start(via_proxy, viewer, us_only, headers=COUNTRY)).status_code == 201
        problem(await start(via_proxy, viewer, not_in_us, headers=COUNTRY), 403, "geo_blocked")
        # Without the header the country is unknown (not DEFAULT_COUNTRY): no allow list can admit it.
        problem(await start(via_proxy, viewer, us_only), 403, "geo_blocked")
        assert (await start(via_proxy, viewer, not_in_us)).status_code == 201
    async with client_for(streaming_app(), client_ip=stranger) as direct:
        # Anyone can send the header: from a peer that is not a trusted proxy it is ignored.
        problem(await start(direct, viewer, us_only, headers=COUNTRY), 403, "geo_blocked")


async def test_without_a_trusted_country_playback_applies_the_policy_not_the_default_country(
    viewer: Viewer, db: Db, settings_env: SettingsEnv
) -> None:
    await entitle(db, viewer.user_id, max_streams=5)
    not_in_france = await movie(db, country_deny=["FR"])
    proxy, stranger = random_ip(), random_ip()
    # Browsing assumes France; playback must not: an unknown viewer under "allow" may play it...
    settings_env(DEFAULT_COUNTRY="FR", TRUSTED_PROXIES=proxy, UNKNOWN_COUNTRY_POLICY="allow")
    async with client_for(streaming_app(), client_ip=stranger) as direct:
        assert (
            await start(direct, viewer, not_in_france, headers={"x-vercel-ip-country": "FR"})
        ).status_code == 201
    async with client_for(streaming_app(), client_ip=proxy) as via_proxy:
        # The CDN's "unknown" (XX), Tor (T1) and ZZ are no country.
        for unknown in ("XX", "T1", "ZZ", "xx", ""):
            response = await start(
                via_proxy, viewer, not_in_france, device_id="tv", headers={"x-vercel-ip-country": unknown}
            )
            assert response.status_code == 201, (unknown, response.text)
        # ...and under "deny" it may not: neither the default nor an unknown code stands in for a country.
        settings_env(UNKNOWN_COUNTRY_POLICY="deny")
        for headers in ({}, {"x-vercel-ip-country": "XX"}, {"x-vercel-ip-country": "T1"}):
            problem(await start(via_proxy, viewer, not_in_france, headers=headers), 403, "geo_blocked")
        assert (await start(via_proxy, viewer, not_in_france, headers=COUNTRY)).status_code == 201


def test_browsing_keeps_the_default_country_playback_does_not(settings_env: SettingsEnv) -> None:
    from starlette.requests import Request

    from shared.catalog.viewer import edge_country, viewer_country
    from shared.settings import get_settings

    proxy = "203.0.113.9"
    settings_env(DEFAULT_COUNTRY="FR", TRUSTED_PROXIES=proxy)
    settings = get_settings()

    def request(peer: str, value: str | None) -> Request:
        headers = [] if value is None else [(b"x-vercel-ip-country", value.encode())]
        return Request({"type": "http", "headers": headers, "client": (peer, 1234)})

    assert (viewer_country(request(proxy, "us"), settings), edge_country(request(proxy, "us"), settings)) == (
        "US",
        "US",
    )
    for peer, value in ((proxy, None), (proxy, "XX"), (proxy, "T1"), (proxy, "ZZ"), ("198.51.100.1", "US")):
        assert viewer_country(request(peer, value), settings) == "FR", (peer, value)
        assert edge_country(request(peer, value), settings) is None, (peer, value)


async def test_an_unknown_country_follows_the_policy(
    viewer: Viewer, db: Db, settings_env: SettingsEnv
) -> None:
    await entitle(db, viewer.user_id, max_streams=5)
    anywhere = await movie(db)
    us_only = await movie(db, country_allow=["US"])
    settings_env(DEFAULT_COUNTRY=None, TRUSTED_PROXIES=None, UNKNOWN_COUNTRY_POLICY="allow")
    async with client_for(streaming_app()) as client:
        assert (await start(client, viewer, anywhere)).status_code == 201
        # An allow list cannot be satisfied by an unknown country (the catalog's rule).
        problem(await start(client, viewer, us_only), 403, "geo_blocked")
        settings_env(UNKNOWN_COUNTRY_POLICY="deny")
        problem(await start(client, viewer, anywhere), 403, "geo_blocked")
        # The order holds: content first, then geo.
        gone = await movie(db, available_until=datetime.now(UTC) - timedelta(hours=1))
        problem(await start(client, viewer, gone), 403, "not_available")


async def test_a_title_no_country_may_see_is_not_available_rather_than_geo_blocked(
    viewer: Viewer, db: Db, settings_env: SettingsEnv
) -> None:
    await entitle(db, viewer.user_id)
    nowhere = await movie(db, country_allow=["US"], country_deny=["US"])
    settings_env(DEFAULT_COUNTRY="US")
    async with client_for(streaming_app()) as client:
        problem(await start(client, viewer, nowhere), 403, "not_available")


def test_the_witness_country_is_one_the_lists_admit() -> None:
    assert witness_country([], []) == "ZZ"
    assert witness_country([], ["FR", "DE"]) == "ZZ"
    assert witness_country(["US", "CA"], ["US"]) == "CA"
    assert witness_country(["US"], ["US"]) is None
