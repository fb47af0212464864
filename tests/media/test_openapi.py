"""Every media endpoint is documented: a summary and the stable error codes it can answer with."""

from __future__ import annotations

from api.media import app as media_app


def test_media_endpoints_document_summaries_and_errors() -> None:
    spec = media_app.openapi()
    operations = {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    assert len(operations) == 10
    for key, operation in operations.items():
        assert operation.get("summary"), key
        text = str(operation["responses"])
        assert "permission_denied" in text and "service_unavailable" in text, key
    expected = {
        ("POST", "/api/v1/media/uploads"): ["title_not_found", "episode_not_of_title", "upload_too_large"],
        # A part sent again between the listing and the assembly: storage answers invalid_part.
        ("POST", "/api/v1/media/uploads/{uploadId}/complete"): [
            "parts_incomplete",
            "size_mismatch",
            "invalid_part",
        ],
        ("DELETE", "/api/v1/media/uploads/{uploadId}"): ["upload_completed"],
        ("POST", "/api/v1/media/subtitles"): ["invalid_subtitles", "episode_not_found"],
    }
    for key, codes in expected.items():
        text = str(operations[key]["responses"])
        for code in codes:
            assert code in text, (key, code)
    assert "400" in operations[("POST", "/api/v1/media/uploads/{uploadId}/complete")]["responses"]
    # Every operation with a path parameter or a body can answer 422 validation_failed (a malformed id).
    for (method, path), operation in operations.items():
        if "{" in path or method == "POST":
            assert "validation_failed" in str(operation["responses"].get("422")), (method, path)
