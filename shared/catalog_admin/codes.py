"""Code lists and text rules of catalog data: ISO 3166-1 countries, language tags, slugs, external ids."""

from __future__ import annotations

import re
import unicodedata
import uuid

# ISO 3166-1 alpha-2, the officially assigned codes, plus XK (Kosovo): user-assigned, but CDNs (Vercel,
# Cloudflare) send it as a viewer's country, so allow/deny lists must be able to name it.
COUNTRIES = frozenset(
    (  # noqa: SIM905 - a block of codes reads better than 250 quoted items
        "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS "
        "BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE "
        "EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM "
        "HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC "
        "LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA "
        "NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW "
        "SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO "
        "TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW XK"
    ).split()
)

# A BCP 47 tag as catalogs use it: ISO 639 language (2-3 letters), optional script, optional region
# (ISO 3166-1 alpha-2 or UN M.49 digits): "en", "pt-BR", "zh-Hant-TW", "es-419".
_LANGUAGE = re.compile(r"(?P<lang>[a-z]{2,3})(?:-(?P<script>[a-z]{4}))?(?:-(?P<region>[a-z]{2}|[0-9]{3}))?")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_MAX = 120
TITLE_IMDB = re.compile(r"tt[0-9]{7,10}")
PERSON_IMDB = re.compile(r"nm[0-9]{7,10}")
TMDB = re.compile(r"[0-9]{1,10}")


def country(value: str) -> str | None:
    """The upper-cased ISO 3166-1 alpha-2 code, or None when it is not one."""
    code = value.strip().upper()
    return code if code in COUNTRIES else None


def language(value: str) -> str | None:
    """The tag in canonical case ("pt-br" -> "pt-BR", "zh-hant" -> "zh-Hant"), or None when malformed."""
    match = _LANGUAGE.fullmatch(value.strip().lower())
    if match is None:
        return None
    region = match["region"]
    if region is not None and region.isalpha() and region.upper() not in COUNTRIES:
        return None
    parts = [match["lang"]]
    if match["script"]:
        parts.append(match["script"].title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


def slug_problem(value: str) -> str | None:
    """Why `value` is not a usable slug, or None when it is one."""
    if not 1 <= len(value) <= SLUG_MAX:
        return f"must be 1 to {SLUG_MAX} characters"
    if not SLUG.fullmatch(value):
        return "must be lowercase letters and digits separated by single hyphens, e.g. 'the-matrix'"
    try:
        uuid.UUID(value)
    except ValueError:
        return None
    # A UUID-shaped slug would be ambiguous wherever an id or a slug is accepted.
    return "must not look like an id (a UUID)"


def slugify(text: str, *, max_length: int = 80) -> str:
    """A slug from a name: accents dropped, ASCII words joined by hyphens ("Amélie" -> "amelie"), or ""."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    words = re.findall(r"[a-z0-9]+", folded)
    # An empty result (a name in a non-Latin script) is the caller's to replace.
    return "-".join(words)[:max_length].strip("-")
