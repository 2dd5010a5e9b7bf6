"""Prompt sets for rationale curation: load + validate + hash (prompt_set.py), render a pair (render.py)."""

from __future__ import annotations

from rge_core.prompts.prompt_set import PromptSet, PromptSetError, check_subsets, load_prompt_set
from rge_core.prompts.render import RenderedPrompt, clean_text, matches_format, render_pair

__all__ = [
    "PromptSet",
    "PromptSetError",
    "RenderedPrompt",
    "check_subsets",
    "clean_text",
    "load_prompt_set",
    "matches_format",
    "render_pair",
]
