"""HLS AES-128: whole-segment AES-128-CBC with PKCS#7 padding, IV = the segment's media sequence number.

Why whole-segment and not SAMPLE-AES or encrypted fMP4: ffmpeg's hls muxer refuses encrypted fMP4, and
METHOD=AES-128 over the finished CMAF segment is what hls.js, Safari and every other HLS client decrypt.
The EXT-X-KEY tag carries no IV attribute, so clients derive it from the media sequence number (RFC 8216
5.2); the init segment stays clear (EXT-X-KEY comes after EXT-X-MAP). CENC for DASH is ffmpeg's job.
"""

from __future__ import annotations

from pathlib import Path

KEY_BYTES = 16


def sequence_iv(sequence: int) -> bytes:
    """The implicit HLS IV: the media sequence number as a 16-byte big-endian integer."""
    return sequence.to_bytes(16, "big")


def encrypt_segment(data: bytes, *, key: bytes, sequence: int) -> bytes:
    """AES-128-CBC encrypt a whole segment (PKCS#7 padded)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    _check_key(key)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(sequence_iv(sequence))).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def decrypt_segment(data: bytes, *, key: bytes, sequence: int) -> bytes:
    """The inverse of encrypt_segment (for tests and tools; players do this themselves)."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    _check_key(key)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(sequence_iv(sequence))).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def encrypt_file(source: Path, target: Path, *, key: bytes, sequence: int) -> int:
    """Encrypt one segment file into target (blocking); returns the encrypted size in bytes."""
    encrypted = encrypt_segment(source.read_bytes(), key=key, sequence=sequence)
    target.write_bytes(encrypted)
    return len(encrypted)


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"an AES-128 key has {KEY_BYTES} bytes, not {len(key)}")
