"""Catalog endpoint group: titles, seasons, episodes, people, browse rows, My List, ratings, management."""

from mangum import Mangum

from shared.catalog.routes import router as catalog_router
from shared.catalog_admin.routes import router as admin_router
from shared.http.app import create_app

app = create_app(catalog_router, admin_router, group="catalog")
lambda_handler = Mangum(app, lifespan="off")
