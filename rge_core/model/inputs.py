"""Chat inputs for the RGE model: queries think before `<emb>`, targets embed straight away.

A query renders as  <user turn: instruction + text with its image> <assistant: {rationale}<emb>>
and a target as    <user turn: text with its image>                <assistant: <emb>>.
MMEB texts mark their image with Phi-3-V's `<|image_1|>`; it becomes the backbone's image tokens, or
disappears when the item has no image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import overload

from PIL import Image

from rge_core.model.special_tokens import EMB_TOKEN, MMEB_IMAGE_PLACEHOLDER, QWEN_IMAGE_TOKENS

ImageLike = Image.Image | str | Path | None


@dataclass(frozen=True)
class Query:
    text: str
    image: ImageLike = None
    instruction: str = ""


@dataclass(frozen=True)
class Target:
    text: str
    image: ImageLike = None


def user_content(text: str, has_image: bool) -> str:
    """Replace MMEB's image placeholder by the backbone's image tokens (or drop it without an image)."""
    if not has_image:
        return text.replace(MMEB_IMAGE_PLACEHOLDER, "").strip()
    if MMEB_IMAGE_PLACEHOLDER in text:
        return text.replace(MMEB_IMAGE_PLACEHOLDER, QWEN_IMAGE_TOKENS, 1).replace(MMEB_IMAGE_PLACEHOLDER, "")
    return QWEN_IMAGE_TOKENS + text


def query_content(query: Query) -> str:
    text = f"{query.instruction}\n{query.text}" if query.instruction else query.text
    return user_content(text, query.image is not None)


@overload
def load_image(image: Image.Image | str | Path) -> Image.Image: ...
@overload
def load_image(image: None) -> None: ...
def load_image(image: ImageLike) -> Image.Image | None:
    if image is None or isinstance(image, Image.Image):
        return image.convert("RGB") if image is not None else None
    with Image.open(image) as opened:
        return opened.convert("RGB")


def assistant_suffix(rationale: str | None) -> str:
    """What follows the generation prompt: the rationale (if any), then `<emb>`."""
    return f"{rationale or ''}{EMB_TOKEN}"
