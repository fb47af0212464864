"""Auth endpoint group: sign-up, login (+2FA), tokens, verification, reset, social login, two-factor."""

from mangum import Mangum

from shared.accounts.routes import router as accounts_router
from shared.http.app import create_app
from shared.mfa.routes import router as mfa_router
from shared.social.routes import router as social_router

app = create_app(accounts_router, mfa_router, social_router, group="auth")
lambda_handler = Mangum(app, lifespan="off")
