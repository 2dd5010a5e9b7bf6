"""Plain items as model inputs. An item is a mapping with `text` and/or `image` (a path, a PIL image or None)
and, optionally, `dataset` (the name rewrite rules are looked up by); other keys (an id, a label) are ignored.
MMEB's `<|image_1|>` placeholder may mark where the image goes; without it the image comes first. Query and
Target objects (the eval's own, already rewritten) are taken as they are.

    queries = as_queries([{"text": "What is shown?", "image": "cat.jpg"}], rewrites=None)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from rge_core.data.rewrites import RewriteFile
from rge_core.data.special_text import RESERVED
from rge_core.model.inputs import ImageLike, Query, Target

Item = Mapping[str, Any] | Query | Target


def _text(item: Mapping[str, Any], where: str) -> str:
    text = item.get("text")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"{where}: field 'text': expected a string or None, got {type(text).__name__}")
    found = [token for token in RESERVED if token in (text or "")]
    if found:
        raise ValueError(
            f"{where}: field 'text': contains the model's special tokens {' '.join(found)}, which the chat "
            "template would read as markers"
        )
    return text or ""


def _image(item: Mapping[str, Any], where: str) -> ImageLike:
    image = item.get("image")
    if image is None or isinstance(image, (str, Path, Image.Image)):
        return image or None  # "" means no image, as in MMEB's path columns
    raise ValueError(f"{where}: field 'image': expected a path, a PIL image or None, got {type(image).__name__}")


def _plain(item: Item, index: int, side: str, rewrites: RewriteFile | None) -> tuple[str, ImageLike]:
    where = f"{side} item {index}"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected a mapping with 'text' and/or 'image', got {type(item).__name__}")
    text, image = _text(item, where), _image(item, where)
    if not text and image is None:
        raise ValueError(f"{where}: field 'text': the item has neither text nor an image")
    if rewrites is not None:  # eval's rules: the dataset's, then every text of the side ends with a newline
        text = rewrites.rewrite(str(item.get("dataset") or ""), text)
    return text, image


def as_queries(items: Sequence[Item], rewrites: RewriteFile | None = None) -> list[Query]:
    return [
        item if isinstance(item, Query) else Query(*_plain(item, index, "query", rewrites))
        for index, item in enumerate(items)
    ]


def as_targets(items: Sequence[Item], rewrites: RewriteFile | None = None) -> list[Target]:
    return [
        item if isinstance(item, Target) else Target(*_plain(item, index, "candidate", rewrites))
        for index, item in enumerate(items)
    ]
