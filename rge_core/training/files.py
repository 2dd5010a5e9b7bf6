"""The files a model artifact's training folder holds, by name (light: read by the stage, the CLI and reports)."""

FINAL_MODEL = "model"  # the merged Hugging Face checkpoint
METRICS = "metrics.jsonl"  # the logged steps
RATIONALE_SAMPLES = "rationale_samples.jsonl"  # what the model sampled at the logged steps
PROGRESS = "progress.json"  # the last step's loss and speed, every step (the progress bar; metrics wait for log_every)
CURVE = "training_curve.png"
