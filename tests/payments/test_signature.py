"""Webhook signature verification (shared.payments.signature.verify) with injected time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import stripe

from shared.errors import AppError, BadRequest, ServiceUnavailable
from shared.payments.providers.base import InvalidSignature
from shared.payments.signature import verify
from tests.support.stripe_server import StripeServer

SECRET = "whsec_test_current_0123456789abcdef"
OLD_SECRET = "whsec_test_previous_fedcba9876543210"
NOW = 1_900_000_000
TOLERANCE = 300


def _event(**overrides: object) -> bytes:
    event = {
        "id": "evt_123",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": NOW - 5,
        "type": "customer.subscription.updated",
        "data": {"object": {"id": "sub_123", "object": "subscription", "status": "active"}},
        "livemode": False,
    }
    event.update(overrides)
    return json.dumps(event).encode()


def _code(error: pytest.ExceptionInfo[AppError]) -> tuple[int, str]:
    return error.value.status, error.value.code


def test_the_test_server_signs_like_the_sdk() -> None:
    body = _event()
    ours = StripeServer.sign(body, SECRET, NOW)
    assert ours == stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, NOW)


def test_valid_signature_gives_the_event() -> None:
    body = _event()
    event = verify(body, StripeServer.sign(body, SECRET, NOW), secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert event.id == "evt_123"
    assert event.type == "customer.subscription.updated"
    assert event.object_id == "sub_123"
    assert event.object["status"] == "active"
    assert event.created == datetime.fromtimestamp(NOW - 5, UTC)
    assert event.created.tzinfo is not None


def test_time_is_the_injected_one_not_the_wall_clock() -> None:
    long_ago = 1_000_000_000  # 2001: the SDK's own check would call this expired
    body = _event(created=long_ago)
    header = StripeServer.sign(body, SECRET, long_ago)
    assert verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=long_ago + 10).id == "evt_123"


@pytest.mark.parametrize("offset", [-TOLERANCE, -1, 0, 1, TOLERANCE])
def test_within_tolerance_both_sides(offset: int) -> None:
    body = _event()
    header = StripeServer.sign(body, SECRET, NOW + offset)
    assert verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=NOW).id == "evt_123"


def test_expired_signature() -> None:
    body = _event()
    header = StripeServer.sign(body, SECRET, NOW - TOLERANCE - 1)
    with pytest.raises(InvalidSignature) as error:
        verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "signature_expired")


def test_future_dated_signature() -> None:
    body = _event()
    header = StripeServer.sign(body, SECRET, NOW + TOLERANCE + 1)
    with pytest.raises(InvalidSignature) as error:
        verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "signature_in_future")


def test_wrong_secret() -> None:
    body = _event()
    header = StripeServer.sign(body, "whsec_someone_else", NOW)
    with pytest.raises(InvalidSignature) as error:
        verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_signature")


def test_tampered_body() -> None:
    body = _event()
    header = StripeServer.sign(body, SECRET, NOW)
    tampered = body.replace(b'"active"', b'"canceled"')
    assert tampered != body
    with pytest.raises(InvalidSignature) as error:
        verify(tampered, header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_signature")


def test_tampered_timestamp() -> None:
    body = _event()
    signature = StripeServer.sign(body, SECRET, NOW - 3600).split(",")[1]
    with pytest.raises(InvalidSignature) as error:  # an old delivery re-dated to pass the window
        verify(body, f"t={NOW},{signature}", secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_signature")


def test_bad_signature_wins_over_the_time_window() -> None:
    body = _event()
    header = StripeServer.sign(body, "whsec_someone_else", NOW - 10 * TOLERANCE)
    with pytest.raises(InvalidSignature) as error:
        verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert error.value.code == "invalid_signature"


@pytest.mark.parametrize("header", [None, ""])
def test_missing_header(header: str | None) -> None:
    with pytest.raises(InvalidSignature) as error:
        verify(_event(), header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_signature")


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        "t=abc,v1=deadbeef",
        f"t={NOW}",
        f"v1={'0' * 64}",
        f"t={NOW},v0={'0' * 64}",
        f"t={NOW},v1",
        ",,,",
    ],
)
def test_malformed_header(header: str) -> None:
    with pytest.raises(InvalidSignature) as error:
        verify(_event(), header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_signature")


@pytest.mark.parametrize("suffix", ["=4", "=", "==x"])
def test_timestamp_with_extra_equals_is_invalid_not_a_crash(suffix: str) -> None:
    # The SDK reads `t=<NOW><suffix>` as t=NOW, so the HMAC below verifies; the header is still malformed.
    body = _event()
    valid = StripeServer.sign(body, SECRET, NOW)
    header = valid.replace(f"t={NOW},", f"t={NOW}{suffix},")
    assert header != valid
    with pytest.raises(InvalidSignature) as error:
        verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_signature")


@pytest.mark.parametrize("stamp", [f"-{NOW}", f" {NOW}", f"+{NOW}", "١٢٣"])
def test_timestamp_must_be_plain_digits(stamp: str) -> None:
    body = _event()
    digest = StripeServer.sign(body, SECRET, NOW).split(",v1=")[1]
    with pytest.raises(InvalidSignature) as error:
        verify(body, f"t={stamp},v1={digest}", secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_signature")


def test_several_v1_signatures_during_secret_rotation() -> None:
    body = _event()
    old = StripeServer.sign(body, OLD_SECRET, NOW).split(",")[1]
    new = StripeServer.sign(body, SECRET, NOW).split(",")[1]
    header = f"t={NOW},{old},{new},v0={'0' * 64}"
    for secret in (SECRET, OLD_SECRET):
        assert verify(body, header, secret=secret, tolerance=TOLERANCE, now=NOW).id == "evt_123"
    with pytest.raises(InvalidSignature):
        verify(body, header, secret="whsec_third", tolerance=TOLERANCE, now=NOW)


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'"evt_123"',
        json.dumps({"id": "evt_1", "type": "x", "created": NOW}).encode(),  # no data.object
        json.dumps({"id": "evt_1", "created": NOW, "data": {"object": {}}}).encode(),  # no type
        json.dumps({"id": "", "type": "x", "created": NOW, "data": {"object": {}}}).encode(),
        json.dumps({"id": "evt_1", "type": "x", "created": "now", "data": {"object": {}}}).encode(),
        json.dumps({"id": "evt_1", "type": "x", "created": 10**20, "data": {"object": {}}}).encode(),
    ],
)
def test_bad_payload_after_a_valid_signature(body: bytes) -> None:
    with pytest.raises(BadRequest) as error:
        verify(body, StripeServer.sign(body, SECRET, NOW), secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (400, "invalid_payload")


def test_bad_payload_is_only_reported_once_the_signature_verifies() -> None:
    with pytest.raises(InvalidSignature):
        verify(
            b"{not json", StripeServer.sign(b"{}", SECRET, NOW), secret=SECRET, tolerance=TOLERANCE, now=NOW
        )


def test_non_utf8_body() -> None:
    body = b'{"id": "\xff"}'
    with pytest.raises(InvalidSignature) as error:
        verify(body, StripeServer.sign(body, SECRET, NOW), secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert error.value.code == "invalid_signature"


@pytest.mark.parametrize("secret", ["", "   "])
def test_missing_secret_is_a_configuration_problem(secret: str) -> None:
    body = _event()
    with pytest.raises(ServiceUnavailable) as error:
        verify(body, StripeServer.sign(body, secret, NOW), secret=secret, tolerance=TOLERANCE, now=NOW)
    assert _code(error) == (503, "payments_not_configured")


def test_event_without_an_object_id() -> None:
    body = _event(data={"object": {"object": "balance"}})
    event = verify(body, StripeServer.sign(body, SECRET, NOW), secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert event.object_id is None


def test_messages_do_not_echo_the_secret_or_header() -> None:
    body = _event()
    header = StripeServer.sign(body, "whsec_someone_else", NOW)
    with pytest.raises(InvalidSignature) as error:
        verify(body, header, secret=SECRET, tolerance=TOLERANCE, now=NOW)
    assert SECRET not in str(error.value) and header not in str(error.value)
