"""Language tags for manifests: HLS LANGUAGE and DASH @lang want BCP 47, containers carry ISO 639-2."""

from __future__ import annotations

import re

# ISO 639-2 (bibliographic and terminology codes) -> ISO 639-1, for the languages a catalogue meets most.
# BCP 47 prefers the two-letter code when one exists; a three-letter code without one stays as it is.
_TWO_LETTER = {
    "ara": "ar", "ben": "bn", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "chi": "zh", "zho": "zh",
    "dan": "da", "deu": "de", "ger": "de", "ell": "el", "gre": "el", "eng": "en", "est": "et", "fas": "fa",
    "per": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "gle": "ga", "heb": "he", "hin": "hi", "hrv": "hr",
    "hun": "hu", "ind": "id", "isl": "is", "ice": "is", "ita": "it", "jpn": "ja", "kor": "ko", "lav": "lv",
    "lit": "lt", "msa": "ms", "may": "ms", "nld": "nl", "dut": "nl", "nor": "no", "nob": "nb", "nno": "nn",
    "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru", "slk": "sk", "slo": "sk", "slv": "sl",
    "spa": "es", "srp": "sr", "swe": "sv", "tam": "ta", "tel": "te", "tha": "th", "tur": "tr", "ukr": "uk",
    "urd": "ur", "vie": "vi", "cym": "cy", "wel": "cy", "eus": "eu", "baq": "eu", "glg": "gl", "afr": "af",
    "swa": "sw", "zul": "zu", "fil": "fil", "tgl": "tl",
}  # fmt: skip
_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def bcp47(language: str | None) -> str:
    """A manifest language tag: 'eng' -> 'en', 'pt-BR' unchanged, missing or malformed -> 'und'."""
    if not language or not _TAG.fullmatch(language):
        return "und"
    primary, _, rest = language.partition("-")
    primary = _TWO_LETTER.get(primary.lower(), primary.lower())
    return f"{primary}-{rest}" if rest else primary
