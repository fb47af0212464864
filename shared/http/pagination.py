"""Cursor (keyset) pagination: opaque cursors that stay correct while rows are inserted."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from shared.errors import BadRequest

T = TypeVar("T")


class InvalidCursor(BadRequest):
    """The cursor was not produced by this API."""

    code = "invalid_cursor"
    title = "Invalid cursor"


class Page(BaseModel, Generic[T]):
    """One page of results; pass next_cursor back to get the following page."""

    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    """Parsed ?limit=&cursor= with the cursor decoded to its key values."""

    limit: int
    after: list[Any] | None


def encode_cursor(key: Sequence[Any]) -> str:
    """Encode the sort key of the last row seen."""
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> list[Any]:
    """Decode a cursor, refusing anything malformed with a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise InvalidCursor("The cursor is malformed; start again without one.") from error
    if not isinstance(value, list) or not value:
        raise InvalidCursor("The cursor is malformed; start again without one.")
    return value


def page_params(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page")
    ] = None,
) -> PageParams:
    """FastAPI dependency for list endpoints."""
    return PageParams(limit=limit, after=decode_cursor(cursor) if cursor else None)


def paginate(rows: Sequence[T], params: PageParams, key: Callable[[T], Sequence[Any]]) -> Page[T]:
    """Build a page from rows fetched with LIMIT params.limit + 1 (the extra row proves a next page)."""
    items = list(rows[: params.limit])
    has_more = len(rows) > params.limit
    return Page[T](items=items, next_cursor=encode_cursor(key(items[-1])) if has_more and items else None)
