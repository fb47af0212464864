"""Subtitle files: SRT and WebVTT normalised to WebVTT with line-numbered errors, and the subtitles API
(stored file, one live track per language/forced/SDH, manifests refreshed)."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import psycopg
import pytest
import webvtt

from shared.media.subtitles import MAX_SUBTITLE_BYTES, SubtitleErrors, normalise_subtitles
from tests.media.conftest import API, storage_call
from tests.support.identity import SignedIn

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Hello</i> <font color="red">world</font>

2
00:00:03,000 --> 00:00:04,000
{\\an8}Fish & chips <b>now

3
00:00:04,020 --> 00:00:05,000 X1:100 X2:200
Two lines,
-- > and --> arrows
"""
OVERLAP = "SRT cues may not overlap"
ORDER = "cues must be in time order"


def errors_of(data: bytes | str) -> list[tuple[int, str]]:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(SubtitleErrors) as caught:
        normalise_subtitles(raw)
    return [(error.line, error.message) for error in caught.value.errors]


def parsed(text: str) -> Any:
    return webvtt.from_buffer(io.StringIO(text))


# --- the normaliser -----------------------------------------------------------------------------------


def test_srt_becomes_clean_webvtt() -> None:
    text, count = normalise_subtitles(("\ufeff" + SRT).replace("\n", "\r\n").encode())
    assert count == 3
    assert text.startswith("WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\n<i>Hello</i> world\n")
    assert "Fish &amp; chips <b>now</b>" in text  # escaped, unclosed tag closed, {\an8} dropped
    assert "-- &gt; and --&gt; arrows" in text and "X1" not in text
    captions = parsed(text).captions
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:01.000", "00:00:02.500"),
        ("00:00:03.000", "00:00:04.000"),
        ("00:00:04.020", "00:00:05.000"),
    ]


def test_webvtt_is_kept_valid() -> None:
    source = (
        "WEBVTT - a film\nKind: captions\n\nNOTE written by hand\n\nSTYLE\n::cue { color: red }\n\n"
        "intro\n00:01.000 --> 00:02.000 align:start region:x line:10%\n<v Bob>Hi</v> <c.loud>there</c>\n\n"
        "00:01.500 --> 01:00:03.000\n<u>overlapping is fine in WebVTT\n"
    )
    text, count = normalise_subtitles(source.encode())
    assert count == 2
    assert "00:00:01.000 --> 00:00:02.000 align:start line:10%\nHi there\n" in text
    assert "<u>overlapping is fine in WebVTT</u>" in text and "STYLE" not in text and "NOTE" not in text
    assert len(parsed(text).captions) == 2


def test_line_numbered_errors() -> None:
    bad = (
        "1\n00:00:01,000 --> 00:00:02,000\nfine\n\n"  # lines 1-3
        "2\n00:00:0x,000 --> 00:00:03,000\nbad timestamp\n\n"  # 5-7
        "3\n00:00:05,000 --> 00:00:04,000\nbackwards\n\n"  # 9-11
        "4\n00:00:06,000 --> 00:00:07,000\n\n"  # 13-14: no text
        "5\n00:00:08,000 --> 00:00:09,000\nno blank line after me\n"  # 16-18
        "6\n00:00:10,000 --> 00:00:11,000\nsix\n\n"  # 19-21
        "7\n00:00:10,500 --> 00:00:12,000\noverlaps six\n"  # 23-25
    )
    assert errors_of(bad) == [
        (6, "timestamp '00:00:0x,000' is not HH:MM:SS,mmm (minutes and seconds 00-59)"),
        (10, "the cue ends at 00:00:04,000, before it starts at 00:00:05,000"),
        (14, "the cue has no text"),
        (19, "a new cue starts here without a blank line before it"),
        (24, "the cue starts at 00:00:10.500 while the cue of line 20 runs until 00:00:11.000; " + OVERLAP),
    ]


def test_small_overlaps_are_repaired_and_order_is_checked() -> None:
    text, _ = normalise_subtitles(
        b"1\n00:00:01,000 --> 00:00:02,030\na\n\n2\n00:00:02,000 --> 00:00:03,000\nb\n"
    )
    assert "00:00:01.000 --> 00:00:02.000\na" in text
    assert errors_of("00:00:05,000 --> 00:00:06,000\nlate\n\n00:00:01,000 --> 00:00:02,000\nearly\n") == [
        (4, "the cue starts at 00:00:01.000, before the cue of line 1 (00:00:05.000); " + ORDER)
    ]


def test_encoding_and_size_errors() -> None:
    latin = "1\n00:00:01,000 --> 00:00:02,000\nCaf\xe9 cr\xe8me\n".encode("latin-1")
    assert errors_of(latin) == [(3, "byte 0xE9 at column 4 is not UTF-8; save the file as UTF-8")]
    utf16 = "1\n00:00:01,000 --> 00:00:02,000\nCafé\n"
    assert normalise_subtitles(utf16.encode("utf-16"))[1] == 1  # with a BOM it is fine
    assert errors_of(utf16.encode("utf-16-le"))[0][1].startswith("contains NUL bytes")
    assert errors_of(b"") == [(1, "the file is empty")]
    assert errors_of(b"x" * (MAX_SUBTITLE_BYTES + 1))[0][1].startswith("the file has 2097153 bytes")
    assert errors_of("<html><body>not subtitles in any way</body></html>\n") == [
        (
            1,
            "expected a timing line like '00:00:01,000 --> 00:00:02,500', "
            "found '<html><body>not subtitles in any way</b…'",
        )
    ]
    assert errors_of("WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n")[0][0] == 1
    assert errors_of("WEBVTT\n00:01.000 --> 00:02.000\nx\n") == [
        (2, "the header must be followed by a blank line before the first cue")
    ]
    assert errors_of("WEBVTT\n\n00:00:01,000 --> 00:00:02.000\nx\n") == [
        (3, "timestamp '00:00:01,000' is not [HH:]MM:SS.mmm (minutes and seconds 00-59)")
    ]


