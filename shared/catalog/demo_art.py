"""Generated artwork for the demo catalog: posters, backdrops, stills and portraits drawn with Pillow.

Pillow is imported inside the functions (cold start); nothing deployed imports this module. Every image
is deterministic for its seed (same bytes every run), so re-seeding rewrites identical objects.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

POSTER_SIZE = (600, 900)  # 2:3
BACKDROP_SIZE = (1280, 720)  # 16:9
STILL_SIZE = (960, 540)  # 16:9
PHOTO_SIZE = (400, 600)  # 2:3
_JPEG_QUALITY = 85


def _rng(seed: str) -> random.Random:
    # A stable seed across runs and Python versions (str hashes are randomised per process).
    return random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))  # noqa: S311


def _colour(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _palette(seed: str) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
    """A dark, a light and an accent colour from neighbouring hues: harmonious whatever the seed."""
    rng = _rng(seed)
    hue = rng.random()
    dark = _colour(hue, rng.uniform(0.55, 0.85), rng.uniform(0.12, 0.25))
    light = _colour(hue + rng.uniform(0.06, 0.18), rng.uniform(0.45, 0.75), rng.uniform(0.65, 0.9))
    accent = _colour(hue + rng.choice((0.08, 0.45, 0.5, 0.9)), rng.uniform(0.3, 0.5), 0.96)  # pastel
    return dark, light, accent


def _background(size: tuple[int, int], seed: str, *, vertical: bool, scenery: bool = True) -> Image.Image:
    """A two-colour gradient, soft glows, a sun disc and a ridge silhouette; dark at the bottom for text."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = _rng(seed + ":shapes")
    dark, light, accent = _palette(seed)
    width, height = size
    mask = Image.linear_gradient("L")  # 256x256, black at the top
    if not vertical:
        mask = mask.rotate(90)
    canvas = Image.composite(Image.new("RGB", size, dark), Image.new("RGB", size, light), mask.resize(size))
    # Each glow is an alpha mask drawn small, blurred there and scaled up (smooth and cheap), then used
    # to paint a solid colour: blurring RGBA directly would bleed black in from the transparent pixels.
    small = (max(1, width // 8), max(1, height // 8))
    for index in range(rng.randint(3, 5)):
        glow = Image.new("L", small, 0)
        radius = rng.uniform(0.1, 0.3) * small[0]
        x, y = rng.uniform(0, small[0]), rng.uniform(0, small[1] * 0.6)
        ImageDraw.Draw(glow).ellipse(
            (x - radius, y - radius, x + radius, y + radius), fill=rng.randint(50, 110)
        )
        glow = glow.filter(ImageFilter.GaussianBlur(max(1, small[0] // 16)))
        canvas.paste(accent if index == 0 else light, (0, 0), glow.resize(size, Image.Resampling.BILINEAR))
    draw = ImageDraw.Draw(canvas)
    if not scenery:
        return canvas
    # The "sun": a crisp disc in the accent colour above the horizon.
    radius = rng.uniform(0.16, 0.26) * min(width, height)
    x, y = rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.45) * height
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=accent)
    # A ridge line across the frame, filled down to the bottom in the dark colour.
    points = [(0.0, rng.uniform(0.5, 0.65) * height)]
    for step in range(1, 9):
        points.append((width * step / 8, points[-1][1] + rng.uniform(-0.06, 0.06) * height))
    draw.polygon([*points, (width, height), (0, height)], fill=dark)
    shade = Image.linear_gradient("L").resize(size).point(lambda v: max(0, v - 120) * 2)
    canvas.paste((0, 0, 0), (0, 0), shade)
    return canvas


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)  # Pillow's bundled font: no font files needed


def _drawable(text: str) -> str:
    """`text` folded to what the bundled font has: ASCII and the middle dot (it has no accented letters)."""
    folded = []
    for char in text:
        if char.isascii() or char == "\u00b7":
            folded.append(char)
        else:
            base = unicodedata.normalize("NFKD", char)[:1]
            folded.append(base if base.isascii() else "")
    return "".join(folded)


def _wrap(draw: ImageDraw.ImageDraw, text: str, size: int, max_width: float) -> tuple[list[str], int]:
    """Lines of `text` that fit `max_width`, shrinking the font until the longest word fits."""
    while True:
        font = _font(size)
        lines: list[str] = []
        for word in text.split():
            candidate = f"{lines[-1]} {word}" if lines else word
            if lines and draw.textlength(candidate, font=font) <= max_width:
                lines[-1] = candidate
            else:
                lines.append(word)
        if size <= 14 or all(draw.textlength(line, font=font) <= max_width for line in lines):
            return lines, size
        size -= 4


def _text_block(
    image: Image.Image, title: str, caption: str, *, size: int, left: float, bottom: float, max_width: float
) -> None:
    """The title (shadowed, faux-bold by a stroke) above a small caption, anchored at the bottom left."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    lines, size = _wrap(draw, _drawable(title).upper(), size, max_width)
    caption = _drawable(caption)
    caption_font = _font(max(12, size // 3))
    y = bottom - size // 3 - 8
    draw.text((left, y), caption, font=caption_font, fill=(235, 235, 235), anchor="ls")
    y -= size // 3 + 16
    title_font = _font(size)
    for line in reversed(lines):
        draw.text((left + 3, y + 3), line, font=title_font, fill=(0, 0, 0), anchor="ls")
        draw.text(
            (left, y), line, font=title_font, fill="white", anchor="ls", stroke_width=1, stroke_fill="white"
        )
        y -= int(size * 1.1)


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=_JPEG_QUALITY, optimize=False, progressive=True)
    return buffer.getvalue()


def poster(title: str, caption: str, *, seed: str) -> bytes:
    """A 600x900 JPEG poster: vertical gradient, glows, the title at the bottom."""
    image = _background(POSTER_SIZE, seed, vertical=True)
    width, height = POSTER_SIZE
    _text_block(image, title, caption, size=64, left=40, bottom=height - 40, max_width=width - 80)
    return _jpeg(image)


def backdrop(title: str, caption: str, *, seed: str) -> bytes:
    """A 1280x720 JPEG backdrop in the title's colours, the title small at the bottom left."""
    image = _background(BACKDROP_SIZE, seed, vertical=False)
    width, height = BACKDROP_SIZE
    _text_block(image, title, caption, size=56, left=64, bottom=height - 48, max_width=width * 0.55)
    return _jpeg(image)


def still(title: str, caption: str, *, seed: str) -> bytes:
    """A 960x540 JPEG episode still with the episode's name."""
    image = _background(STILL_SIZE, seed, vertical=False)
    width, height = STILL_SIZE
    _text_block(image, title, caption, size=44, left=48, bottom=height - 36, max_width=width * 0.7)
    return _jpeg(image)


def photo(name: str, *, seed: str) -> bytes:
    """A 400x600 JPEG portrait placeholder: a silhouette and the person's initials."""
    from PIL import ImageDraw

    image = _background(PHOTO_SIZE, seed, vertical=True, scenery=False)
    width, height = PHOTO_SIZE
    draw = ImageDraw.Draw(image)
    _, light, _ = _palette(seed)
    shade = tuple(max(0, channel - 60) for channel in light)
    draw.ellipse((width * 0.3, height * 0.18, width * 0.7, height * 0.45), fill=(*shade, 255))
    draw.ellipse((width * 0.12, height * 0.5, width * 0.88, height * 1.1), fill=(*shade, 255))
    initials = "".join(part[0] for part in _drawable(name).split()[:2]).upper()
    draw.text(
        (width / 2, height * 0.78),
        initials,
        font=_font(96),
        fill="white",
        anchor="mm",
        stroke_width=1,
        stroke_fill="white",
    )
    return _jpeg(image)
