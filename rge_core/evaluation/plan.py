"""What an evaluation will do, settled before it loads a model or encodes anything: the model, the eval
folder and its datasets, the rewrite files, the categories of non-MMEB datasets and the run to compare
with. Every bad setting fails here, in one line that names it, instead of after an hour of encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rge_core.artifacts.store import Artifact, ArtifactStore, looks_like_version_id
from rge_core.config.schema import Config, LaunchConfig
from rge_core.data.layout import EVAL_SPLIT
from rge_core.data.mmeb_registry import MMEB_DATASETS, canonical_name
from rge_core.data.rewrites import RewriteFile, load_rewrites
from rge_core.evaluation.rationale_modes import GivenSource, check_mode, given_source
from rge_core.model.placement import Placement, placement_of
from rge_core.model.processor import image_size_kwargs
from rge_core.sources import EVAL, DataSource, data_source, model_folder


class EvalSettingError(ValueError):
    pass


@dataclass(frozen=True)
class EvalPlan:
    model_id: str | None  # the model artifact (None: a checkpoint folder given by path)
    model_path: Path | None  # that folder
    source: DataSource  # the MMEB-eval-format folder
    datasets: list[str]  # to evaluate, sorted
    categories: dict[str, str]  # category of each non-MMEB dataset that has one (else "other")
    query_rewrites: RewriteFile | None
    candidate_rewrites: RewriteFile | None
    compare_to: Artifact | None
    placement: Placement  # of this process (shard processes resolve their own device alike)
    given: GivenSource | None = None  # eval.given_rationales, when eval.rationales is given

    def rewrite_records(self) -> dict[str, dict | None]:
        return {
            side: (rewrites.record() if rewrites else None)
            for side, rewrites in (("query", self.query_rewrites), ("candidate", self.candidate_rewrites))
        }

    def model_dir(self, config: Config, store: ArtifactStore) -> Path:
        """The checkpoint folder to load (the model artifact's once it is built)."""
        return self.model_path or model_folder(config, store, self.model_id)


def _model(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> tuple[str | None, Path | None]:
    """(model artifact, None) or (None, checkpoint folder). The train stage's output may not be built yet."""
    chosen = config.eval.model or inputs.get("trained-model")
    if not chosen:
        raise EvalSettingError("eval.model: no model to evaluate (train first, or name an artifact id or a folder)")
    if chosen == inputs.get("trained-model") or store.is_complete(chosen):
        return chosen, None
    if looks_like_version_id(chosen) and not Path(chosen).exists():
        raise EvalSettingError(f"eval.model: no complete artifact {chosen} under {store.root}")
    folder = Path(chosen).resolve()
    if not (folder / "config.json").is_file():
        raise EvalSettingError(
            f"eval.model: {chosen} is neither a complete model artifact under {store.root} "
            "nor a checkpoint folder (no config.json)"
        )
    return None, folder


def _datasets(config: Config, source: DataSource) -> list[str]:
    present = list(source.subsets)
    if not present:
        raise EvalSettingError(f"eval.data: {config.eval.data} has no dataset folder with a {EVAL_SPLIT} split")
    unknown = [name for name in config.eval.datasets if name not in present]
    if unknown:
        raise EvalSettingError(
            f"eval.datasets: {', '.join(unknown)} not in {config.eval.data} (present: {', '.join(present)})"
        )
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
    launch = config.eval.launch
    if launch.launcher not in ("torchrun", "slurm"):
        raise EvalSettingError(f"eval.launch.launcher: {launch.launcher} starts trainers only; use torchrun or slurm")
    defaults = LaunchConfig()
    unused = [
        name for name in ("node_rank", "master_addr", "hostfile") if getattr(launch, name) != getattr(defaults, name)
    ]
    if unused:  # a knob that would do nothing
        raise EvalSettingError(f"eval.launch.{unused[0]}: only training's launch uses it (eval: nnodes, master_port)")
    if launch.nnodes > 1 and launch.launcher != "slurm":
        raise EvalSettingError(
            f"eval.launch.nnodes: {launch.nnodes} nodes need eval.launch.launcher slurm (shards on one node otherwise)"
        )
    if launch.nnodes > 1 and not launch.master_port:
        raise EvalSettingError(
            "eval.launch.master_port: set it for a multi-node evaluation (the rendezvous port on the first node)"
        )


def plan_eval(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> EvalPlan:
    """Every setting of the evaluation checked, nothing built: the model may be a planned training run, and the
    synthetic benchmark is among the source's artifacts to build first."""
    ev = config.eval
    image_size_kwargs(config.model.min_pixels, config.model.max_pixels)
    _check_run(config)
    check_mode(config)
    placement = placement_of(config.model)
    model_id, model_path = _model(config, store, inputs)
    source = data_source(config, store, EVAL)
    datasets = _datasets(config, source)
    rewrites = {}
    for side in ("query", "candidate"):
        setting = f"eval.{side}_rewrites"
        rewrites[side] = rewrite = load_rewrites(getattr(ev, f"{side}_rewrites"), setting)
        if rewrite is not None:
            rewrite.check_datasets(datasets, setting)
    return EvalPlan(
        model_id=model_id,
        model_path=model_path,
        source=source,
        datasets=datasets,
        categories=_categories(config, datasets, source.categories),
        query_rewrites=rewrites["query"],
        candidate_rewrites=rewrites["candidate"],
        compare_to=_compare_to(config, store),
        placement=placement,
        given=given_source(config, store, synthetic="benchmark" in source.inputs),
    )
