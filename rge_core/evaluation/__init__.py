"""Evaluation: encode MMEB-eval datasets with an embedder, score them (Precision@1 and friends), report."""
