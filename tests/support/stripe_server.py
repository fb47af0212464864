"""A local stand-in for the Stripe API (v1, version 2026-10-28.endive), for driving the real `stripe` SDK.

Point the SDK at it: `stripe.StripeClient(server.api_key, base_addresses={"api": server.url}, ...)`, or
in the app set STRIPE_SECRET_KEY=server.api_key and STRIPE_API_BASE=server.url. Use it as
`with StripeServer() as server:` (or start()/stop()); objects live in memory, per server.

What the HTTP side checks and answers, like Stripe:
- `Authorization: Bearer <server.api_key>`, else 401 (type invalid_request_error).
- Form-encoded bodies (and GET query strings) with nested brackets: `items[0][price]=...`,
  `metadata[k]=v`, `expand[0]=...` / `expand[]=...`; values arrive as strings ("true"/"false", digits).
- Unknown parameters -> 400 invalid_request_error "Received unknown parameter: x" (param named), missing
  required ones -> 400 parameter_missing, an unknown referenced object -> 400 resource_missing (param
  named), an unknown id in the path -> 404 resource_missing; errors are `{"error": {type, code, message,
  param, doc_url, request_log_url}}` with a `Request-Id` header.
- `Idempotency-Key`: a 2xx answer is stored under the key; the same key with the same method, path and
  params replays it (header `Idempotent-Replayed: true`); with different ones -> 400 idempotency_error.
  Errors are not stored (like Stripe: a request that failed validation may be retried with its key).
- `expand[]` on any endpoint: dotted paths through ids and `data` lists (e.g. "latest_invoice",
  "payments", "items.data.price.product", "line_items"); invoice `payments` and checkout `line_items`
  are includable (only present when expanded), as on Stripe.

Endpoints: POST /v1/customers, GET /v1/customers/{id}; POST /v1/products, GET /v1/products/{id};
POST /v1/prices, GET /v1/prices (lookup_keys[], active, limit), GET /v1/prices/{id};
POST /v1/checkout/sessions, GET /v1/checkout/sessions/{id}, POST /v1/checkout/sessions/{id}/expire
(an open session only, else 400 invalid_request_error); POST /v1/billing_portal/sessions;
GET/POST/DELETE /v1/subscriptions/{id} (POST: items[0][id|price], proration_behavior,
payment_behavior, cancel_at_period_end, metadata; DELETE: invoice_now, prorate, cancellation_details,
and an already canceled subscription answers 404 resource_missing "No such subscription", as Stripe
does; like Stripe, Idempotency-Key is only honoured on POST); POST /v1/refunds (payment_intent or
charge, amount (default: all that remains), reason, metadata; a fully refunded charge -> 400
charge_already_refunded, a disputed one -> 400 charge_disputed); GET /v1/refunds/{id};
GET /v1/invoices/{id}; GET /v1/invoices/{id}/lines
(limit, starting_after: the invoice embeds its first 10 lines with has_more, like Stripe);
GET /v1/charges/{id}; GET /v1/payment_intents/{id}; GET /v1/tax_rates/{id}; GET /v1/disputes/{id}.

Object shapes follow 2026-10-28.endive: a subscription's period is on `items.data[].current_period_start
/ _end`; an invoice's subscription is `parent.subscription_details.subscription`, its payments are
`payments.data[].payment.payment_intent` (expand "payments"), taxes are `total_taxes[]` {amount,
tax_behavior, tax_rate_details{tax_rate}, taxability_reason, taxable_amount, type} (the rate's percentage
is on GET /v1/tax_rates/{id}); lines have `parent.subscription_item_details.proration` and
`pricing.price_details.price`. `StripeServer(legacy_fields=True)` also fills the pre-2025 fields
(subscription.current_period_*, invoice.subscription / payment_intent / charge / paid /
total_tax_amounts) for code that must read both.

Test-side API (plain methods, thread-safe, callable from the test while the SDK talks to the server):
- `server.api_key`, `server.url`, `server.requests` (list of `Received(method, path, params, headers,
  status, body)`; headers lower-cased, e.g. headers["idempotency-key"], headers["stripe-version"]),
  `server.requests_to(method, path_prefix)`, `server.reset_requests()`.
- `server.clock`: a `() -> float` (default time.time) for every timestamp the server writes; set it
  to move Stripe's time: `server.clock = lambda: 1_900_000_000`.
- `server.get(id) -> dict`: the current object (a copy), whatever its type; `server.objects(kind)`.
- `server.fail_next(status=500, times=1, type="api_error", code=None, message=None,
  should_retry=None)`: the next requests answer that error instead (not stored under idempotency keys).
- `server.add_tax_rate(display_name="VAT", percentage=20.0, inclusive=False) -> "txr_..."`.
- `server.set_card_failing(customer_id, failing=True)`: that customer's payments now decline.
- `server.complete_checkout(session_id, *, tax_rate=None, paid=True) -> dict[str, str | None]`:
  what Checkout does when the customer pays: subscription mode creates the customer when needed, the
  subscription (trialing with trial_period_days, else active; period now..+interval), its first invoice
  (paid; amount 0 during a trial, billing_reason subscription_create) and, when there is an amount, the
  payment intent + succeeded charge; payment mode creates the payment intent (metadata from
  payment_intent_data) + charge. The session becomes complete with payment_status paid (or
  no_payment_required for a trial; `paid=False` leaves it complete + unpaid with the payment intent
  processing, for async payment methods: then `settle_checkout(session_id, succeeded=bool)`).
  Returns {"session", "customer", "subscription", "invoice", "payment_intent", "charge"} (None when n/a).
- `server.expire_checkout(session_id)`: status expired.
- `server.set_subscription(sub_id, **fields)`: set fields as-is; `current_period_start` /
  `current_period_end` (ints) go to the item; `price="price_..."` swaps the item's price.
- `server.advance_period(sub_id, *, paid=True, tax_rate=None) -> dict`: the renewal at period end:
  a subscription with cancel_at_period_end is canceled (ended_at = period end, no invoice); otherwise
  the period moves one interval, an invoice (billing_reason subscription_cycle, pending prorations
  included) is paid (status active) or fails (invoice open, attempt_count 1, charge failed, payment
  intent requires_payment_method, status past_due); a failing card (set_card_failing) fails it too.
  The new period starts at the old period end; the server clock is NOT moved (set `server.clock` when
  the test needs Stripe's "now" there too).
  Returns {"subscription", "invoice", "payment_intent", "charge"}.
- `server.add_invoice(customer_or_subscription, *, amount, description="Invoice item", paid=True,
  billing_reason="manual", tax_rate=None, more_lines=[(description, amount), ...]) -> "in_..."`.
- `server.fail_invoice(invoice_id) -> charge id` (one more failed attempt; its subscription past_due),
  `server.pay_invoice(invoice_id) -> charge id` (paid; past_due/unpaid/incomplete subscription ->
  active), `server.void_invoice(id)`, `server.mark_uncollectible(id)`.
- `server.cancel_subscription(sub_id)`: canceled now (what DELETE /v1/subscriptions/{id} does).
- `server.refund_charge(charge_id, amount=None) -> "re_..."` (partial when amount < remaining;
  `refunded` only when fully refunded); `server.dispute_charge(charge_id, reason="fraudulent") ->
  "dp_..."` (a dispute object; the charge becomes `disputed`).
- `server.event(type, obj_or_id, *, previous_attributes=None) -> dict`: a Stripe-shaped event
  {id "evt_...", object "event", api_version, created, type, livemode, pending_webhooks, request,
  data {object, previous_attributes?}}; an id is rendered as the object's current state.
- `StripeServer.sign(payload: bytes, secret: str, timestamp: int) -> str`: the Stripe-Signature value
  `t=<timestamp>,v1=<hex HMAC-SHA256(secret, f"{t}.{payload}")>`; `server.webhook(event, secret,
  timestamp=None) -> (body_bytes, {"stripe-signature": ..., "content-type": "application/json"})`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer

API_VERSION = "2026-10-28.endive"
DOC = "https://stripe.com/docs/error-codes/"
_KINDS_BY_PREFIX = {
    "cus": "customer",
    "prod": "product",
    "price": "price",
    "cs": "checkout.session",
    "sub": "subscription",
    "si": "subscription_item",
    "in": "invoice",
    "pi": "payment_intent",
    "ch": "charge",
    "re": "refund",
    "dp": "dispute",
    "txr": "tax_rate",
    "bps": "billing_portal.session",
}


@dataclass(frozen=True)
class Received:
    """One request as the server got it: parsed params (body or query), lower-cased headers, the answer."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int
    body: Any


