"""Email addresses are taken in one ASCII form, so limits and locks key on what the database compares."""

from __future__ import annotations

from tests.support.identity import auth_client


async def test_look_alike_unicode_addresses_are_refused_before_any_limit_or_lookup() -> None:
    async with auth_client() as client:
        # Python lowers "İ" to "i̇" while PostgreSQL lowers it to "i": such an address could dodge the lockout.
        response = await client.post(
            "/api/v1/auth/login", json={"email": "vİctim@example.com", "password": "x"}
        )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"


async def test_internationalised_domains_are_stored_in_their_ascii_form() -> None:
    from shared.accounts.schemas import LoginRequest

    assert LoginRequest(email="Reader@Bücher.de", password="x").email == "Reader@xn--bcher-kva.de"
