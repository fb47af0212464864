"""The key ids a PlayReady licence challenge asks for, read from its WRMHEADER (no trust placed in it).

A PlayReady licence acquisition challenge is a SOAP envelope (`AcquireLicense`) whose signed `LA` part
carries the content header (WRMHEADER) in the clear; the licence server issues keys for the KIDs that
header names. Three header versions name them differently, all covered:
- 4.0: `<DATA><KID>base64</KID>` (one key);
- 4.1: `<DATA><PROTECTINFO><KID ALGID=".." VALUE="base64"/>`;
- 4.2 / 4.3: `<DATA><PROTECTINFO><KIDS><KID VALUE="base64" .../>...</KIDS>`.
The value is base64 (standard alphabet, padded) of the KID as a little-endian GUID: the first three
fields (4, 2, 2 bytes) byte-swapped against the big-endian KID of CENC (`default_KID`, media_keys).
Players hand over the unwrapped SOAP body (dash.js, Shaka); a browser's raw EME message
(`<PlayReadyKeyMessage>` in UTF-16 with the challenge base64 inside) is unwrapped here too.

Parsed with expat directly, namespaces ignored (local names only, so a prefix trick cannot hide a KID),
every `KID` element anywhere counted; a DOCTYPE or entity declaration is refused outright, so no entity
expansion or external entity is ever processed. Encodings: what expat reads (UTF-8, UTF-16 with BOM or
declaration, ISO-8859-1, US-ASCII).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any
from xml.parsers import expat

MAX_DEPTH = 64  # a real challenge nests ~12 deep
MAX_KIDS = 64


class InvalidChallenge(ValueError):
    """The body is not a PlayReady challenge we can read (not XML, a DTD, too deep, too many KIDs)."""


def _local(name: str) -> str:
    return name.rpartition(":")[2]


class _Reader:
    """Collect KID values (element text or VALUE attribute) and the wrapped challenge of an EME message."""

    def __init__(self) -> None:
        self.kids: list[str] = []
        self.wrapped: list[str] = []
        self.root: str | None = None
        self._stack: list[str] = []
        self._text: list[str] = []

    def start(self, name: str, attributes: dict[str, str]) -> None:
        local = _local(name)
        if self.root is None:
            self.root = local
        self._stack.append(local)
        if len(self._stack) > MAX_DEPTH:
            raise InvalidChallenge("too deep")
        self._text = []
        if local == "KID":
            for attribute, value in attributes.items():
                if _local(attribute).upper() == "VALUE":
                    self._add(value)

    def end(self, name: str) -> None:
        local = self._stack.pop()
        text = "".join(self._text).strip()
        self._text = []
        if local == "KID" and text:
            self._add(text)
        elif local == "Challenge" and self.root == "PlayReadyKeyMessage" and text:
            self.wrapped.append(text)

    def data(self, text: str) -> None:
        self._text.append(text)

    def _add(self, value: str) -> None:
        self.kids.append(value)
        if len(self.kids) > MAX_KIDS:
            raise InvalidChallenge("too many key ids")


def _refuse_dtd(*_: Any) -> None:
    raise InvalidChallenge("DTDs and entities are not accepted")


def _refuse_external(*_: Any) -> int:
    raise InvalidChallenge("external entities are not accepted")


def _read(body: bytes) -> _Reader:
    reader = _Reader()
    parser = expat.ParserCreate()  # no namespace processing: an undeclared prefix is not an error
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.UnparsedEntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_external
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    try:
        parser.Parse(body, True)
    except expat.ExpatError as error:
        raise InvalidChallenge(f"not XML: {error}") from None
    return reader


def _kid_bytes(value: str) -> bytes | None:
    """The big-endian KID of a WRMHEADER value; None when it is not base64 of 16 bytes."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return uuid.UUID(bytes_le=raw).bytes if len(raw) == 16 else None


def challenge_kids(body: bytes) -> list[bytes | None]:
    """The KIDs the challenge asks for (big-endian bytes; None for a value that is no KID at all).

    An empty list when it names none; InvalidChallenge when it cannot be read.
    """
    reader = _read(body)
    values = reader.kids
    if reader.root == "PlayReadyKeyMessage":  # a browser's EME message: the SOAP challenge is inside
        for wrapped in reader.wrapped:
            try:
                inner = base64.b64decode(wrapped, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidChallenge("the wrapped challenge is not base64") from None
            values = values + _read(inner).kids
    return [_kid_bytes(value) for value in values]


def kid_value(kid: bytes) -> str:
    """The WRMHEADER form of a big-endian KID: base64 of its little-endian GUID (for tests and docs)."""
    return base64.b64encode(uuid.UUID(bytes=kid).bytes_le).decode("ascii")
