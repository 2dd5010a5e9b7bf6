"""What a stage shows in the Prefect UI: a markdown summary, a link to its artifact folder, the eval score
table, and a progress bar while a long stage runs. Artifact keys: lowercase letters, digits, dashes."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from rge_core.artifacts.store import Artifact
from rge_core.stages.summaries import artifact_summary, eval_score_rows


def artifact_key(*parts: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def _link(url: str) -> str:
    return url if "://" in url else Path(url).resolve().as_uri()


def publish_stage(stage: str, artifact: Artifact, reused: bool) -> None:
    origin = "reused: this version was already complete" if reused else "built by this run"
    create_markdown_artifact(
        markdown=f"{artifact_summary(artifact)}\n_{artifact.id}: {origin}._\n",
        key=artifact_key(stage, "summary"),
        description=f"{stage}: {artifact.id}",
    )
    create_link_artifact(link=_link(artifact.url), link_text=artifact.id, key=artifact_key(stage, "artifact"))
    if artifact.manifest.kind == "eval":
        create_table_artifact(
            table=eval_score_rows(artifact),
            key=artifact_key("eval", "scores"),
            description=f"per-dataset scores (%) of {artifact.id}",
        )
        if "diff.md" in artifact.manifest.files:  # evaluated with eval.compare_to
            create_markdown_artifact(
                markdown=artifact.read_bytes("diff.md").decode(),
                key=artifact_key("eval", "diff"),
                description=f"{artifact.id} against the eval it was compared to",
            )


class ProgressArtifact:
    """A progress listener (rge_core.progress) that keeps one Prefect progress artifact per stage up to
    date; created on the first report, so a skipped stage shows none."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.artifact_id: UUID | None = None
        self.percent = -1.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        percent = round(100.0 * done / max(total, 1), 1)
        if percent == self.percent:
            return
        self.percent = percent
        if self.artifact_id is None:
            self.artifact_id = create_progress_artifact(  # type: ignore[assignment]  # sync_compatible: a UUID
                percent, key=artifact_key(self.stage, "progress"), description=f"{self.stage} progress"
            )
        else:
            update_progress_artifact(self.artifact_id, percent)
