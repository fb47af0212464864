"""A local stand-in for Google (OpenID Connect) and GitHub (OAuth 2), for driving authlib's client in tests.

One Starlette app, served by uvicorn on 127.0.0.1 (a free port) in a background thread, plays both:

Google-like OIDC
- GET  /.well-known/openid-configuration   discovery document (issuer = the server's URL)
- GET  /o/oauth2/v2/auth                   auto-approves `google_user`; redirects to redirect_uri?code&state
- POST /token                              checks client id/secret, redirect_uri and PKCE; RS256 id_token
- GET  /oauth2/v3/certs                    the JWKS
- GET  /v1/userinfo                        the user's claims (bearer access token)
GitHub-like OAuth 2
- GET  /login/oauth/authorize              auto-approves `github_user`
- POST /login/oauth/access_token           same checks; errors as 200 + {"error": ...} like GitHub
- GET  /api/user, /api/user/emails         the REST API (bearer token, User-Agent required)

Both authorization endpoints refuse requests without `code_challenge_method=S256` and a challenge, and a
redirect_uri other than the registered callback; both token endpoints refuse a code_verifier whose S256
does not match the stored challenge, a reused code, or a wrong client secret. Knobs (`nonce_override`,
`id_token_overrides`, `sign_with`, `deny_next`) make it misbehave on purpose. Every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support.threaded_server import ThreadedServer


@dataclass
class GoogleUser:
    """The Google account the consent page approves."""

    sub: str = field(default_factory=lambda: str(secrets.randbelow(10**20)))
    email: str = "someone@gmail.example"
    email_verified: bool = True
    name: str | None = "Test Person"


@dataclass
class GitHubUser:
    """The GitHub account the consent page approves."""

    id: int = field(default_factory=lambda: secrets.randbelow(10**9))
    login: str = "octo-tester"
    name: str | None = "Octo Tester"
    emails: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Received:
    """One request as the server got it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class _Grant:
    provider: str
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    scope: str
    user: Any
    expires_at: float


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthServer(ThreadedServer):
    """The fake providers; `redirect_base` is the origin our API registers its callbacks under."""

    def __init__(self, redirect_base: str = "http://testserver") -> None:
        self.redirect_base = redirect_base
        self.google_client_id = f"{secrets.token_hex(6)}.apps.googleusercontent.example"
        self.google_client_secret = secrets.token_urlsafe(24)
        self.github_client_id = f"Iv1.{secrets.token_hex(8)}"
        self.github_client_secret = secrets.token_hex(20)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        self.received: list[Received] = []
        self.google_user = GoogleUser()
        self.github_user = GitHubUser()
        self.nonce_override: str | None = None
        self.id_token_overrides: dict[str, Any] = {}
        self.deny_next: str | None = None
        self.sign_with: Any = None
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _Grant] = {}
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/o/oauth2/v2/auth", self._google_authorize),
                Route("/token", self._google_token, methods=["POST"]),
                Route("/oauth2/v3/certs", self._jwks),
                Route("/v1/userinfo", self._userinfo),
                Route("/login/oauth/authorize", self._github_authorize),
                Route("/login/oauth/access_token", self._github_token, methods=["POST"]),
                Route("/api/user", self._github_api_user),
                Route("/api/user/emails", self._github_api_emails),
            ]
        )
        super().__init__(app, label="the OAuth test server", thread_name="oauth-server")

    # Configuration for the API under test.

    def env(self) -> dict[str, str]:
        """Settings variables pointing the API at this server."""
        return {
            "GOOGLE_CLIENT_ID": self.google_client_id,
            "GOOGLE_CLIENT_SECRET": self.google_client_secret,
            "GOOGLE_DISCOVERY_URL": f"{self.url}/.well-known/openid-configuration",
            "GITHUB_CLIENT_ID": self.github_client_id,
            "GITHUB_CLIENT_SECRET": self.github_client_secret,
            "GITHUB_AUTHORIZE_URL": f"{self.url}/login/oauth/authorize",
            "GITHUB_TOKEN_URL": f"{self.url}/login/oauth/access_token",
            "GITHUB_API_URL": f"{self.url}/api",
        }

    def reset(self) -> None:
        """Forget requests, grants and knobs; fresh default users."""
        with self._lock:
            self.received.clear()
            self._grants.clear()
            self._tokens.clear()
        self.google_user = GoogleUser()
        self.github_user = GitHubUser()
        self.nonce_override = None
        self.id_token_overrides = {}
        self.deny_next = None
        self.sign_with = None

    def requests_to(self, path: str) -> list[Received]:
        """The recorded requests to one path."""
        return [request for request in list(self.received) if request.path == path]

    def sign(self, claims: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
        """An RS256 JWT signed with the published key (or another one)."""
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    # Plumbing.

    async def _record(self, request: Request) -> Received:
        form: dict[str, str] = {}
        if request.method == "POST":
            form = dict(parse_qsl((await request.body()).decode()))
        received = Received(
            request.method,
            request.url.path,
            dict(request.query_params),
            {key.lower(): value for key, value in request.headers.items()},
            form,
        )
        with self._lock:
            self.received.append(received)
        return received

    def _callback(self, provider: str) -> str:
        return f"{self.redirect_base}/api/v1/auth/oauth/{provider}/callback"

    async def _authorize(self, request: Request, provider: str, client_id: str, user: Any) -> Response:
        received = await self._record(request)
        query = received.query
        # Like real providers: a bad client or redirect_uri gets an error page, never a redirect.
        if query.get("client_id") != client_id:
            return PlainTextResponse("invalid_client", status_code=400)
        if query.get("redirect_uri") != self._callback(provider):
            return PlainTextResponse("redirect_uri_mismatch", status_code=400)
        target = query["redirect_uri"]
        state = query.get("state")

        def back(**params: str) -> Response:
            if state is not None:
                params["state"] = state
            return RedirectResponse(f"{target}?{urlencode(params)}", status_code=302)

        challenge = query.get("code_challenge", "")
        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if query.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
            return back(error="invalid_request", error_description="PKCE S256 is required")
        if provider == "google" and "openid" not in query.get("scope", "").split():
            return back(error="invalid_scope")
        if self.deny_next:
            error, self.deny_next = self.deny_next, None
            return back(error=error)
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = _Grant(
                provider=provider,
                client_id=client_id,
                redirect_uri=target,
                challenge=challenge,
                nonce=query.get("nonce"),
                scope=query.get("scope", ""),
                user=user,
                expires_at=time.time() + 60,
            )
        return back(code=code)

    def _check_token_request(
        self, received: Received, provider: str, client_id: str, client_secret: str
    ) -> tuple[_Grant | None, str]:
        form = received.form
        sent_id, sent_secret = form.get("client_id"), form.get("client_secret")
        basic = received.headers.get("authorization", "")
        if basic.lower().startswith("basic "):
            sent_id, _, sent_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if sent_id != client_id or sent_secret != client_secret:
            return None, "invalid_client"
        if form.get("grant_type") != "authorization_code":
            return None, "unsupported_grant_type"
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # a code works once
        if grant is None or grant.provider != provider or grant.expires_at < time.time():
            return None, "invalid_grant"
        if form.get("redirect_uri") != grant.redirect_uri:
            return None, "invalid_grant"
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(s256(verifier), grant.challenge):
            return None, "invalid_grant"  # PKCE: this verifier did not make the challenge
        return grant, ""

    def _bearer(self, request: Request) -> _Grant | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return None
        with self._lock:
            return self._tokens.get(token.strip())

    def _issue_access_token(self, grant: _Grant, prefix: str = "") -> str:
        token = prefix + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = grant
        return token

    # Google.

    async def _discovery(self, request: Request) -> Response:
        await self._record(request)
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/o/oauth2/v2/auth",
                "token_endpoint": f"{self.url}/token",
                "userinfo_endpoint": f"{self.url}/v1/userinfo",
                "jwks_uri": f"{self.url}/oauth2/v3/certs",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["plain", "S256"],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def _google_authorize(self, request: Request) -> Response:
        return await self._authorize(request, "google", self.google_client_id, self.google_user)

    async def _google_token(self, request: Request) -> Response:
        received = await self._record(request)
        grant, error = self._check_token_request(
            received, "google", self.google_client_id, self.google_client_secret
        )
        if grant is None:
            status = 401 if error == "invalid_client" else 400
            return JSONResponse({"error": error, "error_description": "refused"}, status_code=status)
        user: GoogleUser = grant.user
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "azp": self.google_client_id,
            "aud": self.google_client_id,
            "sub": user.sub,
            "email": user.email,
            "email_verified": user.email_verified,
            "iat": now,
            "exp": now + 3600,
        }
        if user.name:
            claims["name"] = user.name
        nonce = self.nonce_override if self.nonce_override is not None else grant.nonce
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(self.id_token_overrides)
        claims = {key: value for key, value in claims.items() if value is not None}
        return JSONResponse(
            {
                "access_token": self._issue_access_token(grant),
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": grant.scope,
                "id_token": self.sign(claims, key=self.sign_with),
            },
            headers={"cache-control": "no-store"},
        )

    async def _jwks(self, request: Request) -> Response:
        await self._record(request)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return JSONResponse({"keys": [public]})

    async def _userinfo(self, request: Request) -> Response:
        await self._record(request)
        grant = self._bearer(request)
        if grant is None or grant.provider != "google":
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        user: GoogleUser = grant.user
        return JSONResponse(
            {"sub": user.sub, "email": user.email, "email_verified": user.email_verified, "name": user.name}
        )

    # GitHub.

    async def _github_authorize(self, request: Request) -> Response:
        return await self._authorize(request, "github", self.github_client_id, self.github_user)

    async def _github_token(self, request: Request) -> Response:
        received = await self._record(request)
        grant, error = self._check_token_request(
            received, "github", self.github_client_id, self.github_client_secret
        )
        wants_json = "application/json" in received.headers.get("accept", "")
        if grant is None:
            # GitHub answers token errors with 200 and an error body.
            body = {"error": "bad_verification_code" if error == "invalid_grant" else error}
        else:
            body = {
                "access_token": self._issue_access_token(grant, "gho_"),
                "token_type": "bearer",
                "scope": grant.scope.replace(" ", ","),
            }
        if wants_json:
            return JSONResponse(body)
        return PlainTextResponse(urlencode(body), media_type="application/x-www-form-urlencoded")

    def _github_check(self, request: Request) -> tuple[_Grant | None, Response | None]:
        if not request.headers.get("user-agent"):
            return None, JSONResponse({"message": "Request forbidden by administrative rules."}, 403)
        grant = self._bearer(request)
        if grant is None or grant.provider != "github":
            return None, JSONResponse({"message": "Bad credentials"}, status_code=401)
        return grant, None

    async def _github_api_user(self, request: Request) -> Response:
        await self._record(request)
        grant, refusal = self._github_check(request)
        if refusal is not None or grant is None:
            return refusal or Response(status_code=500)
        user: GitHubUser = grant.user
        public = next((item["email"] for item in user.emails if item.get("visibility") == "public"), None)
        return JSONResponse({"id": user.id, "login": user.login, "name": user.name, "email": public})

    async def _github_api_emails(self, request: Request) -> Response:
        await self._record(request)
        grant, refusal = self._github_check(request)
        if refusal is not None or grant is None:
            return refusal or Response(status_code=500)
        if "user:email" not in grant.scope.split():
            return JSONResponse({"message": "Not Found"}, status_code=404)
        user: GitHubUser = grant.user
        return JSONResponse(user.emails)


__all__ = ["GitHubUser", "GoogleUser", "OAuthServer", "Received", "s256"]
