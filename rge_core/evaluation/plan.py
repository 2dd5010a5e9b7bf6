"""What an evaluation will do, settled before it loads a model or encodes anything: the model, the eval
folder and its datasets, the rewrite files, the categories of non-MMEB datasets and the run to compare
with. Every bad setting fails here, in one line that names it, instead of after an hour of encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rge_core.artifacts.local import cache_root, local_folder
from rge_core.artifacts.store import Artifact, ArtifactStore, looks_like_version_id
from rge_core.config.schema import Config
from rge_core.data.hf_source import hub_folder, is_hub_source
from rge_core.data.layout import EVAL_SPLIT, DataFolder
from rge_core.data.rewrites import RewriteFile, load_rewrites
from rge_core.evaluation.mmeb import MMEB_DATASETS, canonical_name
from rge_core.model.placement import Placement, placement_of
from rge_core.model.processor import image_size_kwargs
from rge_core.stages.ingest import SYNTHETIC, folder_fingerprint
from rge_core.stages.prepare import model_folder, prepare_benchmark


class EvalSettingError(ValueError):
    pass


@dataclass(frozen=True)
class EvalPlan:
    model_id: str | None  # the model artifact, or None for a checkpoint folder
    model_dir: Path
    folder: Path  # MMEB-eval-format folder
    image_root: Path
    datasets: list[str]  # to evaluate, sorted
    categories: dict[str, str]  # category of each non-MMEB dataset that has one (else "other")
    query_rewrites: RewriteFile | None
    candidate_rewrites: RewriteFile | None
    compare_to: Artifact | None
    data_inputs: dict[str, str]  # input artifacts of the data (the synthetic benchmark)
    data_identity: dict  # what identifies the data in the version
    placement: Placement  # of this process (shard processes resolve their own device alike)

    def rewrite_records(self) -> dict[str, dict | None]:
        return {
            side: (rewrites.record() if rewrites else None)
            for side, rewrites in (("query", self.query_rewrites), ("candidate", self.candidate_rewrites))
        }


def _model(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> tuple[str | None, Path]:
    chosen = config.eval.model or inputs.get("train")
    if not chosen:
        raise EvalSettingError("eval.model: no model to evaluate (train first, or name an artifact id or a folder)")
    if store.is_complete(chosen):
        return chosen, model_folder(config, store, chosen)
    if looks_like_version_id(chosen) and not Path(chosen).exists():
        raise EvalSettingError(f"eval.model: no complete artifact {chosen} under {store.root}")
    folder = Path(chosen).resolve()
    if not (folder / "config.json").is_file():
        raise EvalSettingError(
            f"eval.model: {chosen} is neither a complete model artifact under {store.root} "
            "nor a checkpoint folder (no config.json)"
        )
    return None, folder


def _data(config: Config, store: ArtifactStore) -> tuple[Path, Path, dict[str, str], dict, dict[str, str]]:
    """(eval folder, image root, input artifacts, identity for the version, categories of the synthetic sets)."""
    ev = config.eval
    if ev.data == SYNTHETIC:
        benchmark = store.get(prepare_benchmark(config, store))
        folder = local_folder(benchmark) / "eval"
        categories = {s["name"]: s["category"] for s in benchmark.manifest.stats["subsets"]}
        return folder, folder, {"benchmark": benchmark.id}, {"data": SYNTHETIC}, categories
    hub: dict[str, str] = {}
    if is_hub_source(ev.data):  # fetched into the cache (a no-op once there), then a local folder
        folder, hub["hub"] = hub_folder(ev.data, cache_root(store), "mmeb-eval", ev.datasets or None, "eval.data")
    else:
        folder = Path(ev.data).resolve()
    if not folder.is_dir():
        raise EvalSettingError(f"eval.data: {ev.data} is not a folder (nor 'synthetic' or hf://)")
    root = Path(ev.image_root).resolve() if ev.image_root else folder
    fingerprint = folder_fingerprint(folder, root, mode=ev.fingerprint)
    identity = {"data": str(folder), "image_root": str(root), "fingerprint": fingerprint}
    return folder, root, {}, {**identity, **hub}, {}


def _datasets(config: Config, folder: Path) -> list[str]:
    present = DataFolder.open(folder).subsets((EVAL_SPLIT,))
    if not present:
        raise EvalSettingError(f"eval.data: {folder} has no dataset folder with a {EVAL_SPLIT} split")
    unknown = [name for name in config.eval.datasets if name not in present]
    if unknown:
        raise EvalSettingError(f"eval.datasets: {', '.join(unknown)} not in {folder} (present: {', '.join(present)})")
    return sorted(config.eval.datasets or present)


def _categories(config: Config, present: list[str], synthetic: dict[str, str]) -> dict[str, str]:
    chosen = config.eval.categories
    for name, category in chosen.items():
        if (canonical := canonical_name(name)) is not None:
            raise EvalSettingError(
                f"eval.categories: {name} is an MMEB-V1 dataset; its category is "
                f"{MMEB_DATASETS[canonical][0]} and cannot be changed"
            )
        if name not in present:
            raise EvalSettingError(
                f"eval.categories: {name} is not a dataset of this evaluation ({', '.join(present)})"
            )
        if not category.strip():
            raise EvalSettingError(f"eval.categories: {name} has an empty category")
    return {**synthetic, **chosen}


def _compare_to(config: Config, store: ArtifactStore) -> Artifact | None:
    wanted = config.eval.compare_to
    if not wanted:
        return None
    if not store.is_complete(wanted) or store.get(wanted).manifest.kind != "eval":
        raise EvalSettingError(f"eval.compare_to: {wanted} is not a complete eval artifact under {store.root}")
    return store.get(wanted)


def _check_run(config: Config) -> None:
    """How the evaluation runs, where settings depend on each other (single values are checked at load)."""
    ev = config.eval
    if ev.nnodes > 1 and ev.launcher != "slurm":
        raise EvalSettingError(
            f"eval.nnodes: {ev.nnodes} nodes need eval.launcher slurm (shards on one node otherwise)"
        )
    if ev.nnodes > 1 and not ev.master_port:
        raise EvalSettingError(
            "eval.master_port: set it for a multi-node evaluation (the rendezvous port on the first node)"
        )


def plan_eval(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> EvalPlan:
    ev = config.eval
    image_size_kwargs(config.model.min_pixels, config.model.max_pixels)
    _check_run(config)
    placement = placement_of(config.model)
    model_id, model_dir = _model(config, store, inputs)
    folder, image_root, data_inputs, identity, synthetic = _data(config, store)
    datasets = _datasets(config, folder)
    rewrites = {}
    for side in ("query", "candidate"):
        setting = f"eval.{side}_rewrites"
        rewrites[side] = rewrite = load_rewrites(getattr(ev, f"{side}_rewrites"), setting)
        if rewrite is not None:
            rewrite.check_datasets(datasets, setting)
    return EvalPlan(
        model_id=model_id,
        model_dir=model_dir,
        folder=folder,
        image_root=image_root,
        datasets=datasets,
        categories=_categories(config, datasets, synthetic),
        query_rewrites=rewrites["query"],
        candidate_rewrites=rewrites["candidate"],
        compare_to=_compare_to(config, store),
        data_inputs=data_inputs,
        data_identity=identity,
        placement=placement,
    )
