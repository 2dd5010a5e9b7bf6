"""Stage 4, train: dataset + base model -> a trained `model` artifact (merged HF checkpoint in model/,
step-named checkpoints, metrics.jsonl, rationale_samples.jsonl (what the model sampled while it trained),
TensorBoard event files in tensorboard/, training_curve.png, the trainer log). Resumable: a rerun after a
kill continues from the newest complete checkpoint with the same data order.

    rge train --config configs/tiny.yaml [--set train.method=baseline] [--set train.launch.nproc=2]
"""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from rge_core import progress
from rge_core.artifacts.local import build_folder, image_root
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.verify import folder_identity
from rge_core.builds import StageSpec
from rge_core.config.schema import Config, versioned
from rge_core.sources import model_folder
from rge_core.stages.declaration import StageDecl
from rge_core.training.files import CURVE, FINAL_MODEL, METRICS, PROGRESS

_CODE = ["rge_core/training", "rge_core/model", "rge_core/stages/train.py"]


def _summary(records: list[dict]) -> dict:
    last = records[-1]
    return {
        "steps": last["step"],
        "final_loss": round(last["loss"], 4),
        "final_lm_loss": round(last["lm_loss"], 4),
        "final_emb_loss": round(last["emb_loss"], 4),
        "first_emb_loss": round(records[0]["emb_loss"], 4),
        "mean_samples_per_s": round(sum(r["samples_per_s"] for r in records) / len(records), 3),
    }


def _check_batches(config: Config, dataset_url: str) -> None:
    """Fail on an impossible batching here, in seconds, not in every trainer process after the launch."""
    from rge_core.training.data import check_batching

    with fsspec.open(dataset_url, "rb") as handle:
        subsets = pq.read_table(handle, columns=["subset"]).column("subset").to_pylist()
    # A DeepSpeed hostfile may hold more processes than nproc * nnodes; the trainer checks again.
    check_batching(
        subsets, config.train.batching, config.train.batch_size * config.train.launch.nproc * config.train.launch.nnodes
    )


def _check_settings(config: Config) -> None:
    """Settings the trainer processes would reject only after the launch, checked in seconds."""
    # heavy (torch, DeepSpeed): imported where they run, so `rge --help` stays quick
    from rge_core.model.processor import image_size_kwargs
    from rge_core.training.setup import check_lora, deepspeed_config, training_placement
    from rge_core.training.tracking import check_reporters
    from rge_core.training.vllm_rationales import check_rationale_engine

    check_lora(config.train)
    image_size_kwargs(config.model.min_pixels, config.model.max_pixels)
    deepspeed_config(config.train)  # train.precision
    training_placement(config.train, config.model.device, config.model.attn_implementation)
    check_reporters(config.train.report_to)
    check_rationale_engine(config.train)
    if config.train.launch.hostfile and not Path(config.train.launch.hostfile).is_file():
        raise ValueError(f"train.launch.hostfile: {config.train.launch.hostfile} is not a file")


def train_spec(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> StageSpec:
    dataset_id, base_id = inputs["dataset"], inputs.get("base-model")
    _check_settings(config)
    settings = versioned(config.train)  # how the run is spread over processes and logged changes no weight
    settings["image_bounds"] = [config.model.min_pixels, config.model.max_pixels]
    # How many processes train changes the result (the global batch, every rank's sampling seeds); how they are
    # started does not.
    settings["processes"] = config.train.launch.nproc * config.train.launch.nnodes
    lineage = {"dataset": dataset_id, **({"base": base_id} if base_id else {})}
    if not base_id:
        settings["base_model"] = folder_identity(config.model.path)

    def build(writer) -> dict:
        from rge_core.training.curve import draw_training_curve
        from rge_core.training.launch import run_trainer
        from rge_core.training.trainer import TrainJob

        dataset_url = store.get(dataset_id).file_url("train.parquet")
        _check_batches(config, dataset_url)
        stats: dict = {}

        def run(folder: Path) -> None:
            job = TrainJob(
                train=config.train,
                model=config.model,
                base_model=str(model_folder(config, store, base_id)),
                dataset=dataset_url,
                image_root=str(image_root(store, dataset_id)),
                output_dir=str(folder),
                run_name=writer.version_id,
            )
            folder.mkdir(parents=True, exist_ok=True)
            job_file = folder / "job.json"
            job_file.write_text(job.to_json())
            metrics = folder / METRICS

            def report_progress() -> None:
                try:  # written atomically by the trainer after every step
                    last = json.loads((folder / PROGRESS).read_text())
                except FileNotFoundError:
                    progress.report("train", 0, config.train.steps)
                    return
                details = {"loss": last["loss"], "samples_per_s": last["samples_per_s"]}
                progress.report("train", last["step"], config.train.steps, **details)

            run_trainer(config.train, job_file, folder / "trainer.log", report_progress)
            records = [json.loads(line) for line in metrics.read_text().splitlines()]
            stats.update(_summary(records))
            # Drawn here, not in the trainer: metrics.jsonl holds the whole run even after a resume, and
            # matplotlib stays out of every trainer process.
            draw_training_curve(records, folder / CURVE)

        # Local roots train in place (checkpoints survive a kill); remote roots train in a local scratch
        # folder and upload the result.
        build_folder(writer, run)
        return {**stats, "method": config.train.method, "checkpoint": FINAL_MODEL}

    # With torchrun over several nodes every node runs this stage on the one version: no build lock then.
    per_node = config.train.launch.nnodes > 1 and config.train.launch.launcher == "torchrun"
    return StageSpec("model", settings, lineage, _CODE, build, resume=True, exclusive=not per_node)


STAGE = StageDecl(
    "train",
    provides="trained-model",
    needs=("dataset", "base-model"),
    spec=train_spec,
    section="train",
    help="Train the RGE model (DeepSpeed, LoRA/DoRA, on-the-fly rationales).",
    loads_model=lambda config: True,
)
