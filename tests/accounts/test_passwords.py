"""Passwords: real argon2id hashing at the configured cost, and the policy for new passwords."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Callable

import pytest

from shared.accounts import passwords
from shared.accounts.passwords import (
    burn_verify,
    burn_verify_async,
    check_password,
    common_passwords,
    hash_password,
    hash_password_async,
    needs_rehash,
    verify_password,
    verify_password_async,
)
from shared.errors import ValidationFailed


def rejected(password: str, **context: str) -> str:
    """The stable code check_password raises for this password."""
    with pytest.raises(ValidationFailed) as caught:
        check_password(password, **context)
    assert caught.value.status == 422
    assert caught.value.detail  # advice for the user, in words
    return caught.value.code


# Hashing --------------------------------------------------------------------------------------------


def test_hash_and_verify_round_trip() -> None:
    stored = hash_password("a long and quiet river")
    assert verify_password(stored, "a long and quiet river")
    assert not verify_password(stored, "a long and quiet rivers")
    assert not verify_password(stored, "")


def test_hash_is_argon2id_at_owasp_cost() -> None:
    stored = hash_password("a long and quiet river")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    # A fresh salt each time: equal passwords do not give equal hashes.
    assert hash_password("a long and quiet river") != stored
    assert not needs_rehash(stored)


def test_invalid_stored_hash_verifies_false_and_needs_rehash() -> None:
    for garbage in ("", "not a hash", "$argon2id$v=19$m=19456,t=2,p=1$bad", "$argon2id$ünicode"):
        assert verify_password(garbage, "whatever password") is False
        assert needs_rehash(garbage)


def test_needs_rehash_when_cost_settings_change(settings_env: Callable[..., None]) -> None:
    old = hash_password("a long and quiet river")
    settings_env(ARGON2_TIME_COST="3")
    assert needs_rehash(old)
    # The old hash still verifies (its parameters travel with it), so login can re-hash it.
    assert verify_password(old, "a long and quiet river")
    new = hash_password("a long and quiet river")
    assert "$m=19456,t=3,p=1$" in new
    assert not needs_rehash(new)


def test_no_truncation_of_long_passwords() -> None:
    base = "x" * 99
    stored = hash_password(base + "a")
    assert verify_password(stored, base + "a")
    assert not verify_password(stored, base + "b")
    longest = "correct horse " * 9 + "ab"  # 128 characters
    assert len(longest) == 128
    assert verify_password(hash_password(longest), longest)
    assert not verify_password(hash_password(longest), longest[:-1] + "c")


def test_unicode_password_round_trips_and_nfkc_forms_are_equal() -> None:
    password = "pässwörd-ünïcode"
    composed = unicodedata.normalize("NFC", password)
    decomposed = unicodedata.normalize("NFD", password)
    assert composed != decomposed
    stored = hash_password(decomposed)
    assert verify_password(stored, composed)
    assert verify_password(stored, decomposed)
    # Compatibility forms too: fullwidth letters and the "fi" ligature are their plain NFKC equivalents.
    fullwidth_with_ligature = "\uff46\uff49\uff4c\uff4d-\ufb01nale-2031"  # fullwidth "film", ligature "fi"
    assert verify_password(hash_password(fullwidth_with_ligature), "film-finale-2031")
    assert not verify_password(stored, "passwoerd-uenicode")
    check_password(password)


def test_burn_verify_runs_argon2() -> None:
    burn_verify("warm up the cached dummy hash")
    started = time.perf_counter()
    burn_verify("someone else's guess")
    burned = time.perf_counter() - started
    stored = hash_password("a long and quiet river")
    started = time.perf_counter()
    verify_password(stored, "someone else's guess")
    verified = time.perf_counter() - started
    # Both run a real argon2 verification at the configured cost (milliseconds, not microseconds).
    assert burned > 0.001
    assert verified > 0.001


def test_dummy_hash_follows_current_parameters(settings_env: Callable[..., None]) -> None:
    settings_env(ARGON2_TIME_COST="1", ARGON2_MEMORY_KIB="8192")
    burn_verify("anything")
    dummy = passwords._dummy_hash(8192, 1, 1)
    assert dummy.startswith("$argon2id$v=19$m=8192,t=1,p=1$")


async def test_async_variants_run_in_a_thread() -> None:
    stored = await hash_password_async("a long and quiet river")
    assert await verify_password_async(stored, "a long and quiet river")
    assert not await verify_password_async(stored, "a long and quiet brook")
    await burn_verify_async("nobody")

    # The loop keeps ticking while argon2 works.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(hash_password_async(f"password number {i}") for i in range(3)))
    task.cancel()
    assert ticks > 1


# Policy ---------------------------------------------------------------------------------------------


def test_length_limits_count_code_points_after_nfkc() -> None:
    check_password("zebra-la")  # 8
    assert rejected("zebra-l") == "password_too_short"  # 7
    check_password("q" + "zebra lamp quietly " * 6 + "mountains")  # 1 + 114 + 9 = 124
    check_password(("zebra lamp quietly " * 7)[:128])
    assert rejected(("zebra lamp quietly " * 7)[:129]) == "password_too_long"
    # Eight characters however many bytes: each of these is one code point (2-4 bytes in UTF-8).
    check_password("жёлтый😀🎬")
    # "ﬁ" is one code point but NFKC makes it two: counted after normalisation.
    assert rejected("ﬁlm-ab") == "password_too_short"  # 6 code points typed, 7 after NFKC
    check_password("ﬁlm-abc")  # 8 after NFKC


def test_spaces_and_any_printable_unicode_allowed_but_not_nul() -> None:
    check_password("  spaced out words  ")
    check_password("tab\tand\nnewline ok")
    assert rejected("zebra-lamp\x00quietly") == "password_invalid_character"


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "Password123!",
        "P@ssw0rd",
        "qwertyuiop",
        "11111111",
        "12345678",
        "87654321",
        "abcdefgh",
        "qwertyui",
        "asdfghjkl;",
        "iloveyou2",
        "Football#1",
        "!!sunshine!!",
        "$uperman",
        "letmein123",
        "passpass",
        "abcabcabc",
        "        ",
        "1qaz2wsx",
    ],
)
def test_common_and_patterned_passwords_rejected(password: str) -> None:
    assert rejected(password) == "password_too_common"


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple violet",
        "zebra-lamp-quietly",
        "Tr0ub4dor&3-meadow",
        "blue coffee mountain",
        "pässwörd-ünïcode",
        "tomato-sandwich",
    ],
)
def test_reasonable_passwords_accepted(password: str) -> None:
    check_password(password, email="viewer@example.com", name="Ada Viewer")


def test_random_passwords_accepted() -> None:
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits + "!@#$%^&*-_ "
    for _ in range(500):
        check_password("".join(secrets.choice(alphabet) for _ in range(14)), email="viewer@example.com")


def test_context_rejected() -> None:
    email = "Johnny.Bravo+films@example.com"
    assert rejected("myjohnny.bravopass", email=email) == "password_contains_context"
    assert rejected("J0hnnyBr4vo-2031", email=email) == "password_contains_context"
    assert rejected("xx johnny.bravo+films@example.com", email=email) == "password_contains_context"
    assert rejected("cinema online rocks", email=email) == "password_contains_context"
    assert rejected("I<3CinemaOnline", email=email) == "password_contains_context"
    assert rejected("adalovelace-films", name="Ada Lovelace") == "password_contains_context"
    # Context shorter than four characters is ignored: "ann" appears in many unrelated passwords.
    check_password("annual meadow walk", email="ann@example.com", name="Ann")


def test_common_list_is_shipped_and_complete() -> None:
    words = common_passwords()
    assert len(words) >= 10_000
    assert {"password", "123456", "qwerty", "iloveyou", "p@ssw0rd"} <= words
    assert all(word == word.lower() and word.strip() == word and word for word in words)
    assert not any(word.startswith("#") for word in words)
    header = passwords.COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# source:") and "licence" in header
