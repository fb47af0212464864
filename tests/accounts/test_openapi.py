"""Every accounts endpoint is documented: a summary and the stable error codes it can answer with."""

from __future__ import annotations

from typing import Any

from api.auth import app as auth_app
from api.users import app as users_app


def operations(app: Any, prefix: str) -> dict[tuple[str, str], dict[str, Any]]:
    spec = app.openapi()
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        if path.startswith(prefix)
        for method, operation in item.items()
    }


def test_accounts_endpoints_document_summaries_and_errors() -> None:
    found = {
        **{key: op for key, op in operations(auth_app, "/api/v1/auth").items() if "/mfa" not in key[1]},
        **operations(users_app, "/api/v1/users/me"),
    }
    accounts_paths = {
        ("POST", "/api/v1/auth/signup"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/auth/verify-email"),
        ("POST", "/api/v1/auth/verify-email/resend"),
        ("POST", "/api/v1/auth/password/reset"),
        ("POST", "/api/v1/auth/password/reset/confirm"),
        ("POST", "/api/v1/auth/email/confirm"),
        ("GET", "/api/v1/users/me"),
        ("PATCH", "/api/v1/users/me"),
        ("DELETE", "/api/v1/users/me"),
        ("PUT", "/api/v1/users/me/password"),
        ("POST", "/api/v1/users/me/email"),
        ("GET", "/api/v1/users/me/export"),
        ("GET", "/api/v1/users/me/sessions"),
        ("DELETE", "/api/v1/users/me/sessions/{session_id}"),
    }
    assert accounts_paths <= set(found)
    for key in accounts_paths:
        operation = found[key]
        assert operation.get("summary"), key
        errors = {status for status in operation["responses"] if status.startswith(("4", "5"))}
        assert errors - {"422"}, key  # more than FastAPI's automatic validation error
    text = str(found[("POST", "/api/v1/auth/login")]["responses"])
    for code in ("invalid_credentials", "email_not_verified", "account_locked"):
        assert code in text
    text = str(found[("POST", "/api/v1/auth/refresh")]["responses"])
    for code in ("refresh_token_reused", "refresh_token_already_used"):
        assert code in text
