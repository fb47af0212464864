"""Users endpoint group: the signed-in account, its profiles and devices, and user administration."""

from mangum import Mangum

from shared.accounts.me_routes import router as me_router
from shared.admin.routes import router as admin_router
from shared.http.app import create_app
from shared.profiles.routes import router as profiles_router

# Admin last: /api/v1/users/{user_id} must not shadow /api/v1/users/me.
app = create_app(me_router, profiles_router, admin_router, group="users")
lambda_handler = Mangum(app, lifespan="off")
