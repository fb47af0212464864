"""Access tokens: Supabase-compatible JWTs, signed and verified with a key ring rotated by kid."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from shared.errors import Unauthenticated
from shared.settings import Settings, derived_key

ACCESS_TYPE = "at+jwt"  # RFC 9068: our access tokens say what they are; nothing else is accepted as one
ALLOWED_ALGORITHMS = frozenset({"HS256", "ES256"})
# Clock skew tolerated between our functions and PostgREST/Supabase.
LEEWAY_SECONDS = 30
# Supabase Auth tokens living longer (its "JWT expiry" setting, default 3600) are refused: revocation
# records (shared.accounts.authn) must outlive every token they revoke.
SUPABASE_MAX_TOKEN_SECONDS = 3600


class InvalidToken(Unauthenticated):
    """The bearer token is malformed, forged, expired, revoked or not an access token."""

    def __init__(self, detail: str = "The access token is invalid or has expired; sign in again.") -> None:
        super().__init__(detail, code="invalid_token")
        self.headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}


@dataclass(frozen=True)
class VerificationKey:
    """One key of the ring: its id, algorithm and key material (bytes for HMAC, a public key for EC)."""

    kid: str
    algorithm: str
    key: Any


@dataclass(frozen=True)
class KeyRing:
    """The signing key and every key still accepted for verification (current first)."""

    signing: VerificationKey
    signing_material: Any
    verification: dict[str, VerificationKey]
    issuer: str
    audience: str
    supabase_issuer: str | None
    supabase_key: bytes | None


def _hmac_kid(secret: bytes) -> str:
    return "hs-" + hashlib.sha256(b"kid:" + secret).hexdigest()[:16]


def _ec_kid(public_key: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "es-" + hashlib.sha256(der).hexdigest()[:16]


def _hmac_secret(settings: Settings) -> bytes:
    # Locally there is no Supabase project: derive a stable secret from the signing secret under .data/.
    if settings.supabase_jwt_secret:
        return settings.supabase_jwt_secret.encode()
    return base64.urlsafe_b64encode(derived_key(settings, "access-token-hs256"))


def _build_ring(settings: Settings) -> KeyRing:
    verification: dict[str, VerificationKey] = {}
    signing: VerificationKey
    material: Any  # HMAC bytes, or the EC private key
    if settings.jwt_algorithm == "ES256":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        assert settings.jwt_private_key  # the settings validator requires it
        private = serialization.load_pem_private_key(settings.jwt_private_key.encode(), password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
            from shared.settings import ConfigError

            raise ConfigError("JWT_PRIVATE_KEY: expected a PEM EC P-256 private key")
        public = private.public_key()
        signing, material = VerificationKey(_ec_kid(public), "ES256", public), private
        verification[signing.kid] = signing
        for pem in settings.jwt_previous_public_keys:
            old_public = serialization.load_pem_public_key(pem.encode())
            old = VerificationKey(_ec_kid(old_public), "ES256", old_public)
            verification.setdefault(old.kid, old)
    else:
        hs_secret = _hmac_secret(settings)
        signing, material = VerificationKey(_hmac_kid(hs_secret), "HS256", hs_secret), hs_secret
        verification[signing.kid] = signing
    # Secrets of a rotation window, kept only until tokens signed with them expire. In ES256 mode these
    # are the only HMAC keys accepted: the current HMAC secret (the Supabase project secret, or one
    # derived) must not verify our tokens there, or anyone holding it could mint tokens with any app_roles.
    for previous in settings.jwt_previous_secrets:
        old = VerificationKey(_hmac_kid(previous.encode()), "HS256", previous.encode())
        verification.setdefault(old.kid, old)
    issuer = settings.jwt_issuer or f"{str(settings.public_base_url).rstrip('/')}/api/v1/auth"
    # Supabase Auth's own tokens are checked apart from the ring (their issuer, typ JWT), and only when
    # they are accepted at all.
    supabase_issuer, supabase_key = None, None
    if settings.accept_supabase_tokens and settings.supabase_url and settings.supabase_jwt_secret:
        supabase_issuer = f"{str(settings.supabase_url).rstrip('/')}/auth/v1"
        supabase_key = settings.supabase_jwt_secret.encode()
    return KeyRing(
        signing=signing,
        signing_material=material,
        verification=verification,
        issuer=issuer,
        audience=settings.jwt_audience,
        supabase_issuer=supabase_issuer,
        supabase_key=supabase_key,
    )


# (settings, ring) of the last settings object seen: Settings is unhashable (mutable pydantic model), and
# get_settings() hands out one object until it is reset, so an identity check is the whole cache.
_last_ring: tuple[Settings, KeyRing] | None = None


def key_ring(settings: Settings) -> KeyRing:
    """The key ring for these settings (built once per settings object)."""
    global _last_ring
    cached = _last_ring
    if cached is not None and cached[0] is settings:
        return cached[1]
    ring = _build_ring(settings)
    _last_ring = (settings, ring)
    return ring


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its caller."""

    user_id: uuid.UUID
    session_id: uuid.UUID | None
    roles: frozenset[str]
    profile_id: uuid.UUID | None
    aal: str
    email: str | None
    issued_at: int
    issued_at_ms: int
    expires_at: int
    issuer: str


