"""Experiment tracking on rank 0 (`train.report_to`): every logged step's scalars and sampled rationales go
to TensorBoard event files inside the model artifact, and to W&B or MLflow when asked. W&B and MLflow are
optional extras, imported only when named; `check_reporters` fails on a missing one before any launch."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

TENSORBOARD = "tensorboard"  # the event files' folder in the model artifact
# metrics.jsonl keys that become scalars, logged under "train/<key>".
SCALARS = (
    "loss",
    "lm_loss",
    "emb_loss",
    "lr",
    "accuracy",
    "samples_per_s",
    "generated_tokens_per_s",
    "budget_hit_share",
)


class Tracker(Protocol):
    def log(self, step: int, scalars: dict[str, float], rationales: str) -> None: ...

    def close(self) -> None: ...


def check_reporters(report_to: Iterable[str]) -> None:
    """Import each optional reporter's package now, so a missing one fails in seconds with the extra to install."""
    for name in report_to:
        if name == TENSORBOARD:
            continue  # a core dependency
        try:
            importlib.import_module(name)
        except ImportError:
            raise ValueError(f'train.report_to: {name} is not installed; pip install -e ".[{name}]"') from None


def scalars_of(record: dict) -> dict[str, float]:
    return {f"train/{key}": float(record[key]) for key in SCALARS}


def rationales_text(samples: list[dict]) -> str:
    """A step's sampled rationales as markdown (TensorBoard renders text summaries as markdown)."""
    return "\n\n".join(
        f"**{s['pair_id']}** ({s['num_tokens']} tokens{', budget hit' if s['budget_hit'] else ''}): {s['rationale']}"
        for s in samples
    )


class TensorBoardTracker:
    def __init__(self, folder: Path, start: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run redoes the steps after `start`: purge_step hides their earlier events.
        self.writer = SummaryWriter(str(folder), purge_step=start + 1 if start else None)

    def log(self, step: int, scalars: dict[str, float], rationales: str) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)
        if rationales:
            self.writer.add_text("train/rationales", rationales, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    """One W&B run per model artifact (id = the artifact id), continued on resume; W&B drops the redone
    steps it has already seen. WANDB_MODE, WANDB_DIR and WANDB_PROJECT apply as usual."""

    def __init__(self, run_name: str, config: dict) -> None:
        import wandb

        project = os.environ.get("WANDB_PROJECT", "rge")
        self.run = wandb.init(project=project, name=run_name, id=run_name, resume="allow", config=config)

    def log(self, step: int, scalars: dict[str, float], rationales: str) -> None:
        self.run.log({**scalars, **({"train/rationales": rationales} if rationales else {})}, step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowTracker:
    """An MLflow run named after the model artifact (MLFLOW_TRACKING_URI applies); a resume starts a new one."""

    def __init__(self, run_name: str, config: dict) -> None:
        import mlflow

        self.mlflow = mlflow
        mlflow.start_run(run_name=run_name)
        mlflow.log_dict(config, "train_config.json")

    def log(self, step: int, scalars: dict[str, float], rationales: str) -> None:
        self.mlflow.log_metrics(scalars, step=step)
        if rationales:
            self.mlflow.log_text(rationales, f"rationales/step-{step}.md")

    def close(self) -> None:
        self.mlflow.end_run()


def open_trackers(report_to: Iterable[str], root: Path, start: int, run_name: str, config: dict) -> list[Tracker]:
    """The trackers `report_to` names (each once), logging into the trainer's output folder `root`."""
    trackers: list[Tracker] = []
    for name in dict.fromkeys(report_to):
        if name == TENSORBOARD:
            trackers.append(TensorBoardTracker(root / TENSORBOARD, start))
        elif name == "wandb":
            trackers.append(WandbTracker(run_name, config))
        else:
            trackers.append(MlflowTracker(run_name, config))
    return trackers
