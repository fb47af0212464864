"""Media endpoint group: direct uploads of source files, sources, assets and subtitle tracks."""

from mangum import Mangum

from shared.http.app import create_app
from shared.media.routes import router

app = create_app(router, group="media")
lambda_handler = Mangum(app, lifespan="off")
