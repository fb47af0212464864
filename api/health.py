"""Health endpoint group: GET /api/v1/health."""

from mangum import Mangum

from shared.health.routes import router
from shared.http.app import create_app

app = create_app(router, group="health")
lambda_handler = Mangum(app, lifespan="off")
