"""Payments endpoint group: plans and offers, subscriptions, purchases, invoices, webhooks, the sandbox."""

from mangum import Mangum

from shared.http.app import create_app
from shared.invoices.routes import router as invoices_router
from shared.payments.routes import router as webhooks_router
from shared.payments.sandbox_routes import router as sandbox_router
from shared.plans.routes import router as plans_router
from shared.purchases.routes import router as purchases_router
from shared.subscriptions.routes import router as subscriptions_router

app = create_app(
    plans_router,
    subscriptions_router,
    purchases_router,
    invoices_router,
    webhooks_router,
    sandbox_router,
    group="payments",
)
lambda_handler = Mangum(app, lifespan="off")
