"""Batches of similar length: items ordered by their prompt's token count (text tokens plus the image's
tokens within the processor's pixel bounds), run in batches, results returned in the items' order. Fewer
pad tokens per batch; each item's result is the same up to float rounding.

    lengths = prompt_lengths(rge, prompts, images)
    vectors = in_batches(items, 16, lambda batch: encode(batch), lengths)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from rge_core.model.rge_model import RGEModel


def image_tokens(rge: RGEModel, image) -> int:
    """About how many tokens an image becomes: its area within the processor's pixel bounds, per merged patch."""
    if image is None:
        return 0
    if isinstance(image, Image.Image):
        width, height = image.size
    else:
        with Image.open(image) as opened:  # reads the header only
            width, height = opened.size
    processor = rge.processor.image_processor
    bounds = processor.size
    area = min(max(width * height, bounds.shortest_edge or 0), bounds.longest_edge or width * height)
    return area // (processor.patch_size * processor.merge_size) ** 2


def prompt_lengths(rge: RGEModel, prompts: Sequence[str], images: Sequence) -> list[int]:
    tokens = rge.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    return [len(ids) + image_tokens(rge, image) for ids, image in zip(tokens, images, strict=True)]


def in_batches(
    items: Sequence, batch_size: int, run: Callable[[list], Iterable], lengths: Sequence[int] | None = None
) -> list:
    """`run` over batches of `items` (by ascending `lengths` when given); per-item results in the items' order."""
    order = sorted(range(len(items)), key=lambda i: lengths[i]) if lengths is not None else list(range(len(items)))
    results: list = [None] * len(items)
    for start in range(0, len(order), batch_size):
        picked = order[start : start + batch_size]
        for index, result in zip(picked, run([items[i] for i in picked]), strict=True):
            results[index] = result
    return results
