"""Markdown summaries of what a stage produced, read back from its artifact: the dataset card, the
training curve, the eval table, or the manifest's stats. The Prefect flow publishes them; anything else
that wants a human-readable view of an artifact can use them too."""

from __future__ import annotations

import base64
import csv
import io
import json

from rge_core.artifacts.store import Artifact
from rge_core.training.files import CURVE

_CURVE_POINTS = 10
_CURVE_COLUMNS = ("step", "loss", "lm_loss", "emb_loss", "accuracy", "samples_per_s")


def artifact_summary(artifact: Artifact) -> str:
    manifest = artifact.manifest
    files = manifest.files
    if manifest.kind == "dataset" and "README.md" in files:
        return artifact.read_bytes("README.md").decode()
    if manifest.kind == "eval":
        return f"# Evaluation {artifact.id}\n\n" + artifact.read_bytes("summary.md").decode()
    body = stats_markdown(manifest.stats)
    if manifest.kind == "model" and "metrics.jsonl" in files:
        records = [json.loads(line) for line in artifact.read_bytes("metrics.jsonl").decode().splitlines()]
        body += "\n## Training curve\n\n" + training_curve_markdown(records)
        if CURVE in files:
            body += "\n" + png_markdown(artifact.read_bytes(CURVE), "training curve")
    return f"# {manifest.kind.capitalize()} {artifact.id}\n\n{body}"


def stats_markdown(stats: dict) -> str:
    lines = [
        f"- **{key}**: {json.dumps(value) if isinstance(value, (dict, list)) else value}"
        for key, value in stats.items()
    ]
    return "\n".join(lines) + "\n"


def training_curve_markdown(records: list[dict]) -> str:
    """About ten evenly spaced logged steps, always including the first and the last."""
    stride = max(1, -(-len(records) // _CURVE_POINTS))
    picked = records[::stride] + ([records[-1]] if (len(records) - 1) % stride else [])
    header = "| " + " | ".join(_CURVE_COLUMNS) + " |\n|" + " ---: |" * len(_CURVE_COLUMNS) + "\n"
    rows = ["| " + " | ".join(_format(r.get(c)) for c in _CURVE_COLUMNS) + " |" for r in picked]
    return header + "\n".join(rows) + "\n"


def png_markdown(png: bytes, alt: str) -> str:
    """An inline image: the Prefect UI renders data URIs, and a file:// link from its page would not load."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})\n"


def _format(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def eval_score_rows(artifact: Artifact) -> list[dict]:
    """The per-dataset score table of an eval artifact (summary.csv), one dict per dataset."""
    return list(csv.DictReader(io.StringIO(artifact.read_bytes("summary.csv").decode())))
