"""Dev endpoint group (local and test only): GET /api/v1/dev/outbox and friends."""

from mangum import Mangum

from shared.http.app import create_app
from shared.mail.routes import router

app = create_app(router, group="dev")
lambda_handler = Mangum(app, lifespan="off")
