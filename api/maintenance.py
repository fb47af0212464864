"""Maintenance endpoint group: housekeeping triggered by Vercel Cron."""

from mangum import Mangum

from shared.http.app import create_app
from shared.maintenance.routes import router

app = create_app(router, group="maintenance")
lambda_handler = Mangum(app, lifespan="off")
