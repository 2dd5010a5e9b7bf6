"""rge: Reasoning Guided Embeddings — curation, training and evaluation of MLLM embedders that think first.

`from rge_core import Embedder` is the embedding API (rge_core/embedder.py, docs/inference.md); it is imported
on first use, so `import rge_core` stays light (no torch, no transformers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rge_core.embedder import Embedder

__version__ = "0.1.0"
__all__ = ["Embedder", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Embedder":
        from rge_core.embedder import Embedder

        return Embedder
    raise AttributeError(f"module 'rge_core' has no attribute {name!r}")
