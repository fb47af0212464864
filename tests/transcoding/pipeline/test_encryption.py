"""HLS AES-128: whole-segment CBC with PKCS#7 and the media sequence number as IV."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.transcoding.pipeline.encryption import decrypt_segment, encrypt_file, encrypt_segment, sequence_iv

KEY = bytes(range(16))


def test_the_iv_is_the_sequence_number_big_endian() -> None:
    assert sequence_iv(1) == b"\x00" * 15 + b"\x01"
    assert sequence_iv(0x0102) == b"\x00" * 14 + b"\x01\x02"


@pytest.mark.parametrize("size", [0, 1, 15, 16, 1000])
def test_round_trip_and_pkcs7_padding(size: int) -> None:
    data = bytes(index % 251 for index in range(size))
    encrypted = encrypt_segment(data, key=KEY, sequence=7)
    assert len(encrypted) == (size // 16 + 1) * 16  # always padded, a full block when already aligned
    assert decrypt_segment(encrypted, key=KEY, sequence=7) == data


def test_each_sequence_number_gives_another_ciphertext() -> None:
    data = b"segment bytes " * 10
    first, second = encrypt_segment(data, key=KEY, sequence=1), encrypt_segment(data, key=KEY, sequence=2)
    assert first != second
    assert first[16:] != second[16:]  # CBC chains the IV through every block
    with pytest.raises(ValueError):
        encrypt_segment(data, key=KEY[:8], sequence=1)


def test_encrypt_file(tmp_path: Path) -> None:
    source, target = tmp_path / "clear.m4s", tmp_path / "seg-00003.m4s"
    source.write_bytes(b"x" * 100)
    assert encrypt_file(source, target, key=KEY, sequence=3) == 112
    assert decrypt_segment(target.read_bytes(), key=KEY, sequence=3) == b"x" * 100
