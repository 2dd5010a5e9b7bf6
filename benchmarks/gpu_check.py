"""The GPU first-run check: the rehearsal's path (configs/qwen2.5-vl-3b.yaml + configs/rehearsal.yaml on MMEB laid out
as the Hub serves it) on `cuda`, with the real Qwen2.5-VL-3B architecture at random weights in bf16, on a machine
that has torch, transformers and peft but neither vLLM nor Prefect (and DeepSpeed only if the wheelhouse could
install it). Run by benchmarks/gpu_check.sh; `--tiny --device cpu` runs the same code on the CPU with the tiny
model (tests/test_gpu_check.py), so it cannot rot while no GPU is lent.

    PYTHONPATH=. python benchmarks/gpu_check.py [--device cuda] [--tiny] [--work DIR]

What runs, each stage through the pipeline exactly as `rge run` runs it, timed, with the peak GPU memory:
  1. a random-weight checkpoint folder of the real 3B architecture (bench_gpu.qwen25_vl_3b_config, the tiny
     checkpoint's tokenizer and processor), written in bf16: it is `model.path`, a user checkpoint;
  2. `rge synth --hub-layout` and `rge data fetch --from` (MMEB-train and MMEB-eval as the Hub serves them);
  3. ingest; curate with the reference generator over the snapshot's scene facts (no vLLM here) and the
     preset's own prompt set rge-v1; assemble;
  4. train: the preset's DoRA/per-subset/loss/rationale settings on one process, bf16, ZeRO-2 (DeepSpeed) —
     skipped with its reason when DeepSpeed does not import;
  5. evaluate the trained model (or, without training, the random checkpoint) on cuda: reasoning queries with
     the preset's 128-token budget, the release's rewrite files, CIFAR-100 apart.
It prints one line per stage (seconds, peak memory) and a final verdict; a failing stage prints its error and
the run exits non-zero.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PRESETS = [ROOT / "configs/qwen2.5-vl-3b.yaml", ROOT / "configs/rehearsal.yaml"]


def write_checkpoint(folder: Path, tiny: bool, device: str) -> Path:
    """A random-weight Qwen2.5-VL checkpoint folder (the real 3B architecture, or the tiny one) in bf16."""
    from transformers import AutoModelForImageTextToText

    from rge_core.model.processor import load_processor
    from rge_core.model.tiny import write_tiny_model

    tiny_dir = write_tiny_model(folder / "tiny", arch="qwen2.5-vl", seed=0)
    if tiny:
        return tiny_dir
    from bench_gpu import qwen25_vl_3b_config  # benchmarks/ is this script's folder: on sys.path

    processor = load_processor(str(tiny_dir))
    config = qwen25_vl_3b_config(processor.tokenizer)
    torch.manual_seed(0)
    with torch.device(device):  # created where it runs: no CPU copy of 3B parameters
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    out = folder / "qwen2.5-vl-3b-random"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    return out


def deepspeed_reason() -> str:
    """ "" when DeepSpeed imports here, else why not (one line)."""
    try:
        import deepspeed  # noqa: F401
    except Exception as error:  # a build that does not match this torch/CUDA fails in many ways
        return f"DeepSpeed does not import: {error}".splitlines()[0]
    return ""


def rge(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "flows.cli", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="the tiny model instead of the 3B architecture")
    parser.add_argument("--work", type=Path, default=ROOT / ".gpu-check", help="data, checkpoint and artifacts")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (use --tiny --device cpu for the CPU rehearsal of this check)")
        return 1
    from rge_core.config.loader import load_config
    from rge_core.pipeline import run_pipeline

    work = args.work.resolve()
    hub, data = work / "hub", work / "data"
    timings: list[str] = []

    def stage(name: str, action):
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.monotonic()
        result = action()
        peak = f", peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if args.device == "cuda" else ""
        timings.append(f"{name}: {time.monotonic() - started:.1f} s{peak}")
        print(timings[-1], flush=True)
        return result

    checkpoint = stage("checkpoint", lambda: write_checkpoint(work, args.tiny, args.device))
    stage(
        "snapshot", lambda: rge("synth", str(hub), "--hub-layout", "--train-per-subset", "8", "--eval-per-subset", "4")
    )
    for name in ("mmeb-train", "mmeb-eval"):
        folder = "MMEB-train" if name == "mmeb-train" else "MMEB-eval"
        stage(f"fetch {name}", lambda n=name, f=folder: rge("data", "fetch", n, str(data / n), "--from", str(hub / f)))
    release = hub / "RGE" / "src"
    overrides = [
        f"run.artifacts_root={work / 'artifacts'}",
        f"model.path={checkpoint}",
        f"model.device={args.device}",
        f"model.dtype={'bfloat16' if args.device == 'cuda' else 'float32'}",
        f"train.precision={'bf16' if args.device == 'cuda' else 'fp32'}",
        f"data.source={data / 'mmeb-train'}",
        f"eval.data={data / 'mmeb-eval'}",
        f"data.query_rewrites={release / 'instruction_replacements.yaml'}",
        f"data.candidate_rewrites={release / 'candidate_replacements.yaml'}",
        f"eval.query_rewrites={release / 'instruction_replacements-eval.yaml'}",
        f"eval.candidate_rewrites={release / 'candidate_replacements.yaml'}",
        "curation.generator=reference",  # no vLLM on this machine: the snapshot's scene facts are the oracle
        f"curation.reference={hub / 'reference-rationales.parquet'}",
        "curation.prompt_set=prompts/rge-v1",  # the preset's own set: the facts are paragraphs
        "train.launch.nproc=1",
        "train.steps=2",
        "train.report_to=[]",
        "eval.datasets=[ImageNet-1K, MSCOCO_t2i, OK-VQA, CIFAR-100]",
    ]
    why_not = deepspeed_reason()
    if why_not:
        overrides.append(f"eval.model={checkpoint}")  # evaluate the random checkpoint itself
    config = load_config(PRESETS, overrides)
    try:
        stage("ingest + curate + assemble", lambda: run_pipeline(config, ["assemble"]))
        if why_not:
            timings.append(f"train: skipped ({why_not})")
            print(timings[-1], flush=True)
        else:
            stage("train (DeepSpeed ZeRO-2)", lambda: run_pipeline(config, ["train"]))
        results = stage("evaluate", lambda: run_pipeline(config, ["evaluate"]))
    except Exception:
        traceback.print_exc()
        print("gpu_check: FAILED (see above); " + "; ".join(timings))
        return 1
    from rge_core.artifacts.store import ArtifactStore

    summary = ArtifactStore(str(work / "artifacts")).get(results["evaluate"]).read_bytes("summary.md").decode()
    print(summary)
    print(f"gpu_check: OK on {torch.cuda.get_device_name() if args.device == 'cuda' else 'cpu'}; " + "; ".join(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
