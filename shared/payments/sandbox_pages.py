"""HTML of the sandbox's checkout and portal pages: self-contained, escaped, readable on a phone.

No scripts and no external resources: one inline style block allowed by its hash in a strict
Content-Security-Policy; forms are plain POSTs that the routes answer with a 303 redirect.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit

from shared.plans.money import format_amount

Obj = dict[str, Any]

CSS = """
:root { color-scheme: light dark; --fg: #1b1b1f; --bg: #f6f6f8; --card: #fff; --muted: #5b5b66;
  --accent: #1d4ed8; --accent-fg: #fff; --line: #d6d6de; --warn: #8a4b00; --warn-bg: #fff4e0; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #ececf1; --bg: #121216; --card: #1d1d23; --muted: #a8a8b6; --accent: #8fb0ff;
    --accent-fg: #0b0b10; --line: #33333d; --warn: #ffd18a; --warn-bg: #3a2a10; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 34rem; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
p { margin: .5rem 0; }
.muted { color: var(--muted); }
.banner { background: var(--warn-bg); color: var(--warn); border-radius: .5rem; padding: .5rem .75rem;
  font-size: .9rem; margin: 0 0 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .75rem; padding: 1rem;
  margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
.total { font-size: 1.25rem; font-weight: 600; }
fieldset { border: 1px solid var(--line); border-radius: .5rem; padding: .75rem; margin: 1rem 0; }
legend { padding: 0 .25rem; }
label { display: block; font-size: .9rem; color: var(--muted); margin-top: .5rem; }
input { width: 100%; font: inherit; padding: .5rem; border: 1px solid var(--line); border-radius: .375rem;
  background: var(--bg); color: var(--fg); }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: .75rem; }
.actions { display: flex; flex-wrap: wrap; gap: .75rem; margin-top: 1rem; }
.actions form { flex: 1 1 12rem; margin: 0; }
button, .button { display: block; width: 100%; font: inherit; font-weight: 600; padding: .75rem 1rem;
  border-radius: .5rem; border: 1px solid var(--accent); cursor: pointer; text-align: center;
  text-decoration: none; min-height: 2.75rem; }
.primary { background: var(--accent); color: var(--accent-fg); }
.secondary { background: transparent; color: var(--accent); }
button:focus-visible, .button:focus-visible, a:focus-visible { outline: 3px solid var(--accent);
  outline-offset: 2px; }
a { color: var(--accent); }
@media (max-width: 24rem) { .row { grid-template-columns: 1fr; } }
"""

_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def headers(*redirect_targets: str) -> dict[str, str]:
    """Response headers of a sandbox page: a strict CSP, no caching, no referrer (the URL is a capability)."""
    # form-action also governs where a form's redirect may land, so the return URLs' origins are allowed.
    origins = sorted({origin for url in redirect_targets if (origin := _origin(url))})
    csp = "; ".join(
        [
            "default-src 'none'",
            f"style-src 'sha256-{_CSS_HASH}'",
            "img-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action " + " ".join(["'self'", *origins]),
        ]
    )
    return {
        "content-security-policy": csp,
        "cache-control": "no-store",
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
    }


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="robots" content="noindex">\n'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        '<p class="banner" role="note">Sandbox: a local test payment provider. No real money moves.</p>\n'
        f"{body}\n</main>\n</body>\n</html>\n"
    )


def _when(value: Any) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(int(value), UTC).strftime("%d %b %Y, %H:%M UTC")


def _link(url: str, text: str, css: str = "button secondary") -> str:
    if _origin(url) is None:  # only http(s) links, whatever was stored
        return ""
    return f'<a class="{css}" href="{escape(url)}">{escape(text)}</a>'


def _button_form(action: str, label: str, css: str) -> str:
    return (
        f'<form method="post" action="{escape(action)}">'
        f'<button type="submit" class="{css}">{escape(label)}</button></form>'
    )


def return_url(url: str, checkout_id: str) -> str:
    """A checkout return URL with Stripe's {CHECKOUT_SESSION_ID} placeholder filled in."""
    return url.replace("{CHECKOUT_SESSION_ID}", checkout_id)


def _per(interval: str) -> str:
    return "year" if interval == "year" else "month"


def checkout_page(session: Obj, *, action_base: str) -> str:
    """The hosted checkout: what is bought, what is due today, a test card, Pay and Decline."""
    line: Obj = session["line_items"]["data"][0]
    currency: str = session["currency"]
    due = format_amount(int(session["amount_total"]), currency)
    rows = [f"<dt>Item</dt><dd>{escape(str(line['description']))}</dd>"]
    note = ""
    if session["mode"] == "subscription":
        price: Obj = line["price"]
        recurring = format_amount(int(price["unit_amount"]), price["currency"])
        per = _per(price["recurring"]["interval"])
        rows.append(f"<dt>Price</dt><dd>{escape(recurring)} per {per}</dd>")
        trial = int(session.get("subscription_data", {}).get("trial_period_days") or 0)
        if trial:
            note = (
                f'<p id="trial-note">Free trial: {trial} day{"s" if trial != 1 else ""}. '
                f"Nothing is charged today; then {escape(recurring)} per {per} until you cancel.</p>"
            )
        else:
            note = f"<p>Renews every {per} at {escape(recurring)} until you cancel.</p>"
    rows.append(f'<dt>Due today</dt><dd class="total">{escape(due)}</dd>')
    heading = "Subscribe" if session["mode"] == "subscription" else "Pay"
    status = session["status"]
    if status != "open":
        if status == "complete":
            message = "This checkout is complete. Thank you!"
            link = _link(return_url(session["success_url"], session["id"]), "Continue", "button primary")
        else:
            message = "This checkout was declined or has expired. Nothing was charged."
            link = _link(return_url(session["cancel_url"], session["id"]), "Go back", "button secondary")
        body = (
            f"<h1>{heading}</h1>\n"
            f'<section class="card" aria-labelledby="summary-h"><h2 id="summary-h">Order summary</h2>'
            f"<dl>{''.join(rows)}</dl></section>\n"
            f'<p role="status">{escape(message)}</p>\n<div class="actions">{link}</div>'
        )
        return _page(f"{heading} — sandbox checkout", body)
    pay_label = f"Pay {due}" if int(session["amount_total"]) > 0 else "Start trial"
    body = (
        f"<h1>{heading}</h1>\n"
        f'<p class="muted">Cinema Online · expires {escape(_when(session.get("expires_at")))}</p>\n'
        f'<section class="card" aria-labelledby="summary-h"><h2 id="summary-h">Order summary</h2>'
        f"<dl>{''.join(rows)}</dl>{note}</section>\n"
        "<fieldset><legend>Test card (filled in for you)</legend>\n"
        '<label for="card-number">Card number</label>'
        '<input id="card-number" value="4242 4242 4242 4242" readonly autocomplete="off"'
        ' inputmode="numeric">\n'
        '<div class="row"><div><label for="card-expiry">Expiry (MM/YY)</label>'
        '<input id="card-expiry" value="12/34" readonly autocomplete="off"></div>'
        '<div><label for="card-cvc">CVC</label>'
        '<input id="card-cvc" value="123" readonly autocomplete="off"></div></div>\n'
        "</fieldset>\n"
        '<div class="actions">'
        + _button_form(f"{action_base}/complete", pay_label, "primary")
        + _button_form(f"{action_base}/decline", "Decline", "secondary")
        + "</div>"
    )
    return _page(f"{heading} — sandbox checkout", body)


def portal_page(*, customer: Obj, subscriptions: list[Obj], action_base: str, back_url: str) -> str:
    """The sandbox's billing portal: the card (working or declining) and each subscription's controls."""
    card: Obj = customer.get("sandbox_card") or {}
    fails = bool(card.get("fails"))
    card_state = "declines every charge" if fails else "works"
    toggle = "Make the card work again" if fails else "Make the card decline"
    parts = [
        "<h1>Billing</h1>",
        f'<p class="muted">{escape(str(customer.get("email") or ""))}</p>',
        '<section class="card" aria-labelledby="card-h"><h2 id="card-h">Payment method</h2>',
        f"<dl><dt>Card</dt><dd>{escape(str(card.get('brand', 'card')).title())} ending in "
        f"{escape(str(card.get('last4', '')))}</dd><dt>State</dt><dd>{card_state}</dd></dl>",
        '<div class="actions">'
        + _button_form(f"{action_base}/card", toggle, "secondary")
        + "</div></section>",
        '<section aria-labelledby="subs-h"><h2 id="subs-h">Subscriptions</h2>',
    ]
    if not subscriptions:
        parts.append("<p>No subscriptions.</p>")
    for subscription in subscriptions:
        price: Obj = subscription["items"]["data"][0]["price"]
        amount = format_amount(int(price["unit_amount"]), price["currency"])
        ref = str(subscription["id"])
        live = subscription["status"] in ("trialing", "active", "past_due")
        rows = [
            f"<dt>Plan</dt><dd>{escape(str(price.get('nickname') or ''))}</dd>",
            f"<dt>Price</dt><dd>{escape(amount)} per {_per(price['recurring']['interval'])}</dd>",
            f"<dt>Status</dt><dd>{escape(str(subscription['status']).replace('_', ' '))}</dd>",
            f"<dt>Period ends</dt><dd>{escape(_when(subscription.get('current_period_end')))}</dd>",
        ]
        if subscription.get("cancel_at_period_end") and live:
            rows.append("<dt>Cancellation</dt><dd>Ends at the period end</dd>")
        actions = ""
        if live:
            base = f"{action_base}/subscriptions/{ref}"
            cancel = (
                _button_form(f"{base}/resume", "Resume", "secondary")
                if subscription.get("cancel_at_period_end")
                else _button_form(f"{base}/cancel", "Cancel at period end", "secondary")
            )
            actions = (
                '<div class="actions">'
                + _button_form(f"{base}/renew-paid", "Renew now (paid)", "primary")
                + _button_form(f"{base}/renew-failed", "Renew now (card declined)", "secondary")
                + cancel
                + "</div>"
            )
        heading_id = f"sub-{escape(ref)}"
        parts.append(
            f'<article class="card" aria-labelledby="{heading_id}">'
            f'<h3 id="{heading_id}">{escape(ref)}</h3><dl>{"".join(rows)}</dl>{actions}</article>'
        )
    parts.append("</section>")
    parts.append(f'<div class="actions">{_link(back_url, "Back to Cinema Online")}</div>')
    return _page("Billing — sandbox portal", "\n".join(parts))
