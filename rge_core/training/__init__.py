"""Training: losses (LM + InfoNCE), GradCache chunked backward, distributed helpers."""
