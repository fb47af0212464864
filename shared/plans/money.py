"""Money helpers: ISO 4217 currency codes, their minor-unit digits and display formatting."""

from __future__ import annotations

import re

from shared.errors import ValidationFailed

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")

# Currencies whose minor unit is not the usual cent (ISO 4217); every other code has 2 digits.
_ZERO_DECIMALS = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF"}
    | {"UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
_THREE_DECIMALS = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})

# Currencies shown with a symbol instead of the code; others read "CHF 12.00".
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def is_currency(code: str) -> bool:
    """True when the code has the ISO 4217 shape (three upper-case letters)."""
    return bool(CURRENCY_RE.fullmatch(code))


def normalize_currency(code: str) -> str:
    """The upper-cased currency code, or 422 invalid_currency when it is not ISO 4217-shaped."""
    value = code.strip().upper()
    if not is_currency(value):
        raise ValidationFailed("currency must be a three-letter ISO 4217 code", code="invalid_currency")
    return value


def minor_units(currency: str) -> int:
    """How many decimal digits the currency's minor unit has (JPY 0, KWD 3, USD 2)."""
    code = currency.upper()
    if code in _ZERO_DECIMALS:
        return 0
    if code in _THREE_DECIMALS:
        return 3
    return 2


def format_amount(amount_minor: int, currency: str) -> str:
    """A human-readable amount: "$12.99", "€11.99", "£9.99", "JPY 1200", "KWD 1.250", "-$5.00"."""
    code = currency.upper()
    digits = minor_units(code)
    sign = "-" if amount_minor < 0 else ""
    value = abs(amount_minor)
    if digits:
        whole, frac = divmod(value, 10**digits)
        number = f"{whole}.{frac:0{digits}d}"
    else:
        number = str(value)
    symbol = _SYMBOLS.get(code)
    if symbol is not None:
        return f"{sign}{symbol}{number}"
    return f"{sign}{code} {number}"
