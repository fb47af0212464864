"""shared.images.variants.render on real images made with Pillow: the pixel guard runs before any decoding,
and the stored original is re-encoded in its own format without the upload's metadata."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from shared.images import variants
from shared.images.policy import InvalidImage, check_dimensions
from tests.catalog_admin.conftest import encoded


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The sizes of the images Pillow decodes pixels of (ImageFile.load, wrapped: it still decodes)."""
    seen: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def recording(self: ImageFile.ImageFile) -> Any:
        if self.tile:  # pixel data still to decode (load() on a decoded image does nothing)
            seen.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording)
    return seen


def test_the_pixel_limit_refuses_before_decoding(decoded: list[tuple[int, int]]) -> None:
    valid = encoded((400, 300))  # 120,000 pixels, a complete PNG

    with pytest.raises(InvalidImage) as refused:
        variants.render(valid, aspect_ratio=None, widths=(185,), max_pixels=100_000)
    assert refused.value.detail == "Images may have at most 0.1 megapixels."
    assert decoded == []  # refused from the header: no pixel was decoded

    rendered = variants.render(valid, aspect_ratio=None, widths=(185,), max_pixels=120_000)
    assert (rendered.width, rendered.height) == (400, 300)
    assert decoded == [(400, 300)]  # the same image within the limit is decoded (the wrapper sees it)


def test_limits_and_their_messages_are_one() -> None:
    """render and the Cloudinary check (check_dimensions) refuse with the same words."""
    with pytest.raises(InvalidImage) as small:
        variants.render(encoded((99, 400)), aspect_ratio=None, widths=())
    with pytest.raises(InvalidImage) as reported:
        check_dimensions(99, 400, max_pixels=variants.MAX_PIXELS, min_side=variants.MIN_SIDE)
    assert small.value.detail == reported.value.detail == "Images must be at least 100 pixels on each side."
    with pytest.raises(InvalidImage) as big:
        check_dimensions(8000, 6000, max_pixels=variants.MAX_PIXELS, min_side=variants.MIN_SIDE)
    assert big.value.detail == "Images may have at most 40 megapixels."
    check_dimensions(99, 10**6, max_pixels=None, min_side=None)  # no bounds: nothing refused


def test_originals_keep_format_pixels_and_alpha_but_no_metadata() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Someone Private")
    png = encoded((300, 200), mode="RGBA", pnginfo=text)
    assert Image.open(io.BytesIO(png)).info["Author"] == "Someone Private"
    rendered = variants.render(png, aspect_ratio=None, widths=(185,))
    original = Image.open(io.BytesIO(rendered.original))
    assert (rendered.format, original.format, original.mode) == ("png", "PNG", "RGBA")
    assert original.tobytes() == Image.open(io.BytesIO(png)).tobytes()  # lossless, alpha kept
    assert "Author" not in original.info and not original.getexif()

    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make
    webp = encoded((300, 200), "WEBP", mode="RGBA", quality=95, exif=exif.tobytes())
    assert "exif" in Image.open(io.BytesIO(webp)).info
    rendered = variants.render(webp, aspect_ratio=None, widths=())
    original = Image.open(io.BytesIO(rendered.original))
    assert (rendered.format, original.format, original.mode) == ("webp", "WEBP", "RGBA")
    assert "exif" not in original.info

    jpeg = encoded((300, 200), "JPEG", comment=b"shot at home")
    assert Image.open(io.BytesIO(jpeg)).info["comment"] == b"shot at home"
    rendered = variants.render(jpeg, aspect_ratio=None, widths=())
    original = Image.open(io.BytesIO(rendered.original))
    assert (rendered.format, original.format, original.size) == ("jpg", "JPEG", (300, 200))
    assert "comment" not in original.info


def test_a_multi_picture_jpeg_is_stored_as_a_jpeg() -> None:
    """Some cameras write MPO (a JPEG followed by previews): Pillow names it MPO; it is stored as a JPEG."""
    first = Image.linear_gradient("L").resize((400, 300)).convert("RGB")
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[first.resize((160, 120))])
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    rendered = variants.render(buffer.getvalue(), aspect_ratio="16:9", widths=(300,))
    assert rendered.format == "jpg" and Image.open(io.BytesIO(rendered.original)).format == "JPEG"
    sizes = [(variant.name, variant.width, variant.height) for variant in rendered.variants]
    assert sizes == [("w300", 300, 169)]
