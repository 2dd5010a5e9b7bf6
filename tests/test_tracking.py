"""Experiment tracking (rge_core/training/tracking.py): what rank 0's StepLogs send to TensorBoard (read back
from the event files), a resumed run's purge of redone steps, W&B offline runs, and the one-line failure for
a tracker whose package is missing."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from rge_core.training.files import METRICS
from rge_core.training.tracking import SCALARS, TENSORBOARD, WandbTracker, check_reporters, open_trackers
from rge_core.training.trainer import StepLogs
from tests.helpers import tensorboard_scalars


def _record(step: int, shift: float = 0.0) -> dict:
    """A metrics.jsonl record as the trainer writes it; values that float32 cannot hold exactly."""
    values = {key: 1.0 / (step + i + 3) + shift for i, key in enumerate(SCALARS)}
    return {"step": step, **values, "seconds": {"generation": 0.1}}


def _samples(step: int) -> list[dict]:
    texts = {"rationale": f"two red circles {step}", "num_tokens": 5}
    return [{"step": step, "pair_id": f"SynthVQA/train/{i}", **texts, "budget_hit": i == 1} for i in range(2)]


def _log(root: Path, start: int, steps: range, shift: float = 0.0) -> None:
    logs = StepLogs(root, start, open_trackers(["tensorboard"], root, start, "model-000000000000", {}))
    for step in steps:
        logs.write(_record(step, shift), _samples(step))
    logs.close()


def _metrics(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / METRICS).read_text().splitlines()]


def _assert_events_match_metrics(root: Path) -> None:
    scalars = tensorboard_scalars(root / TENSORBOARD)
    assert set(scalars) == {f"train/{key}" for key in SCALARS}
    for key in SCALARS:
        # Event files hold float32: equal to the metrics.jsonl value rounded to float32, step by step.
        expected = [(r["step"], float(np.float32(r[key]))) for r in _metrics(root)]
        assert scalars[f"train/{key}"] == expected, key


def test_tensorboard_holds_every_logged_scalar_of_metrics_jsonl(tmp_path):
    _log(tmp_path, 0, range(1, 4))
    assert [r["step"] for r in _metrics(tmp_path)] == [1, 2, 3]
    _assert_events_match_metrics(tmp_path)


def test_sampled_rationales_are_text_summaries(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _log(tmp_path, 0, range(1, 3))
    events = EventAccumulator(str(tmp_path / TENSORBOARD), size_guidance={"tensors": 0}).Reload()
    texts = events.Tensors("train/rationales/text_summary")
    assert [t.step for t in texts] == [1, 2]
    text = texts[1].tensor_proto.string_val[0].decode()
    assert text == (
        "**SynthVQA/train/0** (5 tokens): two red circles 2\n\n"
        "**SynthVQA/train/1** (5 tokens, budget hit): two red circles 2"
    )


def test_a_resumed_run_replaces_the_steps_it_redoes(tmp_path):
    _log(tmp_path, 0, range(1, 5))
    _log(tmp_path, 2, range(3, 6), shift=10.0)  # killed after step 4, resumed from the step-2 checkpoint
    steps = [r["step"] for r in _metrics(tmp_path)]
    assert steps == [1, 2, 3, 4, 5] and _metrics(tmp_path)[2]["loss"] > 10
    _assert_events_match_metrics(tmp_path)


def test_no_tracker_writes_no_event_files(tmp_path):
    logs = StepLogs(tmp_path, 0, open_trackers([], tmp_path, 0, "model-000000000000", {}))
    logs.write(_record(1), _samples(1))
    logs.close()
    assert (tmp_path / METRICS).exists() and not (tmp_path / TENSORBOARD).exists()


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_missing_tracker_package_fails_in_one_line_naming_the_extra(monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # what `import` finds for a package that is not installed
    with pytest.raises(ValueError) as error:
        check_reporters(["tensorboard", name])
    assert str(error.value) == f'train.report_to: {name} is not installed; pip install -e ".[{name}]"'


def test_tensorboard_alone_needs_no_extra():
    check_reporters(["tensorboard"])


def _wandb_records(path: Path) -> list:
    """The records of a W&B transaction log (.wandb): a 7-byte header, then LevelDB-log chunks (crc32, length,
    type: 1 full, 2 first, 3 middle, 4 last) in 32 KiB blocks."""
    from wandb.proto import wandb_internal_pb2

    data, offset, records, pending = path.read_bytes(), 7, [], b""
    while offset + 7 <= len(data):
        if 32768 - offset % 32768 < 7:  # a block's tail too short for a header is padding
            offset += 32768 - offset % 32768
            continue
        length, kind = struct.unpack_from("<HB", data, offset + 4)
        pending += data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def test_wandb_offline_run_records_the_scalars_and_rationales(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    tracker = WandbTracker("model-0123456789ab", {"lr": 1e-4})
    tracker.log(1, {"train/loss": 1.5, "train/lr": 1e-4}, "**a** (3 tokens): hi")
    tracker.log(2, {"train/loss": 1.25, "train/lr": 2e-4}, "")
    tracker.close()
    (log,) = (tmp_path / "wandb").glob("offline-run-*-model-0123456789ab/run-model-0123456789ab.wandb")
    history = [
        {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
        for r in _wandb_records(log)
        if r.WhichOneof("record_type") == "history"
    ]
    assert [{k: v for k, v in h.items() if k.startswith("train/")} for h in history] == [
        {"train/loss": 1.5, "train/lr": 1e-4, "train/rationales": "**a** (3 tokens): hi"},
        {"train/loss": 1.25, "train/lr": 2e-4},
    ]
    assert [h["_step"] for h in history] == [1, 2]
