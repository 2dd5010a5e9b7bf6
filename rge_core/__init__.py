"""rge: Reasoning Guided Embeddings — curation, training and evaluation of MLLM embedders that think first."""

__version__ = "0.1.0"
