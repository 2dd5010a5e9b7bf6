"""The shipped 3B preset rehearsed as a GPU user runs it, on the CPU: `make rehearsal` (a Hub-layout snapshot of
MMEB, `rge data fetch --from`, `rge run --check`, the run to the score table) and every `rge` command of
docs/gpu.md's walk-through, each with the overlay configs/rehearsal.yaml, which may change only what a CPU
rehearsal must."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from rge_core.config.loader import load_config, to_dict
from rge_core.strict_yaml import load_strict
from tests.helpers import leaf_keys

ROOT = Path(__file__).resolve().parent.parent
PRESET, OVERLAY = ROOT / "configs/qwen2.5-vl-3b.yaml", ROOT / "configs/rehearsal.yaml"
# What the overlay may touch (the list): the model and generator, sizes, placement, and the curation
# format a random model can finish. Everything else (image bounds, DoRA, batching, loss, rationale and rewrite
# settings, every eval decoding setting) runs as shipped.
MODEL = {"model.path", "model.arch", "curation.generator_model"}
SIZES = {
    "train.steps", "train.batch_size", "eval.batch_size", "curation.batch_size", "train.warmup_steps",
    "train.checkpoint_every", "train.log_every", "train.launch.nproc", "eval.launch.nproc", "curation.engines",
    "curation.tensor_parallel_size", "curation.max_model_len", "train.vllm.max_model_len",
    "eval.vllm.max_model_len", "train.grad_cache_chunk", "curation.shard_size",
}  # fmt: skip
PLACEMENT = {"model.device", "model.dtype", "model.attn_implementation", "train.precision", "curation.dtype"}
FORMAT = {
    "curation.prompt_set",
    "curation.structured_output",
    "curation.structured_backend",
    "curation.max_reject_rate",
}
ALLOWED = MODEL | SIZES | PLACEMENT | FORMAT


def overlay_keys() -> set[str]:
    return leaf_keys(load_strict(OVERLAY.read_text()))


def test_the_overlay_changes_only_what_a_cpu_rehearsal_must_and_says_why():
    keys = overlay_keys()
    sampling = {key for key in keys if key.startswith("curation.decoding.")}
    assert keys - sampling <= ALLOWED, sorted(keys - sampling - ALLOWED)
    for line in OVERLAY.read_text().splitlines():
        if re.match(r"^\s+\w+:\s*\S", line):  # a leaf value
            assert "#" in line, f"configs/rehearsal.yaml: say why: {line.strip()}"


def test_every_key_the_overlay_does_not_name_runs_as_shipped():
    shipped, rehearsed = to_dict(load_config(PRESET)), to_dict(load_config([PRESET, OVERLAY]))
    named = overlay_keys()

    def leaves(data: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in data.items():
            out.update(leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    differ = {key for key, value in leaves(rehearsed).items() if leaves(shipped)[key] != value}
    assert differ == {key for key in named if leaves(shipped)[key] != leaves(rehearsed)[key]}
    for key in ("train.lora.use_dora", "train.lora.target_modules", "train.batching", "model.min_pixels"):
        assert key not in named and leaves(rehearsed)[key] == leaves(shipped)[key]


def walkthrough_commands() -> list[str]:
    """The `rge` lines of docs/gpu.md's walk-through, in order."""
    text = (ROOT / "docs/gpu.md").read_text()
    section = text.split("## Walk-through", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("rge ")]


def rehearsed(command: str, work: Path) -> list[str]:
    """A walk-through command on the rehearsal's data, with the overlay: /data/hub is the snapshot, /data the
    fetched folders, /opt/RGE the snapshot's release files."""
    command = command.replace("/data/hub/", f"{work}/hub/").replace("/data/", f"{work}/data/")
    words = shlex.split(command)
    if words[:2] == ["rge", "run"]:
        release = f"{work}/hub/RGE/src"
        words += ["--config", "configs/rehearsal.yaml"]
        for key, value in (
            ("data.source", f"{work}/data/mmeb-train"),
            ("eval.data", f"{work}/data/mmeb-eval"),
            ("data.query_rewrites", f"{release}/instruction_replacements.yaml"),
            ("data.candidate_rewrites", f"{release}/candidate_replacements.yaml"),
            ("eval.query_rewrites", f"{release}/instruction_replacements-eval.yaml"),
            ("eval.candidate_rewrites", f"{release}/candidate_replacements.yaml"),
        ):
            words += ["--set", f"{key}={value}"]
    return [str(ROOT / ".venv/bin/rge"), *words[1:]]


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> tuple[Path, str]:
    """`make rehearsal` in a kept work folder: (the folder, what it printed)."""
    work = tmp_path_factory.mktemp("rehearsal")
    env = {**os.environ, "REHEARSAL_DIR": str(work)}
    result = subprocess.run(["make", "rehearsal"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return work, result.stdout


@pytest.mark.slow
def test_make_rehearsal_runs_the_shipped_preset_to_the_score_table(rehearsal):
    _, output = rehearsal
    assert "check ok in" in output and "nothing built" in output
    assert re.search(r"^train\s+built\s+model-\w+", output, re.M)  # 4 steps, fewer than the preset's log_every
    assert "## Aggregates" in output and re.search(r"^\| Overall \| 6 \|", output, re.M)  # MMEB-V1 sets only
    assert re.search(r"^\| non-MMEB-V1 \| 1 \|", output, re.M) and "(non-MMEB-V1): CIFAR-100;" in output
    assert "rehearsal: the shipped preset ran end to end" in output


@pytest.mark.slow
def test_the_walkthrough_commands_run_as_documented(rehearsal):
    work, _ = rehearsal
    commands = walkthrough_commands()
    subcommands = [shlex.split(c)[1:3] for c in commands]
    assert [["data", "fetch"], ["data", "fetch"], ["run", "--config"], ["run", "--config"], ["artifacts", "list"]] == [
        s[:2] if s[0] != "run" else ["run", "--config"] for s in subcommands
    ]
    env = {**os.environ, "RGE_ARTIFACTS": str(work / "artifacts")}
    for command in commands:
        result = subprocess.run(rehearsed(command, work), cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        if command.endswith("--check"):
            assert ": 0 to build, nothing built" in result.stdout  # the rehearsal built what the docs run
        elif command.startswith("rge run"):
            assert "built" not in result.stdout.replace("nothing built", "") and "## Aggregates" in result.stdout


@pytest.mark.slow
def test_the_old_image_root_fails_the_check_within_30_s_naming_it(rehearsal):
    work, _ = rehearsal
    command = rehearsed("rge run --config configs/qwen2.5-vl-3b.yaml --check", work)
    command += ["--set", f"data.image_root={work}/data/mmeb-train/images"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and time.monotonic() - started < 30
    assert result.stderr.startswith("error: data.image_root: none of the") and "images/images/" in result.stderr
