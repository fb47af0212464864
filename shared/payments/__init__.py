"""Payments: the provider contract (Stripe or the local sandbox), webhook events, idempotency."""
