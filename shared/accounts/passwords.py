"""Passwords: argon2id hashing at the configured cost, and the policy a new password must pass.

Every password is NFKC-normalised before it is measured, checked or hashed (NIST SP 800-63B 5.1.1.2), so
the same text typed as composed or decomposed Unicode (or with compatibility forms) is the same password.
Nothing is truncated: argon2 takes the whole string.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
import secrets
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import ValidationFailed
from shared.settings import get_settings

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 8
MAX_LENGTH = 128
# Shorter context (email local part "ann", name "Bo") would reject too many unrelated passwords.
MIN_CONTEXT_LENGTH = 4
# A stripped or squashed fragment shorter than this is too small to call the whole password common.
MIN_FRAGMENT_LENGTH = 4
SITE_WORDS = ("cinema online",)
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt"

_LEET_TO_L = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_TO_I = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
# Leading and trailing digits, symbols and spaces: "Password123!" -> "password".
_DECORATION = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_NOT_ALNUM = re.compile(r"[\W_]+")
# Keyboard rows (QWERTY, QWERTZ, AZERTY, shifted digits); a password that is a stretch of one is a walk.
_KEYBOARD_ROWS = (
    "1234567890",
    "!@#$%^&*()",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "yxcvbnm",
    "azertyuiop",
    "qsdfghjklm",
    "wxcvbn",
)

_TOO_SHORT = (
    f"Use at least {MIN_LENGTH} characters. A few unrelated words make a password that is long and easy to "
    "remember."
)
_TOO_LONG = f"Use at most {MAX_LENGTH} characters."
_NUL = "The password contains a null character, which cannot be used. Remove it and try again."
_TOO_COMMON = (
    "This password is too easy to guess: it is a common or leaked password, a simple variation of one, or a "
    "keyboard or number pattern. Choose something less predictable, such as a few unrelated words."
)
_CONTEXT = (
    "Do not use your email address, your name or the name of this site in your password. Choose something "
    "unrelated to your account."
)


def normalize_password(password: str) -> str:
    """NFKC form of the password: what is measured, checked and hashed."""
    return unicodedata.normalize("NFKC", password)


# Hashing --------------------------------------------------------------------------------------------


@functools.cache
def _hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    """One PasswordHasher per cost setting (argon2 is imported here, not at cold start)."""
    from argon2 import PasswordHasher, Type

    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)


def _current_params() -> tuple[int, int, int]:
    settings = get_settings()
    return settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism


@functools.cache
def _dummy_hash(memory_kib: int, time_cost: int, parallelism: int) -> str:
    """A hash of a random secret at these costs, for burn_verify (nobody knows what it hashes)."""
    return _hasher(memory_kib, time_cost, parallelism).hash(secrets.token_urlsafe(32))


def hash_password(password: str) -> str:
    """Hash a password with argon2id at the configured cost (a PHC string with salt and parameters)."""
    return _hasher(*_current_params()).hash(normalize_password(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """True when the password matches the stored hash; False on a mismatch or an unreadable hash."""
    from argon2.exceptions import VerificationError

    try:
        # The stored hash carries its own parameters, so an old-cost hash still verifies.
        return _hasher(*_current_params()).verify(stored_hash, normalize_password(password))
    except (VerificationError, ValueError):  # mismatch; InvalidHashError and non-ASCII are ValueErrors
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with other parameters than the configured ones (or is unreadable)."""
    try:
        return _hasher(*_current_params()).check_needs_rehash(stored_hash)
    except ValueError:
        return True


def burn_verify(password: str) -> None:
    """Spend what a real verification costs, for a login whose account does not exist (no timing tell)."""
    verify_password(_dummy_hash(*_current_params()), password)


# argon2 is CPU-bound for tens of milliseconds and releases the GIL, so these keep the event loop free.


async def hash_password_async(password: str) -> str:
    """hash_password in a worker thread."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(stored_hash: str, password: str) -> bool:
    """verify_password in a worker thread."""
    return await asyncio.to_thread(verify_password, stored_hash, password)


async def burn_verify_async(password: str) -> None:
    """burn_verify in a worker thread."""
    await asyncio.to_thread(burn_verify, password)


# Policy ---------------------------------------------------------------------------------------------


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lowercase), read once."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as handle:
        return frozenset(word for line in handle if (word := line.strip()) and not word.startswith("#"))


def _squash(text: str) -> str:
    """Letters and digits only: 'Cinema-Online' and 'cinema online' both become 'cinemaonline'."""
    return _NOT_ALNUM.sub("", text)


def _strip_decoration(text: str) -> str:
    return _DECORATION.sub("", text)


def _variants(folded: str) -> set[str]:
    """The password as typed and as a cracker's rules would reduce it: stripped, de-leeted, squashed."""
    forms = {folded, _strip_decoration(folded)}
    forms |= {form.translate(table) for form in forms for table in (_LEET_TO_L, _LEET_TO_I)}
    forms |= {_strip_decoration(form) for form in forms}
    forms |= {_squash(form) for form in forms}
    return {form for form in forms if form == folded or len(form) >= MIN_FRAGMENT_LENGTH}


def _is_run(text: str) -> bool:
    """One character repeated, an alphabet or digit run up or down, or a stretch of a keyboard row."""
    if len(set(text)) == 1:
        return True
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    if steps in ({1}, {-1}):
        return True
    return any(text in row or text in row[::-1] for row in _KEYBOARD_ROWS)


def _is_weak(text: str, common: frozenset[str]) -> bool:
    """In the common list, a run, or a short or weak unit repeated ('abcabc', 'passpass')."""
    if text in common or _is_run(text):
        return True
    for size in range(1, len(text) // 2 + 1):
        unit = text[:size]
        if len(text) % size == 0 and unit * (len(text) // size) == text:
            return size <= 3 or _is_weak(unit, common)
    return False


def _context_words(email: str | None, name: str | None) -> set[str]:
    words = [*SITE_WORDS]
    if email:
        local = email.rpartition("@")[0] or email
        words += [email, local.partition("+")[0]]  # "ann+films@x" is still "ann"
    if name:
        words.append(name)
    squashed = {_squash(normalize_password(word).casefold()) for word in words}
    return {word for word in squashed if len(word) >= MIN_CONTEXT_LENGTH}


def check_password(password: str, *, email: str | None = None, name: str | None = None) -> None:
    """Raise ValidationFailed (with a stable code and advice) unless the password may be used."""
    text = normalize_password(password)
    if "\x00" in text:
        raise ValidationFailed(_NUL, code="password_invalid_character")
    if len(text) < MIN_LENGTH:
        raise ValidationFailed(_TOO_SHORT, code="password_too_short")
    if len(text) > MAX_LENGTH:
        raise ValidationFailed(_TOO_LONG, code="password_too_long")
    variants = _variants(text.casefold())
    squashed = {_squash(form) for form in variants}
    if any(word in form for word in _context_words(email, name) for form in squashed):
        raise ValidationFailed(_CONTEXT, code="password_contains_context")
    common = common_passwords()
    if any(_is_weak(form, common) for form in variants):
        raise ValidationFailed(_TOO_COMMON, code="password_too_common")