class StripeApiError(Exception):
    """An error answer (raised inside handlers; rendered as Stripe's error body)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, "type": type}
        if code is not None:
            self.body["code"] = code
            self.body["doc_url"] = DOC + code.replace("_", "-")
        if param is not None:
            self.body["param"] = param
        self.body.update(extra or {})
        self.headers = headers or {}


def parse_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding to nested dicts/lists: a[b][0][c]=v, a[]=v (indexed keys become lists)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = re.match(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$", key)
        if match is None:
            raise StripeApiError(400, f"Invalid parameter name: {key}", param=key)
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    raise StripeApiError(400, f"Invalid parameter: {key}", param=key)
                node = child
    return _listify(root)  # type: ignore[no-any-return]


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _as_int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeApiError(
            400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param
        ) from None


def _as_bool(value: Any, param: str) -> bool:
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise StripeApiError(400, f"Invalid boolean: {value}", code="parameter_invalid_boolean", param=param)


def _as_metadata(value: Any, param: str = "metadata") -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise StripeApiError(400, "Invalid metadata: must be a hash of strings", param=param)
    if len(value) > 50:
        raise StripeApiError(400, "Metadata can have at most 50 keys", param=param)
    return dict(value)


def _check_known(params: dict[str, Any], allowed: set[str], prefix: str = "") -> None:
    for key in params:
        if key not in allowed:
            name = f"{prefix}[{key}]" if prefix else key
            raise StripeApiError(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )


def _require(params: dict[str, Any], name: str, label: str | None = None) -> Any:
    value = params.get(name)
    if value in (None, ""):
        raise StripeApiError(
            400, f"Missing required param: {label or name}.", code="parameter_missing", param=label or name
        )
    return value


def _interval_end(start: int, interval: str, count: int = 1) -> int:
    """The same moment `count` months/years (or days/weeks) later, clamped to the month's end like Stripe."""
    moment = datetime.fromtimestamp(start, UTC)
    if interval in ("day", "week"):
        return start + count * (86400 if interval == "day" else 7 * 86400)
    months = count * (12 if interval == "year" else 1)
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    for day in range(moment.day, 27, -1):
        try:
            return int(moment.replace(year=year, month=month, day=day).timestamp())
        except ValueError:
            continue
    return int(moment.replace(year=year, month=month, day=min(moment.day, 28)).timestamp())