# --- the API ------------------------------------------------------------------------------------------


async def test_subtitle_tracks(
    client: httpx.AsyncClient, manager: SignedIn, movie: str, db: psycopg.AsyncConnection[Any]
) -> None:
    base = {"title_id": movie, "language": "pt-br", "label": "Português"}
    added = await client.post(f"{API}/subtitles", json={**base, "content": SRT}, headers=manager.headers)
    assert added.status_code == 201, added.text
    track = added.json()
    assert (track["language"], track["cue_count"], track["forced"], track["sdh"]) == (
        "pt-BR",
        3,
        False,
        False,
    )
    assert track["storage_key"] == f"media/subtitles/{track['id']}.vtt"
    served = await storage_call("GET", track["url"])
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/vtt")
    assert served.text.startswith("WEBVTT\n") and len(parsed(served.text).captions) == 3

    forced = await client.post(
        f"{API}/subtitles",
        json={
            **base,
            "label": "Português (forced)",
            "forced": True,
            "content_base64": base64.b64encode(SRT.encode()).decode(),
        },
        headers=manager.headers,
    )
    assert forced.status_code == 201 and forced.json()["forced"] is True
    replaced = await client.post(
        f"{API}/subtitles", json={**base, "content": SRT.split("\n\n")[0]}, headers=manager.headers
    )
    assert replaced.status_code == 201 and replaced.json()["cue_count"] == 1

    listed = (
        await client.get(f"{API}/subtitles", params={"title_id": movie}, headers=manager.headers)
    ).json()
    assert sorted((item["id"], item["forced"]) for item in listed) == sorted(
        [(replaced.json()["id"], False), (forced.json()["id"], True)]
    )
    cursor = await db.execute(
        "select count(*) filter (where deleted_at is not null) from media_subtitles where title_id = %s",
        (movie,),
    )
    assert (await cursor.fetchone()) == (1,)  # the replaced track is kept, soft-deleted

    removed = await client.delete(f"{API}/subtitles/{forced.json()['id']}", headers=manager.headers)
    assert removed.status_code == 204
    gone = await client.delete(f"{API}/subtitles/{forced.json()['id']}", headers=manager.headers)
    assert gone.status_code == 404 and gone.json()["code"] == "subtitles_not_found"
    listed = (
        await client.get(f"{API}/subtitles", params={"title_id": movie}, headers=manager.headers)
    ).json()
    assert [item["id"] for item in listed] == [replaced.json()["id"]]

    # Each change queued a manifest refresh for the title (no re-encode).
    cursor = await db.execute(
        "select count(*) from public.job_queue where kind = 'media.manifests' and payload->>'title_id' = %s",
        (movie,),
    )
    assert (await cursor.fetchone()) == (4,)


async def test_bad_subtitles_are_refused_with_lines(
    client: httpx.AsyncClient, manager: SignedIn, movie: str
) -> None:
    body = {
        "title_id": movie,
        "language": "en",
        "label": "English",
        "content": "1\n00:00:0x,000 --> 00:00:02,000\nhi\n",
    }
    refused = await client.post(f"{API}/subtitles", json=body, headers=manager.headers)
    assert refused.status_code == 422
    problem = refused.json()
    assert problem["code"] == "invalid_subtitles"
    assert problem["errors"] == [
        {"line": 2, "message": "timestamp '00:00:0x,000' is not HH:MM:SS,mmm (minutes and seconds 00-59)"}
    ]
    for bad, code in (
        ({"language": "english"}, "validation_failed"),
        ({"content_base64": "a"}, "validation_failed"),
    ):
        response = await client.post(f"{API}/subtitles", json={**body, **bad}, headers=manager.headers)
        assert response.status_code == 422 and response.json()["code"] == code
    not_base64 = {**body, "content": None, "content_base64": "!!!!"}
    response = await client.post(f"{API}/subtitles", json=not_base64, headers=manager.headers)
    assert response.status_code == 422 and response.json()["code"] == "invalid_base64"


async def test_labels_refuse_control_characters(
    client: httpx.AsyncClient, manager: SignedIn, movie: str
) -> None:
    # Labels reach playlists, the MPD and player menus, where a control character or line break breaks them.
    body = {"title_id": movie, "language": "en", "content": "WEBVTT\n\n00:01.000 --> 00:02.000\nhi\n"}
    for label in ("\u0001", "Eng\u0001lish", "Eng\nlish", "Eng\x00lish", "Eng\x85lish", "Eng\u2028lish"):
        refused = await client.post(
            f"{API}/subtitles", json={**body, "label": label}, headers=manager.headers
        )
        assert refused.status_code == 422, label
        problem = refused.json()
        assert problem["code"] == "validation_failed", label
        assert [error["type"] for error in problem["errors"]] == ["invalid_text"], label
    accepted = await client.post(
        f"{API}/subtitles", json={**body, "label": " English (CC) "}, headers=manager.headers
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["label"] == "English (CC)"
