"""Transcoding endpoint group: queue, follow and cancel transcode jobs."""

from mangum import Mangum

from shared.http.app import create_app
from shared.transcoding.routes import router

app = create_app(router, group="transcoding")
lambda_handler = Mangum(app, lifespan="off")
