"""Helpers shared by more than one test module. Test modules import them from here, never from conftest.py or
from another test module; fixtures stay in conftest.py. Heavy imports stay inside the functions, so importing
this module costs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

    from rge_core.artifacts.store import ArtifactStore
    from rge_core.config.schema import Config


SMALL_SYNTH = ["data.synth.train_per_subset=4", "data.synth.eval_per_subset=3", "data.synth.candidates=4"]

# The benchmark's scene facts are written in rge-v1's format (1-4 sentences).
FACTS = [
    "curation.generator=reference",
    "curation.reference=synthetic-facts",
    "curation.prompt_set=prompts/rge-v1",
    "curation.shard_size=5",
]


# `rge train` for 6 steps on 2 processes (torchrun, gloo), small enough for the suite.
TWO_PROCESS_TRAIN = [
    *FACTS,
    "train.steps=6",
    "train.checkpoint_every=2",
    "train.batch_size=2",
    "train.decoding.max_new_tokens=8",
    "train.launch.nproc=2",
]


def train_command(root: Path, *extra: str) -> list[str]:
    return rge_command("train", f"run.artifacts_root={root}", *SMALL_SYNTH, *TWO_PROCESS_TRAIN, *extra)


def trained_folder(root: Path) -> Path:
    """The one trained model artifact under `root` (the base model artifact has no job.json)."""
    [folder] = [p for p in (root / "model").iterdir() if (p / "job.json").exists()]
    return folder


def run_train(root: Path, *extra: str) -> Path:
    import subprocess

    done = subprocess.run(train_command(root, *extra), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return trained_folder(root)


def rge_command(command: str, *overrides: str, extra: tuple[str, ...] = ()) -> list[str]:
    """`rge <command> --config configs/tiny.yaml --set <override>...` then `extra`, run as this interpreter's
    module (so a subprocess sees the checkout under test)."""
    import sys

    sets = [arg for override in overrides for arg in ("--set", override)]
    return [sys.executable, "-m", "rge_core.cli.main", command, "--config", "configs/tiny.yaml", *sets, *extra]


def small_config(root: str, *overrides: str) -> Config:
    """configs/tiny.yaml on a small synthetic benchmark (6 subsets x 4 train pairs), artifacts under `root`."""
    from rge_core.config.loader import load_config

    return load_config(Path("configs/tiny.yaml"), [f"run.artifacts_root={root}", *SMALL_SYNTH, *overrides])


def rationales(store: ArtifactStore, version: str) -> list[dict]:
    """Every row of a `rationales` artifact, shard by shard."""
    from rge_core.curation.rationales_artifact import read_rationales

    return read_rationales(store.get(version)).to_pylist()


def leaf_keys(data: dict, prefix: str = "") -> set[str]:
    """The dotted keys of a nested dict's leaves: {"a": {"b": 1}, "c": 2} -> {"a.b", "c"}."""
    keys = set()
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        keys |= leaf_keys(value, f"{dotted}.") if isinstance(value, dict) else {dotted}
    return keys


def run_result_script(script: str, *args: str) -> dict:
    """Run tests/<script> in a fresh interpreter (vLLM wants its own process and a main guard) and parse
    the JSON on its `RESULT ` line."""
    import json
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in a TensorBoard log folder as (step, value) pairs, purged steps left out."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0}).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def scene_cells(path: Path) -> dict[tuple[int, int], str]:
    """The colour in each occupied grid cell of a synthetic scene image, read from the pixels: shapes stay
    inside their cell."""
    import numpy as np
    from PIL import Image

    from rge_core.synth.scenes import BACKGROUND, COLORS, GRID

    color_of_rgb = {rgb: name for name, rgb in COLORS.items()}
    pixels = np.asarray(Image.open(path).convert("RGB"))
    side = pixels.shape[0] // GRID
    found = {}
    for row in range(GRID):
        for col in range(GRID):
            cell = pixels[row * side : (row + 1) * side, col * side : (col + 1) * side].reshape(-1, 3)
            colors = {
                color_of_rgb[tuple(int(v) for v in rgb)] for rgb in np.unique(cell, axis=0) if tuple(rgb) != BACKGROUND
            }
            assert len(colors) <= 1, f"two colours in one cell of {path}"
            if colors:
                found[col, row] = colors.pop()
    return found


def write_eval_folder(folder: Path, images: list[Image], datasets: dict[str, dict[str, list]]) -> Path:
    """An MMEB-eval-format folder: `images` as img/0.png, img/1.png, ..., and each dataset's columns (qry_text,
    qry_img_path, tgt_text, tgt_img_path; image paths relative to the folder) as NAME/test.parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "img").mkdir(parents=True)
    for index, image in enumerate(images):
        image.save(folder / "img" / f"{index}.png")
    for name, columns in datasets.items():
        (folder / name).mkdir()
        pq.write_table(pa.table(columns), folder / name / "test.parquet")
    return folder
