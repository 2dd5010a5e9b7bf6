"""Request parts -> (prompt text, images) with the model's own chat template.

Both engines render through here, so vLLM and transformers see byte-identical prompts. Image parts become
`{"type": "image"}` entries, which Qwen-VL templates turn into `<|vision_start|><|image_pad|><|vision_end|>`;
each engine's processor then expands `<|image_pad|>` to the image's patch count.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from rge_core.generation.base import MAX_IMAGES
from rge_core.model.inputs import load_image
from rge_core.model.processor import chat_template_of, load_processor


def load_chat_processor(model: str, min_pixels: int = 0, max_pixels: int = 0) -> tuple[Any, str | None]:
    """The checkpoint's processor (a tokenizer for text-only models), with the image bounds, and its chat template."""
    processor = load_processor(model, min_pixels, max_pixels)
    return processor, chat_template_of(processor)


def render_prompt(
    processor_or_tokenizer: Any, chat_template: str | None, parts: Sequence[dict], system: str | None = None
) -> tuple[str, list[Image.Image]]:
    """The prompt up to the assistant header (generation prompt added) and the RGB images, in part order."""
    content: list[dict] = []
    images: list[Image.Image] = []
    for part in parts:
        if part.get("type") == "text":
            content.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image":
            content.append({"type": "image"})
            images.append(load_image(part["path"]))
        else:
            raise ValueError(f"unknown content part {part!r}; expected type 'text' or 'image'")
    if len(images) > MAX_IMAGES:
        raise ValueError(f"{len(images)} images in one request; at most {MAX_IMAGES} are supported")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": content})
    tokenizer = getattr(processor_or_tokenizer, "tokenizer", processor_or_tokenizer)
    prompt = tokenizer.apply_chat_template(
        messages, chat_template=chat_template, add_generation_prompt=True, tokenize=False
    )
    return prompt, images
