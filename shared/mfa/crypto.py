"""Secrets at rest for two-factor authentication: the TOTP seed (AES-GCM) and backup codes (keyed hash)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid

from shared.settings import Settings, derived_key

# 31 symbols: digits and lowercase letters without 0/o, 1/l/i, which people misread when copying codes.
BACKUP_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_BACKUP_GROUPS = (4, 4, 2)  # "k7q2-m9x4-pd": 10 symbols, 10 * log2(31) ~ 49.5 bits
BACKUP_CODE_LENGTH = sum(_BACKUP_GROUPS)
_NONCE_BYTES = 12


def encrypt_secret(settings: Settings, *, user_id: uuid.UUID, secret: str) -> str:
    """base64(nonce | AES-GCM ciphertext) of a TOTP seed, bound to its account by the associated data."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE_BYTES)
    # The user id as associated data: a ciphertext copied onto another account's row does not decrypt.
    sealed = AESGCM(derived_key(settings, "mfa-totp-secret")).encrypt(nonce, secret.encode(), user_id.bytes)
    return base64.b64encode(nonce + sealed).decode()


def decrypt_secret(settings: Settings, *, user_id: uuid.UUID, stored: str) -> str:
    """The TOTP seed from its stored form (raises cryptography's InvalidTag if tampered with)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.b64decode(stored)
    plain = AESGCM(derived_key(settings, "mfa-totp-secret")).decrypt(
        raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], user_id.bytes
    )
    return plain.decode()


def normalise_code(code: str) -> str:
    """What the person typed, without spaces or dashes, lower-cased (TOTP and backup codes alike)."""
    return "".join(code.split()).replace("-", "").lower()


def is_totp_code(normalised: str) -> bool:
    """Six ASCII digits are a TOTP code; anything else is tried as a backup code."""
    return len(normalised) == 6 and normalised.isascii() and normalised.isdigit()


def new_backup_code() -> str:
    """A random, human-friendly backup code such as "k7q2-m9x4-pd"."""
    symbols = "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(BACKUP_CODE_LENGTH))
    groups, start = [], 0
    for size in _BACKUP_GROUPS:
        groups.append(symbols[start : start + size])
        start += size
    return "-".join(groups)


def backup_code_hash(settings: Settings, code: str) -> str:
    """HMAC-SHA256 of the normalised code, hex.

    A fast keyed hash rather than argon2 on purpose: backup codes are random with ~50 bits of entropy, so
    there is no dictionary to slow down, and the server-side key means a leaked table cannot even be
    brute-forced offline. A deterministic hash also lets the database find the code by an equality match,
    which is what makes "use it once" a single atomic UPDATE.
    """
    key = derived_key(settings, "mfa-backup-codes")
    return hmac.new(key, normalise_code(code).encode(), hashlib.sha256).hexdigest()
