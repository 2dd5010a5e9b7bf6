"""The checkpoint's processor with the pipeline's image resolution bounds (model.min_pixels / max_pixels).

Every stage loads its processor here, and vLLM gets the same bounds as processor kwargs, so an image
becomes the same number of visual tokens in curation, training and eval.
"""

from __future__ import annotations

from typing import Any


def image_size_kwargs(min_pixels: int = 0, max_pixels: int = 0) -> dict[str, int]:
    """Qwen-VL's `min_pixels` / `max_pixels` processor kwargs for the bounds that are set (0: unset)."""
    if min_pixels < 0 or max_pixels < 0:
        raise ValueError(f"model.min_pixels / model.max_pixels must be >= 0, got {min_pixels} / {max_pixels}")
    if min_pixels and max_pixels and min_pixels > max_pixels:
        raise ValueError(f"model.min_pixels ({min_pixels}) exceeds model.max_pixels ({max_pixels})")
    return {key: value for key, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if value}


def load_processor(path: str, min_pixels: int = 0, max_pixels: int = 0) -> Any:
    """AutoProcessor of `path` whose image processor resizes into [min_pixels, max_pixels] where set."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(path)
    bounds = image_size_kwargs(min_pixels, max_pixels)
    if not bounds:
        return processor
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None:
        raise ValueError(f"{path}: model.min_pixels / max_pixels are set but the checkpoint has no image processor")
    # transformers 5 reads the bounds from the image processor's `size` (per-call pixel kwargs are deprecated);
    # a bound left at 0 keeps the checkpoint's own.
    size = {
        "shortest_edge": bounds.get("min_pixels", image_processor.size.shortest_edge),
        "longest_edge": bounds.get("max_pixels", image_processor.size.longest_edge),
    }
    return AutoProcessor.from_pretrained(path, size=size)


def chat_template_of(processor: Any) -> str | None:
    """Multimodal checkpoints keep the chat template on the processor, text-only ones on the tokenizer."""
    tokenizer = getattr(processor, "tokenizer", processor)
    return getattr(processor, "chat_template", None) or tokenizer.chat_template
