"""The EME ClearKey wire format: base64url without padding, 16-byte key ids, bounded requests."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import ValidationError

from shared.licences.schemas import (
    MAX_KIDS,
    ClearKeyJwk,
    ClearKeyLicence,
    ClearKeyRequest,
    b64url,
    b64url_decode,
)


def test_b64url_has_no_padding_and_round_trips() -> None:
    for size in (1, 15, 16, 17, 32):
        data = os.urandom(size)
        text = b64url(data)
        assert "=" not in text and "+" not in text and "/" not in text
        assert b64url_decode(text) == data
        # Padding is tolerated on input (some players send it).
        assert b64url_decode(base64.urlsafe_b64encode(data).decode()) == data


@pytest.mark.parametrize("text", ["", "a+b/", "not base64!", "a b", "x" * 65, "abcde"])
def test_b64url_decode_refuses_other_alphabets_and_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def test_request_parses_kids_as_16_bytes() -> None:
    kid = os.urandom(16)
    request = ClearKeyRequest.model_validate({"kids": [b64url(kid)], "type": "temporary"})
    assert request.key_ids() == [kid]
    assert ClearKeyRequest.model_validate({"kids": [b64url(kid)]}).type == "temporary"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kids": []},
        {"kids": "abc"},
        {"kids": [b64url(os.urandom(8))]},
        {"kids": [b64url(os.urandom(32))]},
        {"kids": ["%%%"]},
        {"kids": [b64url(os.urandom(16))] * (MAX_KIDS + 1)},
        {"kids": [b64url(os.urandom(16))], "type": "persistent-license"},
        {"kids": [123]},
    ],
)
def test_malformed_requests_are_refused(body: object) -> None:
    with pytest.raises(ValidationError):
        ClearKeyRequest.model_validate(body)


def test_licence_is_a_jwk_set() -> None:
    kid, key = os.urandom(16), os.urandom(16)
    licence = ClearKeyLicence(keys=[ClearKeyJwk(kid=b64url(kid), k=b64url(key))])
    assert licence.model_dump() == {
        "keys": [{"kty": "oct", "kid": b64url(kid), "k": b64url(key)}],
        "type": "temporary",
    }
