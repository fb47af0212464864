"""The plans service contract other commerce domains use: plans, prices, provider refs and offers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import ValidationFailed
from shared.payments.providers.base import PriceSpec
from shared.plans import service
from shared.plans.money import format_amount, minor_units, normalize_currency
from shared.plans.schemas import OfferSet, PlanCreate, PpvEventCreate, PpvPriceSet, PriceSet
from tests.plans.conftest import Db, unique_code
from tests.support import catalog_factory as factory

ACTOR = service.Actor(user_id=None, ip="192.0.2.1", user_agent="pytest")


async def _plan(db: Db, **prices: int) -> str:
    code = unique_code("svc")
    await service.create_plan(
        db,
        data=PlanCreate(code=code, name="Svc", tier=2, max_streams=2, max_height=1080, trial_days=7),
        actor=ACTOR,
    )
    for key, amount in prices.items():
        currency, interval = key.split("_")
        await service.set_price(
            db,
            code=code,
            data=PriceSet.model_validate(
                {"currency": currency, "interval": interval, "amount_minor": amount}
            ),
            actor=ACTOR,
        )
    return code


def test_money_formatting() -> None:
    assert [
        minor_units(c) for c in ("USD", "eur", "JPY", "KRW", "BHD", "KWD", "JOD", "OMR", "TND", "CHF")
    ] == [2, 2, 0, 0, 3, 3, 3, 3, 3, 2]
    assert format_amount(1299, "USD") == "$12.99"
    assert format_amount(1199, "EUR") == "€11.99"
    assert format_amount(999, "GBP") == "£9.99"
    assert format_amount(1200, "JPY") == "JPY 1200"
    assert format_amount(1250, "KWD") == "KWD 1.250"
    assert format_amount(5, "CHF") == "CHF 0.05"
    assert format_amount(-500, "USD") == "-$5.00"
    assert normalize_currency(" usd ") == "USD"
    with pytest.raises(ValidationFailed) as raised:
        normalize_currency("US")
    assert raised.value.code == "invalid_currency"


async def test_plans_and_prices(db: Db) -> None:
    free = await service.get_plan(db, "free")
    assert free is not None and free.is_free and free.max_height == 720
    assert await service.get_plan(db, unique_code()) is None
    assert (await service.free_plan(db)) == free

    code = await _plan(db, USD_month=1000, EUR_year=9000)
    plan = await service.get_plan(db, code)
    assert plan is not None and plan.trial_days == 7
    price = await service.price_for(db, plan_code=code, interval="month", currency="usd")
    assert price is not None and (price.currency, price.interval, price.amount_minor) == (
        "USD",
        "month",
        1000,
    )
    assert price.active and price.provider is None
    assert await service.price_for(db, plan_code=code, interval="year", currency="USD") is None
    assert await service.price_by_id(db, price.id) == price
    assert await service.price_by_id(db, uuid.uuid4()) is None

    spec = service.price_spec(plan, price)
    assert spec == PriceSpec(
        price_id=str(price.id),
        plan_code=code,
        plan_name="Svc",
        currency="USD",
        amount_minor=1000,
        interval="month",
    )


async def test_provider_refs_are_recorded_once_and_outlive_a_price_change(db: Db) -> None:
    code = await _plan(db, USD_month=1500)
    price = await service.price_for(db, plan_code=code, interval="month", currency="USD")
    assert price is not None
    ref = f"price_sbx_{uuid.uuid4().hex}"
    assert await service.price_by_provider_ref(db, provider="sandbox", ref=ref) is None
    await service.record_provider_price(db, price_id=price.id, provider="sandbox", ref=ref)
    await service.record_provider_price(db, price_id=price.id, provider="sandbox", ref=ref)  # replay: fine
    await service.record_provider_price(db, price_id=price.id, provider="sandbox", ref="price_sbx_other")
    found = await service.price_by_provider_ref(db, provider="sandbox", ref=ref)
    assert found is not None and found.id == price.id and found.provider_price_ref == ref
    assert await service.price_by_provider_ref(db, provider="stripe", ref=ref) is None
    assert await service.price_by_provider_ref(db, provider="sandbox", ref="price_sbx_other") is None

    plan = await service.get_plan(db, code)
    assert plan is not None
    assert service.price_spec(plan, found).provider_ref == ref
    assert service.price_spec(plan, found, provider="sandbox").provider_ref == ref
    assert service.price_spec(plan, found, provider="stripe").provider_ref is None  # created elsewhere

    # A new amount: the subscribers' old price is still found by its provider ref, inactive.
    await service.set_price(
        db, code=code, data=PriceSet(currency="USD", interval="month", amount_minor=1700), actor=ACTOR
    )
    old = await service.price_by_provider_ref(db, provider="sandbox", ref=ref)
    assert old is not None and old.active is False and old.amount_minor == 1500
    current = await service.price_for(db, plan_code=code, interval="month", currency="USD")
    assert current is not None and current.id != price.id and current.provider_price_ref is None


async def test_free_plan_never_gets_a_price(db: Db) -> None:
    with pytest.raises(service.PlanIsFree):
        await service.set_price(
            db, code="free", data=PriceSet(currency="USD", interval="month", amount_minor=100), actor=ACTOR
        )
    assert await service.price_for(db, plan_code="free", interval="month", currency="USD") is None


async def _ppv(db: Db, title_id: uuid.UUID, name: str, **hours: float) -> Any:
    now = datetime.now(UTC)
    at = {k: now + timedelta(hours=v) for k, v in hours.items()}
    return await service.create_event(
        db,
        data=PpvEventCreate(
            title_id=title_id,
            name=name,
            prices=[PpvPriceSet(currency="USD", amount_minor=2000)],
            **at,
        ),
        actor=ACTOR,
    )


async def test_offer_for(db: Db) -> None:
    title_id = await factory.title(db, f"Svc film {uuid.uuid4().hex[:6]}")
    for kind, amount in (("rental", 399), ("purchase", 1499)):
        await service.set_offer(
            db,
            title_id=title_id,
            data=OfferSet.model_validate({"kind": kind, "currency": "USD", "amount_minor": amount}),
            actor=ACTOR,
        )
    rental = await service.offer_for(db, title_id=title_id, kind="rental", currency="usd")
    assert rental is not None and (rental.kind, rental.amount_minor, rental.ppv_event_id) == (
        "rental",
        399,
        None,
    )
    assert rental.sale_starts_at is None and rental.view_ends_at is None
    purchase = await service.offer_for(db, title_id=title_id, kind="purchase", currency="USD")
    assert purchase is not None and purchase.amount_minor == 1499
    assert await service.offer_for(db, title_id=title_id, kind="rental", currency="EUR") is None
    assert await service.offer_for(db, title_id=title_id, kind="ppv", currency="USD") is None

    await service.remove_offer(db, title_id=title_id, kind="rental", currency="USD", actor=ACTOR)
    assert await service.offer_for(db, title_id=title_id, kind="rental", currency="USD") is None


async def test_offer_for_ppv_carries_the_windows(db: Db) -> None:
    title_id = await factory.title(db, f"Svc event {uuid.uuid4().hex[:6]}")
    later = await _ppv(
        db, title_id, "Later", sale_starts_at=24, sale_ends_at=48, view_starts_at=48, view_ends_at=50
    )
    live = await _ppv(
        db, title_id, "Live", sale_starts_at=-1, sale_ends_at=2, view_starts_at=2, view_ends_at=4
    )

    offer = await service.offer_for(db, title_id=title_id, kind="ppv", currency="USD", ppv_event_id=later.id)
    assert offer is not None and offer.ppv_event_id == later.id and offer.ppv_event_name == "Later"
    assert (offer.sale_starts_at, offer.sale_ends_at, offer.view_starts_at, offer.view_ends_at) == (
        later.sale_starts_at,
        later.sale_ends_at,
        later.view_starts_at,
        later.view_ends_at,
    )
    # Without an event: the one on sale now.
    current = await service.offer_for(db, title_id=title_id, kind="ppv", currency="USD")
    assert current is not None and current.ppv_event_id == live.id and current.amount_minor == 2000
    assert (
        await service.offer_for(db, title_id=title_id, kind="ppv", currency="EUR", ppv_event_id=live.id)
        is None
    )
    assert (
        await service.offer_for(db, title_id=title_id, kind="ppv", currency="USD", ppv_event_id=uuid.uuid4())
        is None
    )
    # A rental lookup never returns a ppv ticket, even when given an event id.
    assert (
        await service.offer_for(db, title_id=title_id, kind="rental", currency="USD", ppv_event_id=live.id)
        is None
    )

    event = await service.ppv_event(db, live.id)
    assert event is not None and event.name == "Live"


async def test_ppv_offers_follow_the_moved_clock(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.streaming import sessions

    title_id = await factory.title(db, f"Svc clock {uuid.uuid4().hex[:6]}")
    first = await _ppv(
        db, title_id, "First", sale_starts_at=-1, sale_ends_at=2, view_starts_at=2, view_ends_at=3
    )
    second = await _ppv(
        db, title_id, "Second", sale_starts_at=3, sale_ends_at=6, view_starts_at=6, view_ends_at=7
    )
    start = datetime.now(UTC).timestamp()

    async def offered(hours: float) -> Any:
        monkeypatch.setattr(sessions, "clock", lambda: start + hours * 3600)
        return await service.offer_for(db, title_id=title_id, kind="ppv", currency="USD")

    assert (await offered(0)).ppv_event_id == first.id
    # Between sales: the next event (not on sale yet: its windows let purchases answer sale_not_open).
    between = await offered(2.5)
    assert between.ppv_event_id == second.id and between.sale_starts_at > datetime.now(UTC)
    assert (await offered(4)).ppv_event_id == second.id
    assert await offered(7) is None
