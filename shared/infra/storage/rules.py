"""Rules every storage backend shares: key and argument validation, limits, ETags, storage errors."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import quote

from shared.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from shared.infra.storage.base import UploadedPart

MiB = 1024 * 1024
GiB = 1024 * MiB
MAX_KEY_LENGTH = 1024
MAX_SEGMENT_LENGTH = 255  # NAME_MAX of common file systems; S3 allows more, the platform does not
MAX_SINGLE_PUT_BYTES = 5 * GiB
MAX_PART_BYTES = 5 * GiB
MIN_PART_BYTES = 5 * MiB  # S3's floor for every part but the last; enforced locally so dev matches prod
MAX_PART_NUMBER = 10_000
MAX_EXPIRES_IN = 7 * 24 * 3600  # SigV4's ceiling
DEFAULT_CONTENT_TYPE = "application/octet-stream"
STORAGE_PATH_PREFIX = "/_storage/"

# Keys are made by the platform (ids, renditions, segments): a conservative alphabet that is safe in URL
# paths, on every file system and in S3. Segments starting with "." are refused, which rules out "." and
# ".." and keeps the hidden bookkeeping folders below (.meta, .multipart, .tmp) out of reach of keys.
_KEY_CHARS = re.compile(r"[A-Za-z0-9._~!()=+@,/-]+")
_CONTENT_TYPE = re.compile(r"[!-~][ -~]{0,254}")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
# The header S3 verifies a body's SHA-256 against (base64 of the digest); signed into upload URLs.
CHECKSUM_SHA256_HEADER = "x-amz-checksum-sha256"


class InvalidObjectKey(BadRequest):
    """The object key is empty, too long, or could escape the storage root."""

    code = "invalid_object_key"
    title = "Invalid object key"


class InvalidStorageArgument(BadRequest):
    """An expiry, content type, part number or file name is out of range."""

    code = "invalid_storage_argument"
    title = "Invalid storage argument"


class InvalidPart(BadRequest):
    """A listed part was not uploaded, its ETag differs, or the parts are not in ascending order."""

    code = "invalid_part"
    title = "Invalid part"


class EntityTooSmall(BadRequest):
    """A part other than the last is smaller than the 5 MiB minimum."""

    code = "entity_too_small"
    title = "Part too small"


class ObjectNotFound(NotFound):
    """No object is stored under the key."""

    code = "object_not_found"
    title = "Object not found"


class NoSuchUpload(NotFound):
    """The multipart upload does not exist (never created, completed or aborted)."""

    code = "no_such_upload"
    title = "Upload not found"


class ObjectKeyConflict(Conflict):
    """Locally a key cannot be both an object and a folder of other objects ("a" and "a/b")."""

    code = "object_key_conflict"
    title = "Object key conflict"


class ObjectTooLarge(PayloadTooLarge):
    """The body exceeds the single-request limit of the signed URL."""

    code = "object_too_large"
    title = "Object too large"


class InvalidSignature(Forbidden):
    """The signed URL was altered, or is used with another method."""

    code = "invalid_signature"
    title = "Invalid signature"


class UrlExpired(Forbidden):
    """The signed URL's expiry has passed."""

    code = "url_expired"
    title = "URL expired"


class ContentTypeMismatch(Forbidden):
    """The upload's Content-Type differs from the one the URL was signed for."""

    code = "content_type_mismatch"
    title = "Content type mismatch"


class ContentLengthMismatch(Forbidden):
    """The upload's Content-Length differs from the one the URL was signed for (S3: SignatureDoesNotMatch)."""

    code = "content_length_mismatch"
    title = "Content length mismatch"


class ChecksumHeaderMismatch(Forbidden):
    """x-amz-checksum-sha256 is missing or differs from the signed value (S3: SignatureDoesNotMatch)."""

    code = "checksum_header_mismatch"
    title = "Checksum header mismatch"


class IncompleteBody(BadRequest):
    """Fewer (or more) bytes arrived than the Content-Length announced (S3's IncompleteBody)."""

    code = "incomplete_body"
    title = "Incomplete body"


class BadDigest(BadRequest):
    """The body's SHA-256 differs from the checksum the upload was signed for (S3's BadDigest)."""

    code = "bad_digest"
    title = "Checksum mismatch"


