"""Render one `pairs` row with its prompt set into chat message parts, and check texts against the set's format.

    rendered = render_pair(prompt_set, pair)   # pair: a row of the pairs table (data_schemas/schemas.py)
    rendered.parts  # [{"type": "image", "side": "query"}, {"type": "text", "text": "..."}, ...]

Parts follow the OpenAI/transformers chat content convention plus `side`, so the generator knows which
image (query or target) goes where; turning them into a model prompt is the generator's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rge_core.prompts.prompt_set import (
    QUERY_IMAGE,
    TARGET_IMAGE,
    PromptSet,
    check_subsets,
    render_template,
    template_context,
)

# MMEB (Phi-3-V) marks images inside texts; templates place images through the markers instead.
_PLACEHOLDER = re.compile(r"<\|image_\d+\|>")
_MARKERS = re.compile(f"({re.escape(QUERY_IMAGE)}|{re.escape(TARGET_IMAGE)})")
_SIDES = {QUERY_IMAGE: "query", TARGET_IMAGE: "target"}
# Conditional lines that render empty leave runs of blank lines behind; one blank line is enough.
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*)+\n")


@dataclass(frozen=True)
class RenderedPrompt:
    family: str
    template_hash: str
    parts: list[dict[str, str]]
    template: str  # template file name inside the set, for the rationale row's `template` column


def clean_text(text: str) -> str:
    """MMEB text without its image placeholder, stripped."""
    return _PLACEHOLDER.sub("", text).strip()


def render_pair(prompt_set: PromptSet, pair: dict[str, Any]) -> RenderedPrompt:
    """Render `pair` with the template its subset maps to; images come from non-empty qry_image/pos_image."""
    subset = pair["subset"]
    check_subsets(prompt_set, [subset])
    family = prompt_set.mapping[subset]
    context = template_context(
        subset,
        family,
        clean_text(pair["qry_text"]),
        clean_text(pair["pos_text"]),
        bool(pair["qry_image"]),
        bool(pair["pos_image"]),
        prompt_set.output_description,
    )
    template = prompt_set.template_files[family]
    text = render_template(prompt_set.templates[family], str(prompt_set.path / template), context)
    return RenderedPrompt(family, prompt_set.template_hashes[family], split_parts(text), template)


def split_parts(text: str) -> list[dict[str, str]]:
    """Cut rendered text at the image markers: image parts in template order, whitespace-only texts dropped."""
    parts: list[dict[str, str]] = []
    for piece in _MARKERS.split(text.strip()):
        if piece in _SIDES:
            parts.append({"type": "image", "side": _SIDES[piece]})
        elif piece.strip():
            parts.append({"type": "text", "text": _BLANK_LINES.sub("\n\n", piece)})
    return parts


def matches_format(prompt_set: PromptSet, text: str) -> bool:
    """Whether the whole `text` matches the set's declared output format."""
    return re.fullmatch(prompt_set.output_regex, text) is not None