def issue_access_token(
    *,
    settings: Settings,
    user_id: uuid.UUID,
    email: str,
    roles: list[str],
    session_id: uuid.UUID,
    profile_id: uuid.UUID | None,
    aal: str,
    amr: list[dict[str, Any]],
    now: int | None = None,
) -> tuple[str, int]:
    """Sign a short-lived access token; returns (token, expires_at as a Unix time)."""
    ring = key_ring(settings)
    issued_ms = int(time.time() * 1000) if now is None else now * 1000
    issued = issued_ms // 1000
    expires = issued + settings.access_token_ttl_seconds
    claims: dict[str, Any] = {
        "iss": ring.issuer,
        "sub": str(user_id),
        "aud": ring.audience,
        "exp": expires,
        "iat": issued,
        "nbf": issued,
        # Milliseconds, so a role change revokes tokens issued earlier in the same second, not later ones.
        "iat_ms": issued_ms,
        "jti": secrets.token_urlsafe(16),
        # Supabase's claims, so PostgREST and Storage RLS (auth.uid(), auth.role()) accept the token.
        "role": "authenticated",
        "email": email,
        "aal": aal,
        "amr": amr,
        "session_id": str(session_id),
        "is_anonymous": False,
        "app_roles": sorted(roles),
        "profile_id": str(profile_id) if profile_id else None,
    }
    headers = {"kid": ring.signing.kid, "typ": ACCESS_TYPE}
    import jwt  # with cryptography ~40 ms: loaded by the first request that needs it, not at import

    token = jwt.encode(claims, ring.signing_material, algorithm=ring.signing.algorithm, headers=headers)
    return token, expires


def _uuid(value: Any) -> uuid.UUID | None:
    if value in (None, ""):
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidToken() from None


def decode_access_token(token: str, *, settings: Settings) -> AccessClaims:
    """Verify signature, algorithm, type, audience, issuer and times; no database or Redis involved."""
    import jwt

    ring = key_ring(settings)
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidToken() from None
    algorithm = header.get("alg")
    # "none", RS*, HS512...: never let the token pick (and a list or object there is no algorithm at all).
    if not isinstance(algorithm, str) or algorithm not in ALLOWED_ALGORITHMS:
        raise InvalidToken()
    kid = header.get("kid")
    issuer = ring.issuer
    if isinstance(kid, str) and kid in ring.verification:
        entry = ring.verification[kid]
        key, expected_alg = entry.key, entry.algorithm
        if header.get("typ") != ACCESS_TYPE:
            raise InvalidToken("That token is not an access token.")
    elif ring.supabase_issuer and ring.supabase_key and algorithm == "HS256":
        # Supabase Auth's own HS256 tokens (typ JWT, kid absent or Supabase's); only their issuer passes.
        if header.get("typ") != "JWT":
            raise InvalidToken()
        key, expected_alg, issuer = ring.supabase_key, "HS256", ring.supabase_issuer
    else:
        raise InvalidToken()
    if algorithm != expected_alg:  # key confusion: an HMAC "signed" with our EC public key, and the like
        raise InvalidToken()
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[expected_alg],
            audience=ring.audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("The access token has expired; refresh it or sign in again.") from None
    except jwt.PyJWTError:
        raise InvalidToken() from None
    if claims.get("role") != "authenticated":
        raise InvalidToken()
    if issuer != ring.issuer and int(claims["exp"]) - int(claims["iat"]) > SUPABASE_MAX_TOKEN_SECONDS:
        raise InvalidToken("Supabase access tokens may live at most an hour here; shorten the JWT expiry.")
    user_id = _uuid(claims.get("sub"))
    if user_id is None:
        raise InvalidToken()
    roles = claims.get("app_roles") or []
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise InvalidToken()
    if issuer != ring.issuer:
        # Whoever holds the Supabase project secret can write any claim: a Supabase user's roles come
        # from our users table (shared.accounts.external), never from the token.
        roles = []
    email = claims.get("email")
    return AccessClaims(
        user_id=user_id,
        session_id=_uuid(claims.get("session_id")),
        roles=frozenset(roles),
        profile_id=_uuid(claims.get("profile_id")),
        aal=str(claims.get("aal") or "aal1"),
        email=email if isinstance(email, str) else None,
        issued_at=int(claims["iat"]),
        issued_at_ms=_issued_ms(claims),
        expires_at=int(claims["exp"]),
        issuer=issuer,
    )


def _issued_ms(claims: dict[str, Any]) -> int:
    value = claims.get("iat_ms")
    if isinstance(value, int) and abs(value // 1000 - int(claims["iat"])) <= 1:
        return value
    return int(claims["iat"]) * 1000


def jwks(settings: Settings) -> dict[str, Any]:
    """The public keys (ES256 only: HMAC secrets are never published) as a JSON Web Key Set."""
    from jwt.algorithms import ECAlgorithm

    keys = []
    for entry in key_ring(settings).verification.values():
        if entry.algorithm == "ES256":
            jwk: dict[str, Any] = ECAlgorithm.to_jwk(entry.key, as_dict=True)
            keys.append({**jwk, "kid": entry.kid, "alg": "ES256", "use": "sig"})
    return {"keys": keys}


def new_opaque_token() -> tuple[str, bytes]:
    """A random bearer secret for refresh/email links and its sha256 (only the hash is stored)."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> bytes:
    """The stored form of an opaque token."""
    return hashlib.sha256(token.encode()).digest()