def validate_key(key: str) -> str:
    """Return the key when it is a safe object key, else raise InvalidObjectKey."""
    if not key:
        raise InvalidObjectKey("The object key is empty.")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidObjectKey(f"The object key is longer than {MAX_KEY_LENGTH} characters.")
    if "\x00" in key or "\\" in key:
        raise InvalidObjectKey("The object key contains a NUL or a backslash.")
    if key.startswith("/"):
        raise InvalidObjectKey("The object key must be relative (no leading '/').")
    if not _KEY_CHARS.fullmatch(key):
        raise InvalidObjectKey("The object key may only contain letters, digits, '/' and ._~!()=+@,-")
    for segment in key.split("/"):
        if not segment:
            raise InvalidObjectKey("The object key has an empty path segment ('//' or a trailing '/').")
        if segment.startswith("."):
            raise InvalidObjectKey("No segment of an object key may start with '.' (no '.' or '..').")
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidObjectKey(f"A segment of the object key is longer than {MAX_SEGMENT_LENGTH}.")
    return key


def validate_prefix(prefix: str) -> str:
    """Return a non-empty key prefix made of safe key characters (a trailing '/' allowed)."""
    if not prefix:
        raise InvalidObjectKey("A key prefix must not be empty (it would name the whole store).")
    stripped = prefix.rstrip("/")
    if not stripped or prefix.endswith("//"):
        raise InvalidObjectKey("The key prefix is malformed.")
    validate_key(stripped)
    return prefix


def validate_content_type(content_type: str) -> str:
    """Return a printable single-line content type, else raise InvalidStorageArgument."""
    if not _CONTENT_TYPE.fullmatch(content_type) or "/" not in content_type:
        raise InvalidStorageArgument(f"Invalid content type {content_type!r}.")
    return content_type


def validate_part_number(part_number: int) -> int:
    """Return a part number in 1..10000, else raise InvalidStorageArgument."""
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise InvalidStorageArgument(f"Part numbers run from 1 to {MAX_PART_NUMBER}, got {part_number}.")
    return part_number


def validate_content_length(content_length: int, limit: int) -> int:
    """Return a body length in 0..limit, else raise InvalidStorageArgument."""
    if not 0 <= content_length <= limit:
        raise InvalidStorageArgument(f"A body length must be between 0 and {limit} bytes.")
    return content_length


def validate_sha256(sha256: str) -> str:
    """Return a SHA-256 hex digest in lower case, else raise InvalidStorageArgument."""
    if not _SHA256_HEX.fullmatch(sha256):
        raise InvalidStorageArgument("A SHA-256 must be 64 hex digits.")
    return sha256.lower()


def checksum_sha256_value(sha256: str) -> str:
    """The x-amz-checksum-sha256 value (base64 of the digest) for a hex SHA-256."""
    return base64.b64encode(bytes.fromhex(validate_sha256(sha256))).decode()


def resolve_expires_in(expires_in: int | None, default: int) -> int:
    """The URL lifetime in seconds: the default when None, bounded to 1 s .. 7 days."""
    value = default if expires_in is None else expires_in
    if not 1 <= value <= MAX_EXPIRES_IN:
        raise InvalidStorageArgument(f"expires_in must be between 1 and {MAX_EXPIRES_IN} seconds.")
    return value


def content_disposition(filename: str) -> str:
    """An attachment Content-Disposition with an ASCII fallback and the RFC 6266 UTF-8 name."""
    if not filename or len(filename) > 255 or _CONTROL_CHARS.search(filename):
        raise InvalidStorageArgument("The download file name must be 1-255 characters without controls.")
    fallback = re.sub(r"[^A-Za-z0-9._ ()-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def normalize_etag(etag: str) -> str:
    """The ETag without quotes or weak marker, for comparisons (S3 accepts either form)."""
    return etag.strip().removeprefix("W/").strip('"')


def quote_etag(hexdigest: str) -> str:
    """An ETag as S3 sends it: the digest in double quotes."""
    return f'"{hexdigest}"'


def multipart_etag(part_etags: list[str]) -> str:
    """S3's multipart ETag: md5 of the concatenated binary part md5s, then '-<part count>'."""
    digests = b"".join(bytes.fromhex(normalize_etag(etag)) for etag in part_etags)
    return quote_etag(f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(part_etags)}")


def check_completion_parts(parts: list[UploadedPart]) -> None:
    """Refuse an empty part list or one not in strictly ascending order (S3's InvalidPartOrder)."""
    if not parts:
        raise InvalidPart("At least one part is required to complete an upload.")
    previous = 0
    for part in parts:
        if not 1 <= part.part_number <= MAX_PART_NUMBER:
            raise InvalidPart(f"Part number {part.part_number} is out of range.")
        if part.part_number <= previous:
            raise InvalidPart("Parts must be listed in ascending order, each once.")
        previous = part.part_number
