"""Is this image usable? Answered from its header and its last bytes, not by decoding it: Pillow's `open`
reads the size and mode only, and a PNG, JPEG, GIF, WebP or BMP that was cut short lacks its end marker (or
the length its header promises). Only a file that looks cut short is decoded, to be sure. About 0.1 ms per
image, so ingest checks every image and curation and eval every image they are about to use.

Too large is above `pixel_cap(model.max_pixels)`: every stage resizes images down to model.max_pixels, so
one 64 times larger (8 times each side) is kept for crops and odd aspect ratios, and anything beyond only
costs memory to decode (a 12000 x 12000 PNG took curation from 1.9 to 4.4 GB). Never above Pillow's own
bomb threshold (Image.MAX_IMAGE_PIXELS, ~89 Mpx), which is also the cap when max_pixels is 0.

    problem = header_problem(path, "images/CIRR/x.png", pixel_cap(config.model.max_pixels))
"""

from __future__ import annotations

import os
import struct
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from rge_core.messages import quoted

PIXEL_HEADROOM = 64  # times model.max_pixels
_TAIL = 64  # bytes read from the end of the file


def pixel_cap(max_pixels: int) -> int:
    limit = Image.MAX_IMAGE_PIXELS or 89_478_485  # None disables Pillow's check; keep its default then
    return min(limit, PIXEL_HEADROOM * max_pixels) if max_pixels else limit


def _looks_complete(path: str | Path, image_format: str | None, size: int) -> bool:
    """Whether the file ends as its format says a whole file ends (formats without a marker: yes)."""
    with open(path, "rb") as handle:
        head = handle.read(16)
        handle.seek(max(size - _TAIL, 0))
        tail = handle.read()
    if image_format == "PNG":
        return tail.endswith(b"IEND\xaeB`\x82")
    if image_format == "JPEG":
        return tail.rstrip(b"\x00").endswith(b"\xff\xd9")  # the end-of-image marker, padding aside
    if image_format == "GIF":
        return tail.endswith(b";")
    if image_format == "WEBP":
        return size >= 8 + struct.unpack_from("<I", head, 4)[0]
    if image_format == "BMP":
        return size >= struct.unpack_from("<I", head, 2)[0]
    return True


def header_problem(path: str | Path, rel_path: str, cap: int) -> str | None:
    """Why the image at `path` (shown as `rel_path`) is unusable, or None: not an image, truncated, or above
    `cap` pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the cap below decides
            with Image.open(path) as image:
                width, height = image.size
                if width * height > cap:
                    return (
                        f"image {quoted(rel_path)} is {width} x {height} = {width * height} pixels, above the cap of "
                        f"{cap} ({PIXEL_HEADROOM} x model.max_pixels, at most Pillow's bomb threshold)"
                    )
                if not width or not height:
                    return f"image {quoted(rel_path)} is {width} x {height} pixels"
                if not _looks_complete(path, image.format, os.path.getsize(path)):
                    image.load()  # decoded only when cut short by the look of it: Pillow then says so
    except Image.DecompressionBombError as error:
        return f"image {quoted(rel_path)} is larger than Pillow decodes: {error}"
    except UnidentifiedImageError:
        return f"image {quoted(rel_path)} is not an image Pillow can read"
    except (OSError, ValueError, SyntaxError, struct.error) as error:
        reason = "truncated image" if "truncated" in str(error) else "undecodable image"
        return f"{reason} {quoted(rel_path)}: {error}"
    return None