def _list(data: list[dict[str, Any]], url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": False, "total_count": len(data), "url": url}


class StripeServer(ThreadedServer):
    """The fake Stripe API, served by uvicorn on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, api_key: str | None = None, *, legacy_fields: bool = False) -> None:
        self.api_key = api_key or f"sk_test_{secrets.token_hex(24)}"
        self.legacy_fields = legacy_fields
        self.requests: list[Received] = []
        self.clock: Callable[[], float] = time.time
        self._lock = threading.RLock()
        self._store: dict[str, dict[str, Any]] = {}
        self._private: dict[str, dict[str, Any]] = {}  # per object: what Stripe keeps but does not show
        self._idempotency: dict[str, tuple[tuple[str, str, str], int, dict[str, Any]]] = {}
        self._failures: list[StripeApiError] = []
        self._pending_items: dict[str, list[dict[str, Any]]] = {}  # customer -> prorations for next invoice
        routes = [
            Route("/v1/{path:path}", self._handle, methods=["GET", "POST", "DELETE"]),
        ]
        super().__init__(
            Starlette(routes=routes), label="the Stripe test server", thread_name="stripe-server"
        )

    # ----------------------------------------------------------------------------------------- basics

    def now(self) -> int:
        """Stripe's current time (from `clock`), as a Unix timestamp."""
        return int(self.clock())

    def _id(self, prefix: str) -> str:
        if prefix == "cs":
            return f"cs_test_{secrets.token_hex(30)}"
        return f"{prefix}_{secrets.token_hex(12)}"

    def _put(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._store[obj["id"]] = obj
        self._private.setdefault(obj["id"], {})
        return obj

    def _find(self, ref: str, kind: str, *, param: str | None = None) -> dict[str, Any]:
        obj = self._store.get(ref) if isinstance(ref, str) else None
        if obj is None or obj.get("object") != kind:
            label = kind.split(".")[-1].replace("_", " ")
            if kind == "checkout.session":
                label = "checkout.session"
            if param is None:
                raise StripeApiError(404, f"No such {label}: '{ref}'", code="resource_missing", param="id")
            raise StripeApiError(400, f"No such {label}: '{ref}'", code="resource_missing", param=param)
        return obj

    def get(self, ref: str) -> dict[str, Any]:
        """The current state of any object (a copy)."""
        with self._lock:
            if ref not in self._store:
                raise KeyError(ref)
            return self._render(ref, [])

    def objects(self, kind: str) -> list[dict[str, Any]]:
        """Every object of a kind ("customer", "subscription", "checkout.session", ...), copies."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._store.values() if o.get("object") == kind]

    def requests_to(self, method: str, path_prefix: str) -> list[Received]:
        """Recorded requests with this method whose path starts with the prefix."""
        return [r for r in list(self.requests) if r.method == method and r.path.startswith(path_prefix)]

    def reset_requests(self) -> None:
        """Forget the recorded requests (objects stay)."""
        with self._lock:
            self.requests.clear()

    def fail_next(
        self,
        status: int = 500,
        *,
        times: int = 1,
        type: str = "api_error",
        code: str | None = None,
        message: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next `times` requests with this Stripe error instead (e.g. 402 card_error)."""
        headers = {} if should_retry is None else {"stripe-should-retry": "true" if should_retry else "false"}
        extra = {"decline_code": "generic_decline"} if type == "card_error" else None
        error = StripeApiError(
            status, message or f"Simulated {status}", type=type, code=code, headers=headers, extra=extra
        )
        with self._lock:
            self._failures.extend([error] * times)

    # ------------------------------------------------------------------------------------------- HTTP

    async def _handle(self, request: Request) -> Response:
        raw = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        method, path = request.method, request.url.path
        request_id = f"req_{secrets.token_hex(7)}"
        params: dict[str, Any] = {}
        replayed = False
        try:
            if method == "POST":
                from urllib.parse import parse_qsl

                params = parse_form(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            else:
                params = parse_form(request.query_params.multi_items())
            status, body, replayed = self._answer(method, path, params, headers)
            extra_headers: dict[str, str] = {}
        except StripeApiError as error:
            status, body = error.status, {"error": {**error.body, "request_log_url": None}}
            body["error"]["request_log_url"] = f"https://dashboard.stripe.com/test/logs/{request_id}"
            extra_headers = error.headers
        with self._lock:
            self.requests.append(Received(method, path, params, headers, status, copy.deepcopy(body)))
        response_headers = {"request-id": request_id, "stripe-version": API_VERSION, **extra_headers}
        if "idempotency-key" in headers and method == "POST":
            response_headers["idempotency-key"] = headers["idempotency-key"]
            if replayed:
                response_headers["idempotent-replayed"] = "true"
        return JSONResponse(body, status_code=status, headers=response_headers)

    def _answer(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any], bool]:
        authorization = headers.get("authorization", "")
        if not authorization:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if authorization != f"Bearer {self.api_key}":
            given = authorization.removeprefix("Bearer ")
            raise StripeApiError(
                401, f"Invalid API Key provided: {given[:8]}{'*' * 12}{given[-4:]}", code="api_key_invalid"
            )
        with self._lock:
            if self._failures:
                raise self._failures.pop(0)
            key = headers.get("idempotency-key") if method == "POST" else None
            fingerprint = (method, path, json.dumps(params, sort_keys=True))
            if key:
                stored = self._idempotency.get(key)
                if stored is not None:
                    if stored[0] != fingerprint:
                        raise StripeApiError(
                            400,
                            "Keys for idempotent requests can only be used with the same parameters they "
                            "were first used with. Try using a key other than "
                            f"'{key}' if you meant to execute a different request.",
                            type="idempotency_error",
                        )
                    return stored[1], copy.deepcopy(stored[2]), True
            expand = params.pop("expand", None) if isinstance(params.get("expand"), list) else None
            if "expand" in params:
                raise StripeApiError(400, "Invalid array", param="expand")
            obj_id = self._route(method, path, params)
            body = self._render(obj_id, list(expand or [])) if isinstance(obj_id, str) else obj_id
            if expand is not None:
                params["expand"] = expand
            if key:
                self._idempotency[key] = (fingerprint, 200, copy.deepcopy(body))
            return 200, body, False

    def _route(self, method: str, path: str, params: dict[str, Any]) -> str | dict[str, Any]:
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        resource = parts[0] if parts else ""
        if resource in ("checkout", "billing_portal") and len(parts) >= 2:
            resource, parts = f"{parts[0]}/{parts[1]}", [f"{parts[0]}/{parts[1]}", *parts[2:]]
        ref = parts[1] if len(parts) == 2 else None
        kinds = {
            "customers": "customer",
            "products": "product",
            "prices": "price",
            "checkout/sessions": "checkout.session",
            "subscriptions": "subscription",
            "invoices": "invoice",
            "charges": "charge",
            "payment_intents": "payment_intent",
            "tax_rates": "tax_rate",
            "disputes": "dispute",
            "refunds": "refund",
        }
        creators: dict[str, Callable[[dict[str, Any]], str]] = {
            "customers": self._create_customer,
            "products": self._create_product,
            "prices": self._create_price,
            "checkout/sessions": self._create_checkout,
            "billing_portal/sessions": self._create_portal_session,
            "refunds": self._create_refund,
        }
        if len(parts) == 1 and method == "POST" and resource in creators:
            return creators[resource](params)
        if len(parts) == 1 and method == "GET" and resource == "prices":
            return self._list_prices(params)
        if len(parts) == 3 and method == "GET" and resource == "invoices" and parts[2] == "lines":
            return self._list_invoice_lines(parts[1], params)
        if len(parts) == 3 and method == "POST" and resource == "checkout/sessions" and parts[2] == "expire":
            return self._expire_checkout_request(parts[1], params)
        if ref is not None and resource in kinds:
            if method == "GET":
                _check_known(params, set())
                return self._find(ref, kinds[resource])["id"]  # type: ignore[no-any-return]
            if method == "POST" and resource == "subscriptions":
                return self._update_subscription(ref, params)
            if method == "DELETE" and resource == "subscriptions":
                return self._cancel_subscription_request(ref, params)
        raise StripeApiError(404, f"Unrecognized request URL ({method}: {path}).", param=None, code=None)

    # -------------------------------------------------------------------------------------- rendering

    def _render(self, ref: str, expand: list[str]) -> dict[str, Any]:
        obj = copy.deepcopy(self._store[ref])
        private = self._private.get(ref, {})
        includable = {"payments": "payments", "line_items": "line_items"}
        for path in sorted(expand):
            head = path.split(".")[0]
            if head in includable and head in private and head not in obj:
                obj[head] = copy.deepcopy(private[head])
            if head not in obj:
                raise StripeApiError(400, f"This property cannot be expanded ({path}).", param="expand")
            if len(path.split(".")) > 4:
                raise StripeApiError(
                    400, "You cannot expand more than 4 levels of a property.", param="expand"
                )
            self._expand(obj, path.split("."))
        return obj

    def _expand(self, node: Any, parts: list[str]) -> None:
        if not parts or not isinstance(node, dict):
            return
        key, rest = parts[0], parts[1:]
        value = node.get(key)
        if key == "data" and isinstance(value, list):
            for item in value:
                self._expand(item, rest)
            return
        if isinstance(value, str) and value in self._store:
            value = node[key] = copy.deepcopy(self._store[value])
        self._expand(value, rest)

    # ------------------------------------------------------------------------------------ create/update

    def _create_customer(self, params: dict[str, Any]) -> str:
        _check_known(params, {"email", "name", "description", "metadata", "phone", "preferred_locales"})
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.now(),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "email": params.get("email"),
            "invoice_prefix": secrets.token_hex(4).upper(),
            "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
            "livemode": False,
            "metadata": _as_metadata(params.get("metadata")),
            "name": params.get("name"),
            "next_invoice_sequence": 1,
            "phone": params.get("phone"),
            "preferred_locales": params.get("preferred_locales") or [],
            "tax_exempt": "none",
        }
        return self._put(customer)["id"]  # type: ignore[no-any-return]

    def _create_product(self, params: dict[str, Any]) -> str:
        _check_known(params, {"name", "description", "metadata", "active", "tax_code"})
        return self._new_product(
            _require(params, "name"), params.get("description"), _as_metadata(params.get("metadata"))
        )

    def _new_product(
        self, name: str, description: str | None = None, metadata: dict[str, str] | None = None
    ) -> str:
        product = {
            "id": self._id("prod"),
            "object": "product",
            "active": True,
            "created": self.now(),
            "default_price": None,
            "description": description,
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": metadata or {},
            "name": name,
            "shippable": None,
            "tax_code": None,
            "type": "service",
            "updated": self.now(),
            "url": None,
        }
        return self._put(product)["id"]  # type: ignore[no-any-return]

    def _create_price(self, params: dict[str, Any]) -> str:
        _check_known(
            params,
            {
                "currency",
                "unit_amount",
                "product",
                "product_data",
                "recurring",
                "lookup_key",
                "transfer_lookup_key",
                "metadata",
                "nickname",
                "active",
                "tax_behavior",
            },
        )
        currency = str(_require(params, "currency")).lower()
        unit_amount = _as_int(_require(params, "unit_amount"), "unit_amount")
        if unit_amount < 0:
            raise StripeApiError(400, "Invalid non-negative integer", param="unit_amount")
        if params.get("product"):
            product = self._find(params["product"], "product", param="product")["id"]
        elif isinstance(params.get("product_data"), dict):
            _check_known(params["product_data"], {"name", "metadata"}, "product_data")
            product = self._new_product(_require(params["product_data"], "name", "product_data[name]"))
        else:
            raise StripeApiError(
                400, "Missing required param: product.", code="parameter_missing", param="product"
            )
        recurring = params.get("recurring")
        if recurring is not None:
            _check_known(recurring, {"interval", "interval_count", "usage_type"}, "recurring")
            if recurring.get("interval") not in ("day", "week", "month", "year"):
                raise StripeApiError(400, "Invalid recurring[interval]", param="recurring[interval]")
        lookup_key = params.get("lookup_key")
        if lookup_key:
            holder = next(
                (
                    p
                    for p in self._store.values()
                    if p.get("object") == "price" and p.get("lookup_key") == lookup_key
                ),
                None,
            )
            if holder is not None:
                if not _as_bool(params.get("transfer_lookup_key", "false"), "transfer_lookup_key"):
                    raise StripeApiError(
                        400,
                        f"A price (`{holder['id']}`) already uses that lookup key.",
                        code="lookup_key_exists",
                        param="lookup_key",
                    )
                holder["lookup_key"] = None
        return self._new_price(
            product=product,
            currency=currency,
            unit_amount=unit_amount,
            interval=recurring["interval"] if recurring else None,
            interval_count=_as_int(recurring.get("interval_count", 1), "recurring[interval_count]")
            if recurring
            else 1,
            lookup_key=lookup_key,
            metadata=_as_metadata(params.get("metadata")),
            nickname=params.get("nickname"),
        )

    def _new_price(
        self,
        *,
        product: str,
        currency: str,
        unit_amount: int,
        interval: str | None,
        interval_count: int = 1,
        lookup_key: str | None = None,
        metadata: dict[str, str] | None = None,
        nickname: str | None = None,
        active: bool = True,
    ) -> str:
        price = {
            "id": self._id("price"),
            "object": "price",
            "active": active,
            "billing_scheme": "per_unit",
            "created": self.now(),
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": lookup_key,
            "metadata": metadata or {},
            "nickname": nickname,
            "product": product,
            "recurring": (
                {
                    "interval": interval,
                    "interval_count": interval_count,
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                }
                if interval
                else None
            ),
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "recurring" if interval else "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        }
        return self._put(price)["id"]  # type: ignore[no-any-return]

    def _list_prices(self, params: dict[str, Any]) -> dict[str, Any]:
        _check_known(params, {"lookup_keys", "active", "limit", "product", "currency", "expand", "type"})
        prices = [p for p in self._store.values() if p.get("object") == "price"]
        if params.get("lookup_keys"):
            keys = (
                params["lookup_keys"] if isinstance(params["lookup_keys"], list) else [params["lookup_keys"]]
            )
            prices = [p for p in prices if p.get("lookup_key") in keys]
        if "active" in params:
            active = _as_bool(params["active"], "active")
            prices = [p for p in prices if p["active"] == active]
        for field in ("product", "currency", "type"):
            if field in params:
                prices = [p for p in prices if p[field] == params[field]]
        limit = _as_int(params.get("limit", 10), "limit")
        data = [copy.deepcopy(p) for p in sorted(prices, key=lambda p: -p["created"])]
        result = _list(data[:limit], "/v1/prices")
        result["has_more"] = len(data) > limit
        del result["total_count"]
        return result

    def _list_invoice_lines(self, ref: str, params: dict[str, Any]) -> dict[str, Any]:
        _check_known(params, {"limit", "starting_after", "ending_before"})
        self._find(ref, "invoice")
        lines = self._private[ref]["lines"]
        limit = _as_int(params.get("limit", 10), "limit")
        if not 1 <= limit <= 100:
            raise StripeApiError(400, "Invalid limit: must be between 1 and 100", param="limit")
        start = 0
        if params.get("starting_after"):
            ids = [line["id"] for line in lines]
            if params["starting_after"] not in ids:
                raise StripeApiError(400, "Invalid starting_after", param="starting_after")
            start = ids.index(params["starting_after"]) + 1
        page = copy.deepcopy(lines[start : start + limit])
        result = _list(page, f"/v1/invoices/{ref}/lines")
        result["has_more"] = start + limit < len(lines)
        del result["total_count"]
        return result

    def _create_checkout(self, params: dict[str, Any]) -> str:
        _check_known(
            params,
            {
                "mode",
                "line_items",
                "customer",
                "customer_email",
                "client_reference_id",
                "success_url",
                "cancel_url",
                "metadata",
                "subscription_data",
                "payment_intent_data",
                "allow_promotion_codes",
                "automatic_tax",
                "expires_at",
                "locale",
                "payment_method_types",
                "ui_mode",
                "billing_address_collection",
                "invoice_creation",
                "customer_update",
                "tax_id_collection",
            },
        )
        mode = _require(params, "mode")
        if mode not in ("payment", "subscription", "setup"):
            raise StripeApiError(400, f"Invalid mode: {mode}", param="mode")
        if mode == "setup":
            raise StripeApiError(400, "This test server does not do setup mode.", param="mode")
        _require(params, "success_url")
        customer = params.get("customer")
        if customer:
            self._find(customer, "customer", param="customer")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise StripeApiError(
                400,
                "`line_items` is required in `payment` and `subscription` mode.",
                code="parameter_missing",
                param="line_items",
            )
        lines: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            name = f"line_items[{index}]"
            if not isinstance(item, dict):
                raise StripeApiError(400, f"Invalid {name}", param=name)
            _check_known(item, {"price", "price_data", "quantity"}, name)
            quantity = _as_int(item.get("quantity", 1), f"{name}[quantity]")
            if item.get("price"):
                price = self._find(item["price"], "price", param=f"{name}[price]")
            elif isinstance(item.get("price_data"), dict):
                data = item["price_data"]
                _check_known(
                    data,
                    {"currency", "unit_amount", "product", "product_data", "recurring", "tax_behavior"},
                    f"{name}[price_data]",
                )
                product_data = data.get("product_data")
                if isinstance(product_data, dict):
                    _check_known(
                        product_data,
                        {"name", "description", "metadata", "images"},
                        f"{name}[price_data][product_data]",
                    )
                    product = self._new_product(
                        _require(product_data, "name", f"{name}[price_data][product_data][name]"),
                        product_data.get("description"),
                    )
                else:
                    product = self._find(
                        _require(data, "product", f"{name}[price_data][product]"),
                        "product",
                        param=f"{name}[price_data][product]",
                    )["id"]
                recurring = data.get("recurring")
                price = self._store[
                    self._new_price(
                        product=product,
                        currency=str(_require(data, "currency", f"{name}[price_data][currency]")).lower(),
                        unit_amount=_as_int(
                            _require(data, "unit_amount", f"{name}[price_data][unit_amount]"),
                            f"{name}[price_data][unit_amount]",
                        ),
                        interval=recurring.get("interval") if isinstance(recurring, dict) else None,
                        active=False,
                    )
                ]
            else:
                raise StripeApiError(
                    400,
                    f"Missing required param: {name}[price].",
                    code="parameter_missing",
                    param=f"{name}[price]",
                )
            recurring_price = price["recurring"] is not None
            if mode == "subscription" and not recurring_price:
                raise StripeApiError(
                    400,
                    "You must specify at least one recurring price in `subscription` mode when using prices.",
                    param=f"{name}[price]",
                )
            if mode == "payment" and recurring_price:
                raise StripeApiError(
                    400,
                    "You specified `payment` mode but passed a recurring price. Either switch to "
                    "`subscription` mode or use only one-time prices.",
                    param=f"{name}[price]",
                )
            lines.append(
                {"price": price["id"], "quantity": quantity, "amount": price["unit_amount"] * quantity}
            )
        currencies = {self._store[line["price"]]["currency"] for line in lines}
        if len(currencies) > 1:
            raise StripeApiError(400, "All prices must have the same currency.", param="line_items")
        subscription_data = params.get("subscription_data") or {}
        payment_intent_data = params.get("payment_intent_data") or {}
        if subscription_data and mode != "subscription":
            raise StripeApiError(
                400,
                "You can only pass `subscription_data` in `subscription` mode.",
                param="subscription_data",
            )
        if payment_intent_data and mode != "payment":
            raise StripeApiError(
                400, "You can only pass `payment_intent_data` in `payment` mode.", param="payment_intent_data"
            )
        _check_known(
            subscription_data,
            {"trial_period_days", "metadata", "description", "trial_end", "trial_settings"},
            "subscription_data",
        )
        _check_known(
            payment_intent_data,
            {"metadata", "description", "receipt_email", "statement_descriptor_suffix", "setup_future_usage"},
            "payment_intent_data",
        )
        trial_days = _as_int(
            subscription_data.get("trial_period_days", 0), "subscription_data[trial_period_days]"
        )
        if "trial_period_days" in subscription_data and trial_days < 1:
            raise StripeApiError(
                400,
                "The trial_period_days parameter must be at least 1.",
                param="subscription_data[trial_period_days]",
            )
        metadata = _as_metadata(params.get("metadata"))
        if "allow_promotion_codes" in params:
            _as_bool(params["allow_promotion_codes"], "allow_promotion_codes")
        automatic_tax = params.get("automatic_tax") or {}
        _check_known(automatic_tax, {"enabled", "liability"}, "automatic_tax")
        session_id = self._id("cs")
        created = self.now()
        subtotal = sum(line["amount"] for line in lines)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "allow_promotion_codes": _as_bool(
                params.get("allow_promotion_codes", "false"), "allow_promotion_codes"
            ),
            "amount_subtotal": subtotal,
            "amount_total": subtotal,
            "automatic_tax": {
                "enabled": _as_bool(automatic_tax.get("enabled", "false"), "automatic_tax[enabled]"),
                "liability": None,
                "provider": None,
                "status": None,
            },
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": created,
            "currency": currencies.pop(),
            "customer": customer or None,
            "customer_creation": None if customer else ("always" if mode == "payment" else None),
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": _as_int(params.get("expires_at", created + 86400), "expires_at"),
            "invoice": None,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": metadata,
            "mode": mode,
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": f"{self.url}/c/pay/{session_id}",
        }
        self._put(session)
        line_items = [
            {
                "id": f"li_{secrets.token_hex(12)}",
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": line["amount"],
                "amount_tax": 0,
                "amount_total": line["amount"],
                "currency": session["currency"],
                "description": self._store[self._store[line["price"]]["product"]]["name"],
                "price": copy.deepcopy(self._store[line["price"]]),
                "quantity": line["quantity"],
            }
            for line in lines
        ]
        self._private[session_id].update(
            line_items=_list(line_items, f"/v1/checkout/sessions/{session_id}/line_items"),
            lines=lines,
            trial_days=trial_days,
            subscription_metadata=_as_metadata(
                subscription_data.get("metadata"), "subscription_data[metadata]"
            ),
            payment_metadata=_as_metadata(
                payment_intent_data.get("metadata"), "payment_intent_data[metadata]"
            ),
            description=payment_intent_data.get("description"),
        )
        return session_id

    def _cancel_subscription_request(self, ref: str, params: dict[str, Any]) -> str:
        _check_known(params, {"invoice_now", "prorate", "cancellation_details"})
        subscription = self._find(ref, "subscription")
        for name in ("invoice_now", "prorate"):
            if name in params:
                _as_bool(params[name], name)
        details = params.get("cancellation_details")
        if details is not None:
            if not isinstance(details, dict):
                raise StripeApiError(400, "Invalid object", param="cancellation_details")
            _check_known(details, {"comment", "feedback"}, "cancellation_details")
        if subscription["status"] in ("canceled", "incomplete_expired"):
            # What Stripe answers: a canceled subscription is gone for DELETE (GET still reads it).
            raise StripeApiError(404, f"No such subscription: '{ref}'", code="resource_missing", param="id")
        self.cancel_subscription(ref)
        if isinstance(details, dict):
            subscription["cancellation_details"].update(
                {k: details[k] or None for k in ("comment", "feedback") if k in details}
            )
        return ref

    def _expire_checkout_request(self, ref: str, params: dict[str, Any]) -> str:
        _check_known(params, set())
        session = self._find(ref, "checkout.session")
        if session["status"] != "open":
            raise StripeApiError(
                400, 'Only Checkout Sessions with a status in ["open"] can be expired.', param=None
            )
        self.expire_checkout(ref)
        return ref

    def _create_refund(self, params: dict[str, Any]) -> str:
        _check_known(params, {"payment_intent", "charge", "amount", "reason", "metadata"})
        if "payment_intent" in params and "charge" in params:
            raise StripeApiError(
                400, "You cannot specify both a charge and a payment_intent.", param="charge"
            )
        if "charge" in params:
            charge = self._find(params["charge"], "charge", param="charge")
        elif "payment_intent" in params:
            intent = self._find(params["payment_intent"], "payment_intent", param="payment_intent")
            if intent["status"] != "succeeded" or not intent["latest_charge"]:
                raise StripeApiError(
                    400,
                    f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                    param="payment_intent",
                )
            charge = self._store[intent["latest_charge"]]
        else:
            raise StripeApiError(
                400,
                "Missing required param: charge or payment_intent.",
                code="parameter_missing",
                param="charge",
            )
        reason = params.get("reason")
        if reason is not None and reason not in ("duplicate", "fraudulent", "requested_by_customer"):
            raise StripeApiError(400, f"Invalid reason: {reason}", param="reason")
        metadata = _as_metadata(params.get("metadata", {}))
        if charge["refunded"]:
            raise StripeApiError(
                400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if charge["disputed"]:
            raise StripeApiError(
                400,
                f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                code="charge_disputed",
            )
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        amount = _as_int(params["amount"], "amount") if "amount" in params else remaining
        if not 0 < amount <= remaining:
            raise StripeApiError(
                400,
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                code="amount_too_large" if amount > 0 else None,
                param="amount",
            )
        refund_id = self.refund_charge(charge["id"], amount)
        refund = self._store[refund_id]
        refund.update(reason=reason, metadata=metadata)
        for listed in charge["refunds"]["data"]:
            if listed["id"] == refund_id:
                listed.update(reason=reason, metadata=dict(metadata))
        return refund_id

    def _create_portal_session(self, params: dict[str, Any]) -> str:
        _check_known(params, {"customer", "return_url", "configuration", "flow_data", "locale"})
        customer = self._find(_require(params, "customer"), "customer", param="customer")
        session_id = self._id("bps")
        session = {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": "bpc_test_default",
            "created": self.now(),
            "customer": customer["id"],
            "flow": None,
            "livemode": False,
            "locale": params.get("locale"),
            "on_behalf_of": None,
            "return_url": params.get("return_url"),
            "url": f"{self.url}/p/session/{session_id}",
        }
        return self._put(session)["id"]  # type: ignore[no-any-return]

    def _update_subscription(self, ref: str, params: dict[str, Any]) -> str:
        _check_known(
            params,
            {
                "items",
                "proration_behavior",
                "payment_behavior",
                "cancel_at_period_end",
                "metadata",
                "proration_date",
                "cancel_at",
                "description",
            },
        )
        subscription = self._find(ref, "subscription")
        ended = subscription["status"] in ("canceled", "incomplete_expired")
        if ended and set(params) - {"metadata", "cancellation_details"}:
            raise StripeApiError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        payment_behavior = params.get("payment_behavior", "allow_incomplete")
        if payment_behavior not in (
            "allow_incomplete",
            "default_incomplete",
            "error_if_incomplete",
            "pending_if_incomplete",
        ):
            raise StripeApiError(
                400, f"Invalid payment_behavior: {payment_behavior}", param="payment_behavior"
            )
        proration = params.get("proration_behavior", "create_prorations")
        if proration not in ("create_prorations", "none", "always_invoice"):
            raise StripeApiError(400, f"Invalid proration_behavior: {proration}", param="proration_behavior")
        if payment_behavior == "pending_if_incomplete":
            unsupported = set(params) - {"items", "proration_behavior", "payment_behavior", "proration_date"}
            if unsupported:
                name = sorted(unsupported)[0]
                raise StripeApiError(
                    400,
                    f"When `payment_behavior` is `pending_if_incomplete`, you cannot pass `{name}`.",
                    param=name,
                )
        if "metadata" in params:
            subscription["metadata"].update(_as_metadata(params["metadata"]))
            subscription["metadata"] = {k: v for k, v in subscription["metadata"].items() if v != ""}
        if "cancel_at_period_end" in params:
            cancel = _as_bool(params["cancel_at_period_end"], "cancel_at_period_end")
            item = subscription["items"]["data"][0]
            subscription["cancel_at_period_end"] = cancel
            subscription["cancel_at"] = item["current_period_end"] if cancel else None
            subscription["canceled_at"] = self.now() if cancel else None
            subscription["cancellation_details"] = {
                "comment": None,
                "feedback": None,
                "reason": "cancellation_requested" if cancel else None,
            }
        if "items" in params:
            items = params["items"]
            if not isinstance(items, list) or len(items) != 1:
                raise StripeApiError(400, "This test server changes exactly one item.", param="items")
            _check_known(items[0], {"id", "price", "quantity", "deleted"}, "items[0]")
            item = subscription["items"]["data"][0]
            if items[0].get("id") != item["id"]:
                raise StripeApiError(
                    400,
                    f"No such subscription item: '{items[0].get('id')}'",
                    code="resource_missing",
                    param="items[0][id]",
                )
            price = self._find(
                _require(items[0], "price", "items[0][price]"), "price", param="items[0][price]"
            )
            if price["recurring"] is None:
                raise StripeApiError(400, "The price specified is not recurring.", param="items[0][price]")
            if price["currency"] != subscription["currency"]:
                raise StripeApiError(
                    400, "You cannot combine currencies on a single customer.", param="items[0][price]"
                )
            self._change_price(subscription, price, proration, payment_behavior)
        self._sync_legacy(subscription)
        return ref

    def _change_price(
        self, subscription: dict[str, Any], price: dict[str, Any], proration: str, payment_behavior: str
    ) -> None:
        item = subscription["items"]["data"][0]
        old = item["price"]
        now = self.now()
        start, end = item["current_period_start"], item["current_period_end"]
        remaining = max(0.0, min(1.0, (end - now) / max(1, end - start)))
        lines = []
        if proration != "none" and subscription["status"] != "trialing":
            lines = [
                self._line(
                    f"Unused time on {self._product_name(old)} after {self._date(now)}",
                    -round(old["unit_amount"] * remaining),
                    subscription,
                    item,
                    old,
                    now,
                    end,
                    proration=True,
                ),
                self._line(
                    f"Remaining time on {self._product_name(price)} after {self._date(now)}",
                    round(price["unit_amount"] * remaining),
                    subscription,
                    item,
                    price,
                    now,
                    end,
                    proration=True,
                ),
            ]
        customer = subscription["customer"]
        if proration == "always_invoice" and lines:
            failing = self._private[customer].get("card_failing", False)
            if failing and payment_behavior == "error_if_incomplete":
                raise StripeApiError(
                    402,
                    "Your card was declined.",
                    type="card_error",
                    code="card_declined",
                    extra={"decline_code": "generic_decline"},
                )
            invoice = self._new_invoice(customer, subscription, lines, "subscription_update", None)
            if failing and payment_behavior == "pending_if_incomplete":
                self._attempt(invoice, succeed=False, touch_subscription=False)
                subscription["pending_update"] = {
                    "billing_cycle_anchor": None,
                    "expires_at": now + 23 * 3600,
                    "subscription_items": [{**copy.deepcopy(item), "price": copy.deepcopy(price)}],
                    "trial_end": None,
                    "trial_from_plan": None,
                }
                subscription["latest_invoice"] = invoice["id"]
                return
            self._set_item_price(item, price)
            subscription["latest_invoice"] = invoice["id"]
            self._attempt(invoice, succeed=not failing)
        else:
            self._set_item_price(item, price)
            if lines:
                self._pending_items.setdefault(customer, []).extend(lines)
        subscription["pending_update"] = None

    def _set_item_price(self, item: dict[str, Any], price: dict[str, Any]) -> None:
        item["price"] = copy.deepcopy(price)
        item["plan"] = self._plan(price)

    def _plan(self, price: dict[str, Any]) -> dict[str, Any]:
        recurring = price["recurring"] or {}
        return {
            "id": price["id"],
            "object": "plan",
            "active": price["active"],
            "amount": price["unit_amount"],
            "amount_decimal": str(price["unit_amount"]),
            "billing_scheme": "per_unit",
            "created": price["created"],
            "currency": price["currency"],
            "interval": recurring.get("interval"),
            "interval_count": recurring.get("interval_count", 1),
            "livemode": False,
            "metadata": {},
            "nickname": price["nickname"],
            "product": price["product"],
            "usage_type": "licensed",
        }

    def _period_description(self, price: dict[str, Any]) -> str:
        interval = price["recurring"]["interval"]
        return f"1 x {self._product_name(price)} (at {price['unit_amount']} / {interval})"

    def _product_name(self, price: dict[str, Any]) -> str:
        return str(self._store[price["product"]]["name"])

    @staticmethod
    def _date(moment: int) -> str:
        return datetime.fromtimestamp(moment, UTC).strftime("%d %b %Y")

    # ------------------------------------------------------------------------------ objects of payments

    def _line(
        self,
        description: str,
        amount: int,
        subscription: dict[str, Any] | None,
        item: dict[str, Any] | None,
        price: dict[str, Any] | None,
        start: int,
        end: int,
        *,
        proration: bool = False,
    ) -> dict[str, Any]:
        parent = None
        if subscription is not None:
            parent = {
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": f"ii_{secrets.token_hex(12)}" if proration else None,
                    "proration": proration,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription["id"],
                    "subscription_item": item["id"] if item else None,
                },
            }
        return {
            "id": f"il_{secrets.token_hex(12)}",
            "object": "line_item",
            "amount": amount,
            "currency": price["currency"] if price else (subscription or {}).get("currency", "usd"),
            "description": description,
            "discount_amounts": [],
            "discountable": not proration,
            "discounts": [],
            "invoice": None,
            "livemode": False,
            "metadata": {},
            "parent": parent,
            "period": {"start": start, "end": end},
            "pretax_credit_amounts": [],
            "pricing": (
                {
                    "type": "price_details",
                    "price_details": {"price": price["id"], "product": price["product"]},
                    "unit_amount_decimal": str(price["unit_amount"]),
                }
                if price
                else None
            ),
            "quantity": 1,
            "subtotal": amount,
            "taxes": [],
        }

    def _tax(self, amount: int, tax_rate: str | None) -> tuple[int, list[dict[str, Any]]]:
        """(tax amount, total_taxes entries) for a taxable amount and an optional tax rate id."""
        if tax_rate is None:
            return 0, []
        rate = self._store[tax_rate]
        percentage = float(rate["percentage"])
        if rate["inclusive"]:
            tax = amount - round(amount / (1 + percentage / 100))
            taxable = amount - tax
        else:
            tax = round(amount * percentage / 100)
            taxable = amount
        entry = {
            "amount": tax,
            "tax_behavior": "inclusive" if rate["inclusive"] else "exclusive",
            "tax_rate_details": {"tax_rate": tax_rate},
            "taxability_reason": "standard_rated",
            "taxable_amount": taxable,
            "type": "tax_rate_details",
        }
        return tax, [entry]

    def _new_invoice(
        self,
        customer_id: str,
        subscription: dict[str, Any] | None,
        lines: list[dict[str, Any]],
        billing_reason: str,
        tax_rate: str | None,
    ) -> dict[str, Any]:
        customer = self._store[customer_id]
        invoice_id = self._id("in")
        now = self.now()
        subtotal = sum(line["amount"] for line in lines)
        tax, total_taxes = self._tax(max(subtotal, 0), tax_rate)
        inclusive = tax_rate is not None and self._store[tax_rate]["inclusive"]
        total = subtotal if inclusive else subtotal + tax
        for line in lines:
            line["invoice"] = invoice_id
            if tax_rate is not None and line["amount"] > 0:
                line["taxes"] = self._tax(line["amount"], tax_rate)[1]
        number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
        customer["next_invoice_sequence"] += 1
        invoice = {
            "id": invoice_id,
            "object": "invoice",
            "account_country": "US",
            "account_name": "Cinema Online (test)",
            "amount_due": max(total, 0),
            "amount_overpaid": 0,
            "amount_paid": 0,
            "amount_remaining": max(total, 0),
            "amount_shipping": 0,
            "attempt_count": 0,
            "attempted": False,
            "auto_advance": True,
            "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
            "billing_reason": billing_reason,
            "collection_method": "charge_automatically",
            "created": now,
            "currency": lines[0]["currency"] if lines else "usd",
            "customer": customer_id,
            "customer_email": customer["email"],
            "customer_name": customer["name"],
            "description": None,
            "discounts": [],
            "due_date": None,
            "effective_at": now,
            "ending_balance": 0,
            "hosted_invoice_url": f"{self.url}/i/{invoice_id}",
            "invoice_pdf": f"{self.url}/i/{invoice_id}/pdf",
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "lines": {**_list(lines[:10], f"/v1/invoices/{invoice_id}/lines"), "has_more": len(lines) > 10},
            "livemode": False,
            "metadata": {},
            "next_payment_attempt": None,
            "number": number,
            "parent": (
                {
                    "type": "subscription_details",
                    "quote_details": None,
                    "subscription_details": {
                        "metadata": dict(subscription["metadata"]),
                        "subscription": subscription["id"],
                    },
                }
                if subscription is not None
                else None
            ),
            "period_end": now,
            "period_start": now,
            "receipt_number": None,
            "starting_balance": 0,
            "status": "open",
            "status_transitions": {
                "finalized_at": now,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal - tax if inclusive else subtotal,
            "total": total,
            "total_discount_amounts": [],
            "total_excluding_tax": total - tax,
            "total_pretax_credit_amounts": [],
            "total_taxes": total_taxes,
            "webhooks_delivered_at": None,
        }
        self._put(invoice)
        self._private[invoice_id]["payments"] = _list([], "/v1/invoice_payments")
        self._private[invoice_id]["lines"] = lines  # the embedded list holds the first 10, like Stripe
        if total <= 0:
            self._mark_paid(invoice, None)
        self._sync_legacy_invoice(invoice)
        return invoice

    def _payment_intent(
        self,
        customer: str | None,
        amount: int,
        currency: str,
        metadata: dict[str, str],
        description: str | None,
    ) -> dict[str, Any]:
        payment_id = self._id("pi")
        intent = {
            "id": payment_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "canceled_at": None,
            "capture_method": "automatic",
            "client_secret": f"{payment_id}_secret_{secrets.token_hex(12)}",
            "confirmation_method": "automatic",
            "created": self.now(),
            "currency": currency,
            "customer": customer,
            "description": description,
            "last_payment_error": None,
            "latest_charge": None,
            "livemode": False,
            "metadata": metadata,
            "payment_method": f"pm_{secrets.token_hex(12)}",
            "payment_method_types": ["card"],
            "receipt_email": None,
            "status": "requires_payment_method",
        }
        return self._put(intent)

    def _charge(self, intent: dict[str, Any], *, succeed: bool) -> dict[str, Any]:
        charge_id = self._id("ch")
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if succeed else 0,
            "amount_refunded": 0,
            "balance_transaction": f"txn_{secrets.token_hex(12)}" if succeed else None,
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "captured": succeed,
            "created": self.now(),
            "currency": intent["currency"],
            "customer": intent["customer"],
            "description": intent["description"],
            "disputed": False,
            "failure_code": None if succeed else "card_declined",
            "failure_message": None if succeed else "Your card was declined.",
            "livemode": False,
            "metadata": dict(intent["metadata"]),
            "outcome": {
                "network_status": "approved_by_network" if succeed else "declined_by_network",
                "reason": None if succeed else "generic_decline",
                "risk_level": "normal",
                "seller_message": "Payment complete."
                if succeed
                else "The bank did not return any further details.",
                "type": "authorized" if succeed else "issuer_declined",
            },
            "paid": succeed,
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "receipt_url": f"{self.url}/receipts/{charge_id}",
            "refunded": False,
            "refunds": _list([], f"/v1/charges/{charge_id}/refunds"),
            "status": "succeeded" if succeed else "failed",
        }
        self._put(charge)
        intent["latest_charge"] = charge_id
        if succeed:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            intent["last_payment_error"] = None
        else:
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {
                "charge": charge_id,
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "type": "card_error",
            }
        return charge

    def _attempt(
        self, invoice: dict[str, Any], *, succeed: bool, touch_subscription: bool = True
    ) -> str | None:
        """One payment attempt of an open invoice; the charge id (None when nothing is due)."""
        if invoice["status"] == "paid" or invoice["amount_due"] <= 0:
            return None
        payments = self._private[invoice["id"]]["payments"]
        intent_id = self._private[invoice["id"]].get("payment_intent")
        if intent_id is None:
            intent = self._payment_intent(
                invoice["customer"],
                invoice["amount_due"],
                invoice["currency"],
                {},
                f"Invoice {invoice['number']}",
            )
            intent_id = self._private[invoice["id"]]["payment_intent"] = intent["id"]
            payments["data"].append(
                {
                    "id": f"inpay_{secrets.token_hex(12)}",
                    "object": "invoice_payment",
                    "amount_paid": None,
                    "amount_requested": invoice["amount_due"],
                    "created": self.now(),
                    "currency": invoice["currency"],
                    "invoice": invoice["id"],
                    "is_default": True,
                    "livemode": False,
                    "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
                    "status": "open",
                    "status_transitions": {"canceled_at": None, "paid_at": None},
                }
            )
            payments["total_count"] = len(payments["data"])
        intent = self._store[intent_id]
        charge = self._charge(intent, succeed=succeed)
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        subscription = self._invoice_subscription(invoice)
        if succeed:
            self._mark_paid(invoice, intent_id)
            if (
                touch_subscription
                and subscription is not None
                and subscription["status"] in ("past_due", "unpaid", "incomplete", "active", "trialing")
            ):
                subscription["status"] = "active"
        else:
            invoice["next_payment_attempt"] = self.now() + 3 * 86400
            if (
                touch_subscription
                and subscription is not None
                and subscription["status"] in ("active", "trialing")
            ):
                subscription["status"] = "past_due"
        if subscription is not None:
            self._sync_legacy(subscription)
        self._sync_legacy_invoice(invoice)
        return charge["id"]  # type: ignore[no-any-return]

    def _mark_paid(self, invoice: dict[str, Any], intent_id: str | None) -> None:
        now = self.now()
        invoice["status"] = "paid"
        invoice["amount_paid"] = invoice["amount_due"]
        invoice["amount_remaining"] = 0
        invoice["next_payment_attempt"] = None
        invoice["status_transitions"]["paid_at"] = now
        for payment in self._private[invoice["id"]]["payments"]["data"]:
            if payment["payment"]["payment_intent"] == intent_id:
                payment.update(status="paid", amount_paid=invoice["amount_due"])
                payment["status_transitions"]["paid_at"] = now

    def _invoice_subscription(self, invoice: dict[str, Any]) -> dict[str, Any] | None:
        parent = invoice.get("parent") or {}
        details = parent.get("subscription_details") or {}
        ref = details.get("subscription")
        return self._store.get(ref) if ref else None

    def _sync_legacy(self, subscription: dict[str, Any]) -> None:
        if self.legacy_fields:
            item = subscription["items"]["data"][0]
            subscription["current_period_start"] = item["current_period_start"]
            subscription["current_period_end"] = item["current_period_end"]
            subscription["plan"] = copy.deepcopy(item["plan"])

    def _sync_legacy_invoice(self, invoice: dict[str, Any]) -> None:
        if self.legacy_fields:
            subscription = self._invoice_subscription(invoice)
            intent_id = self._private[invoice["id"]].get("payment_intent")
            invoice["subscription"] = subscription["id"] if subscription else None
            invoice["payment_intent"] = intent_id
            invoice["charge"] = self._store[intent_id]["latest_charge"] if intent_id else None
            invoice["paid"] = invoice["status"] == "paid"
            invoice["tax"] = sum(t["amount"] for t in invoice["total_taxes"]) or None
            invoice["total_tax_amounts"] = [
                {
                    "amount": t["amount"],
                    "inclusive": t["tax_behavior"] == "inclusive",
                    "tax_rate": t["tax_rate_details"]["tax_rate"],
                    "taxability_reason": t["taxability_reason"],
                    "taxable_amount": t["taxable_amount"],
                }
                for t in invoice["total_taxes"]
            ]

    def _new_subscription(
        self, customer: str, price: dict[str, Any], trial_days: int, metadata: dict[str, str]
    ) -> dict[str, Any]:
        now = self.now()
        subscription_id = self._id("sub")
        recurring = price["recurring"]
        trial_end = now + trial_days * 86400 if trial_days else None
        end = trial_end or _interval_end(now, recurring["interval"], recurring["interval_count"])
        item: dict[str, Any] = {
            "id": self._id("si"),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": now,
            "current_period_end": end,
            "current_period_start": now,
            "discounts": [],
            "metadata": {},
            "quantity": 1,
            "subscription": subscription_id,
            "tax_rates": [],
        }
        self._set_item_price(item, price)
        subscription: dict[str, Any] = {
            "id": subscription_id,
            "object": "subscription",
            "application": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": end if trial_days else now,
            "billing_mode": {"flexible": None, "type": "classic"},
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": price["currency"],
            "customer": customer,
            "days_until_due": None,
            "default_payment_method": f"pm_{secrets.token_hex(12)}",
            "description": None,
            "discounts": [],
            "ended_at": None,
            "items": _list([item], f"/v1/subscription_items?subscription={subscription_id}"),
            "latest_invoice": None,
            "livemode": False,
            "metadata": metadata,
            "pause_collection": None,
            "pending_update": None,
            "schedule": None,
            "start_date": now,
            "status": "trialing" if trial_days else "active",
            "test_clock": None,
            "trial_end": trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": now if trial_days else None,
        }
        self._put(subscription)
        self._store[item["id"]] = item  # an alias: the subscription's list holds this very dict
        self._sync_legacy(subscription)
        return subscription

    def _ensure_customer(self, session: dict[str, Any]) -> str:
        if session["customer"]:
            return session["customer"]  # type: ignore[no-any-return]
        customer = self._create_customer(
            {"email": session.get("customer_email")} if session.get("customer_email") else {}
        )
        session["customer"] = customer
        return customer

    # ------------------------------------------------------------------------------- test-side helpers

    def add_tax_rate(
        self, display_name: str = "VAT", percentage: float = 20.0, inclusive: bool = False
    ) -> str:
        """A tax rate; pass its id as `tax_rate=` to complete_checkout / advance_period / add_invoice."""
        with self._lock:
            rate = {
                "id": self._id("txr"),
                "object": "tax_rate",
                "active": True,
                "country": "GB",
                "created": self.now(),
                "description": None,
                "display_name": display_name,
                "effective_percentage": percentage,
                "inclusive": inclusive,
                "jurisdiction": "GB",
                "jurisdiction_level": "country",
                "livemode": False,
                "metadata": {},
                "percentage": percentage,
                "rate_type": "percentage",
                "state": None,
                "tax_type": "vat",
            }
            return self._put(rate)["id"]  # type: ignore[no-any-return]

    def set_card_failing(self, customer_id: str, failing: bool = True) -> None:
        """Make that customer's next payments decline (or succeed again)."""
        with self._lock:
            self._find(customer_id, "customer")
            self._private[customer_id]["card_failing"] = failing

    def complete_checkout(
        self, session_id: str, *, tax_rate: str | None = None, paid: bool = True
    ) -> dict[str, str | None]:
        """What Stripe does when the customer completes the hosted checkout (see the module docstring)."""
        with self._lock:
            session = self._find(session_id, "checkout.session")
            if session["status"] != "open":
                raise ValueError(f"checkout session {session_id} is {session['status']}")
            private = self._private[session_id]
            customer = self._ensure_customer(session)
            line = private["lines"][0]
            price = self._store[line["price"]]
            result: dict[str, str | None] = {
                "session": session_id,
                "customer": customer,
                "subscription": None,
                "invoice": None,
                "payment_intent": None,
                "charge": None,
            }
            session.update(status="complete", url=None)
            session["customer_details"] = {
                "address": None,
                "email": self._store[customer]["email"],
                "name": self._store[customer]["name"],
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            if session["mode"] == "subscription":
                trial_days = private["trial_days"]
                subscription = self._new_subscription(
                    customer, price, trial_days, private["subscription_metadata"]
                )
                item = subscription["items"]["data"][0]
                amount = 0 if trial_days else line["amount"]
                description = (
                    f"Trial period for {self._product_name(price)}"
                    if trial_days
                    else self._period_description(price)
                )
                invoice = self._new_invoice(
                    customer,
                    subscription,
                    [
                        self._line(
                            description,
                            amount,
                            subscription,
                            item,
                            price,
                            item["current_period_start"],
                            item["current_period_end"],
                        )
                    ],
                    "subscription_create",
                    tax_rate,
                )
                subscription["latest_invoice"] = invoice["id"]
                result.update(subscription=subscription["id"], invoice=invoice["id"])
                if invoice["amount_due"] > 0:
                    result["charge"] = self._attempt(invoice, succeed=True)
                    result["payment_intent"] = self._private[invoice["id"]]["payment_intent"]
                session.update(subscription=subscription["id"], invoice=invoice["id"])
                session["payment_status"] = "paid" if amount > 0 else "no_payment_required"
                tax = sum(t["amount"] for t in invoice["total_taxes"])
                session["amount_subtotal"] = invoice["subtotal"]
                session["amount_total"] = invoice["total"]
                session["total_details"]["amount_tax"] = tax
            else:
                tax, _ = self._tax(line["amount"], tax_rate)
                inclusive = tax_rate is not None and self._store[tax_rate]["inclusive"]
                total = line["amount"] if inclusive else line["amount"] + tax
                session["amount_total"] = total
                session["total_details"]["amount_tax"] = tax
                intent = self._payment_intent(
                    customer,
                    total,
                    session["currency"],
                    dict(private["payment_metadata"]),
                    private["description"],
                )
                session["payment_intent"] = intent["id"]
                result["payment_intent"] = intent["id"]
                if paid:
                    result["charge"] = self._charge(intent, succeed=True)["id"]
                    session["payment_status"] = "paid"
                else:
                    intent["status"] = "processing"
            return result

    def settle_checkout(self, session_id: str, *, succeeded: bool = True) -> str:
        """An async payment (complete + unpaid checkout) clears or fails; the charge id."""
        with self._lock:
            session = self._find(session_id, "checkout.session")
            intent = self._store[session["payment_intent"]]
            charge = self._charge(intent, succeed=succeeded)
            session["payment_status"] = "paid" if succeeded else "unpaid"
            return charge["id"]  # type: ignore[no-any-return]

    def expire_checkout(self, session_id: str) -> None:
        """The session expires (the customer left, or 24 hours passed)."""
        with self._lock:
            session = self._find(session_id, "checkout.session")
            session.update(status="expired", url=None)

    def set_subscription(self, sub_id: str, **fields: Any) -> None:
        """Set subscription fields as-is (period fields go to the item; price= swaps the item's price)."""
        with self._lock:
            subscription = self._find(sub_id, "subscription")
            item = subscription["items"]["data"][0]
            for name, value in fields.items():
                if name in ("current_period_start", "current_period_end"):
                    item[name] = value
                elif name == "price":
                    self._set_item_price(item, self._find(value, "price"))
                else:
                    subscription[name] = value
            self._sync_legacy(subscription)

    def advance_period(
        self, sub_id: str, *, paid: bool = True, tax_rate: str | None = None
    ) -> dict[str, str | None]:
        """The renewal at the end of the current period (see the module docstring)."""
        with self._lock:
            subscription = self._find(sub_id, "subscription")
            item = subscription["items"]["data"][0]
            result: dict[str, str | None] = {
                "subscription": sub_id,
                "invoice": None,
                "payment_intent": None,
                "charge": None,
            }
            if subscription["status"] in ("canceled", "incomplete_expired"):
                raise ValueError(f"subscription {sub_id} is {subscription['status']}")
            if subscription["cancel_at_period_end"]:
                end = item["current_period_end"]
                subscription.update(
                    status="canceled", ended_at=end, canceled_at=subscription["canceled_at"] or end
                )
                self._sync_legacy(subscription)
                return result
            price = item["price"]
            start = item["current_period_end"]
            end = _interval_end(start, price["recurring"]["interval"], price["recurring"]["interval_count"])
            item["current_period_start"], item["current_period_end"] = start, end
            if subscription["status"] == "trialing":
                subscription["status"] = "active"
            lines = [
                self._line(
                    self._period_description(price),
                    price["unit_amount"],
                    subscription,
                    item,
                    price,
                    start,
                    end,
                ),
                *self._pending_items.pop(subscription["customer"], []),
            ]
            invoice = self._new_invoice(
                subscription["customer"], subscription, lines, "subscription_cycle", tax_rate
            )
            invoice["period_start"], invoice["period_end"] = start, start
            subscription["latest_invoice"] = invoice["id"]
            failing = not paid or self._private[subscription["customer"]].get("card_failing", False)
            result["invoice"] = invoice["id"]
            result["charge"] = self._attempt(invoice, succeed=not failing)
            result["payment_intent"] = self._private[invoice["id"]].get("payment_intent")
            self._sync_legacy(subscription)
            return result

    def add_invoice(
        self,
        customer_or_subscription: str,
        *,
        amount: int,
        description: str = "Invoice item",
        paid: bool = True,
        billing_reason: str = "manual",
        tax_rate: str | None = None,
        more_lines: list[tuple[str, int]] | None = None,
    ) -> str:
        """A finalized invoice (one line, plus `more_lines` (description, amount)), paid (charge
        succeeded) or left open after a failed attempt."""
        with self._lock:
            subscription = None
            customer = customer_or_subscription
            if customer_or_subscription.startswith("sub_"):
                subscription = self._find(customer_or_subscription, "subscription")
                customer = subscription["customer"]
            else:
                self._find(customer, "customer")
            item = subscription["items"]["data"][0] if subscription else None
            price = item["price"] if item else None
            now = self.now()
            lines = [
                self._line(text, value, subscription, item, price, now, now)
                for text, value in [(description, amount), *(more_lines or [])]
            ]
            invoice = self._new_invoice(customer, subscription, lines, billing_reason, tax_rate)
            self._attempt(invoice, succeed=paid)
            return invoice["id"]  # type: ignore[no-any-return]

    def fail_invoice(self, invoice_id: str) -> str | None:
        """One more failed payment attempt on an open invoice; its subscription goes past_due."""
        with self._lock:
            invoice = self._find(invoice_id, "invoice")
            if invoice["status"] != "open":
                raise ValueError(f"invoice {invoice_id} is {invoice['status']}")
            return self._attempt(invoice, succeed=False)

    def pay_invoice(self, invoice_id: str) -> str | None:
        """A successful attempt on an open invoice; its subscription becomes active again."""
        with self._lock:
            invoice = self._find(invoice_id, "invoice")
            if invoice["status"] != "open":
                raise ValueError(f"invoice {invoice_id} is {invoice['status']}")
            return self._attempt(invoice, succeed=True)

    def void_invoice(self, invoice_id: str) -> None:
        """Void an open invoice."""
        with self._lock:
            invoice = self._find(invoice_id, "invoice")
            invoice["status"] = "void"
            invoice["status_transitions"]["voided_at"] = self.now()
            self._sync_legacy_invoice(invoice)

    def mark_uncollectible(self, invoice_id: str) -> None:
        """Mark an open invoice uncollectible."""
        with self._lock:
            invoice = self._find(invoice_id, "invoice")
            invoice["status"] = "uncollectible"
            invoice["status_transitions"]["marked_uncollectible_at"] = self.now()
            self._sync_legacy_invoice(invoice)

    def cancel_subscription(self, sub_id: str) -> None:
        """Cancel now (status canceled, ended_at/canceled_at now)."""
        with self._lock:
            subscription = self._find(sub_id, "subscription")
            now = self.now()
            subscription.update(
                status="canceled", ended_at=now, canceled_at=subscription["canceled_at"] or now
            )
            subscription["cancellation_details"]["reason"] = "cancellation_requested"
            self._sync_legacy(subscription)

    def refund_charge(self, charge_id: str, amount: int | None = None) -> str:
        """Refund (all that remains, or `amount`); the refund id."""
        with self._lock:
            charge = self._find(charge_id, "charge")
            remaining = charge["amount_captured"] - charge["amount_refunded"]
            amount = remaining if amount is None else amount
            if not 0 < amount <= remaining:
                raise ValueError(f"cannot refund {amount} of {remaining}")
            refund = {
                "id": self._id("re"),
                "object": "refund",
                "amount": amount,
                "charge": charge_id,
                "created": self.now(),
                "currency": charge["currency"],
                "metadata": {},
                "payment_intent": charge["payment_intent"],
                "reason": "requested_by_customer",
                "status": "succeeded",
            }
            self._put(refund)
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
            charge["refunds"]["data"].insert(0, copy.deepcopy(refund))
            charge["refunds"]["total_count"] = len(charge["refunds"]["data"])
            return refund["id"]  # type: ignore[no-any-return]

    def dispute_charge(self, charge_id: str, reason: str = "fraudulent") -> str:
        """The cardholder disputes the charge; the dispute id (charge.disputed becomes true)."""
        with self._lock:
            charge = self._find(charge_id, "charge")
            dispute = {
                "id": self._id("dp"),
                "object": "dispute",
                "amount": charge["amount"],
                "balance_transactions": [],
                "charge": charge_id,
                "created": self.now(),
                "currency": charge["currency"],
                "evidence_details": {
                    "due_by": self.now() + 7 * 86400,
                    "has_evidence": False,
                    "past_due": False,
                    "submission_count": 0,
                },
                "is_charge_refundable": False,
                "livemode": False,
                "metadata": {},
                "payment_intent": charge["payment_intent"],
                "reason": reason,
                "status": "needs_response",
            }
            self._put(dispute)
            charge["disputed"] = True
            return dispute["id"]  # type: ignore[no-any-return]

    def event(
        self, type: str, obj_or_id: str | dict[str, Any], *, previous_attributes: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A Stripe-shaped event about an object (its current state when given an id)."""
        with self._lock:
            obj = self._render(obj_or_id, []) if isinstance(obj_or_id, str) else copy.deepcopy(obj_or_id)
            data: dict[str, Any] = {"object": obj}
            if previous_attributes is not None:
                data["previous_attributes"] = previous_attributes
            return {
                "id": f"evt_{secrets.token_hex(12)}",
                "object": "event",
                "api_version": API_VERSION,
                "context": None,
                "created": self.now(),
                "data": data,
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": f"req_{secrets.token_hex(7)}", "idempotency_key": None},
                "type": type,
            }

    @staticmethod
    def sign(payload: bytes, secret: str, timestamp: int) -> str:
        """The Stripe-Signature header value for a body: t=<timestamp>,v1=<HMAC-SHA256 hex>."""
        signed = f"{timestamp}.".encode() + payload
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"

    def webhook(
        self, event: dict[str, Any], secret: str, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """(body, headers) of the webhook POST Stripe would make for this event."""
        body = json.dumps(event).encode()
        stamp = self.now() if timestamp is None else timestamp
        return body, {"stripe-signature": self.sign(body, secret, stamp), "content-type": "application/json"}


__all__ = ["API_VERSION", "Received", "StripeApiError", "StripeServer", "parse_form"]
