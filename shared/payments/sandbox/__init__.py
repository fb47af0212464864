"""The local sandbox payment provider: Stripe-shaped objects in our own database, a checkout page of our own.

With no Stripe account (`make dev`) commerce runs against this. It behaves like Stripe where commerce can
tell: customers, prices, hosted checkout sessions (completed or declined by a person on the page served by
shared/payments/sandbox_routes.py), subscriptions with trials, renewals, proration and cancellation at
period end, invoices, payment intents, charges, refunds and disputes. Every change records Stripe-shaped
events (rows of kind "event"); `deliver_pending` feeds them to shared.payments.events.process, the very
code Stripe's webhooks reach, and `tick` is the sandbox's clock (renewals, period ends, expiring sessions).

It is an external system: its writes commit on a connection of its own (outside the request pool), never
with the request that called it, exactly as a Stripe call cannot be rolled back; the events a call
records are delivered once the calling request commits, as Stripe's webhooks arrive after its answer.
Every write honours its idempotency key: the first answer is stored under the key (kind "idempotency")
and replayed.

Modules: store (rows, the sandbox's own connection), idempotency, events (recording) and delivery,
checkouts, subscriptions, renewals, price_changes, invoices, charges (payments, refunds, disputes),
cards, portal (signed links), tick (the clock), lookups (reads for pages), shapes (commerce's types),
provider (SandboxProvider). shared.payments.providers.sandbox re-exports what callers use.
"""
