"""Rationale generators behind one interface (base.Generator): vLLM, transformers, or existing texts.

from rge_core.generation import GenerationRequest, build_generator
"""

from rge_core.generation.base import GenerationRequest, GenerationResult, Generator, build_generator

__all__ = ["GenerationRequest", "GenerationResult", "Generator", "build_generator"]
