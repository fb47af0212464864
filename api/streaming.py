"""Streaming endpoint group: stream sessions, signed manifests, keys and licences, positions and history."""

from mangum import Mangum

from shared.delivery.routes import router as delivery_router
from shared.http.app import create_app
from shared.licences.routes import router as licences_router
from shared.streaming.routes import router as sessions_router
from shared.watch.routes import router as watch_router

# Fixed paths (/sessions, /keys, /licence, /continue-watching, /history) before /{contentId}/... ones.
app = create_app(sessions_router, licences_router, watch_router, delivery_router, group="streaming")
lambda_handler = Mangum(app, lifespan="off")
