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
    """Replace MMEB's image placeholder by the backbone's image tokens (or drop it without an image). Nothing
    else changes: the release's EvalDataset keeps a text's newlines (e.g. the one its rewrites end every text
    with), so "...tench\n" reaches the chat template as it is."""
    if not has_image:
        return text.replace(MMEB_IMAGE_PLACEHOLDER, "")
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
    """The image in RGB, a side under MIN_SIDE stretched to it first."""
    if image is None or isinstance(image, Image.Image):
        return stretch_to_min_side(image).convert("RGB") if image is not None else None
    with Image.open(image) as opened:
        return stretch_to_min_side(opened).convert("RGB")


# Qwen-VL's patch merge covers 28x28 pixels; its processor refuses a smaller side.
MIN_SIDE = 28


def stretch_to_min_side(image: Image.Image) -> Image.Image:
    """The release's `_process_image` (image_resolution "original", as its scripts/evaluate.sh runs it): a width
    under 28 px is stretched to 28, then a height under 28 px, each a resize of its own in the image's own
    mode, before anything else touches it."""
    if image.size[0] < MIN_SIDE:
        image = image.resize((MIN_SIDE, image.size[1]))
    if image.size[1] < MIN_SIDE:
        image = image.resize((image.size[0], MIN_SIDE))
    return image


def assistant_suffix(rationale: str | None) -> str:
    """What follows the generation prompt: the rationale (if any), then `<emb>`."""
    return f"{rationale or ''}{EMB_TOKEN}"
