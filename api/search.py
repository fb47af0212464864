"""Search endpoint group: full-text, typo-tolerant search with facets, and autocomplete."""

from mangum import Mangum

from shared.http.app import create_app
from shared.search.routes import router

app = create_app(router, group="search")
lambda_handler = Mangum(app, lifespan="off")
