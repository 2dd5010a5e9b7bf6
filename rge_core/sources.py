"""Where a run's inputs come from, settled before any stage builds: the training data (data.source), the eval
data (eval.data), the synthetic benchmark either may name, and the model folders. Ingest and eval resolve their
data here alike, and `rge run --check` asks the same questions without building or fetching anything.

    source = data_source(config, store, TRAIN)   # identity, what to build first; a wrong image root fails here
    folder = source.folder(store)                # once source.before is built
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rge_core.artifacts.local import build_folder, cache_root, checkpoint_folder, local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.verify import local_sha256
from rge_core.builds import StageSpec, planned_id
from rge_core.config.schema import Config
from rge_core.data.hf_source import hub_folder, is_hub_source
from rge_core.data.images import ImageChecker
from rge_core.data.layout import EVAL_SPLIT, DataFolder
from rge_core.data.mmeb_eval import EVAL_COLUMNS, eval_row_issues
from rge_core.data.mmeb_train import TRAIN_COLUMNS, train_row_issues
from rge_core.data.scan import RowRules, scan_sample

SYNTHETIC = "synthetic"
TINY_MODEL = "tiny"
TRAIN, EVAL = "train", "eval"
_SYNTH_CODE = ["rge_core/synth"]
# Rows read from the head of every subset to see that the image root is right before anything is scanned.
SAMPLED_ROWS = 16


class SourceError(ValueError):
    """A data source or image root that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class _Side:
    setting: str  # the setting naming the folder
    image_setting: str  # ...and its image root
    identity_key: str  # how the version names the folder
    hub_name: str  # its Hub dataset (hf:// sources)
    columns: tuple
    rules: RowRules


_SIDES = {
    TRAIN: _Side("data.source", "data.image_root", "source", "mmeb-train", TRAIN_COLUMNS, train_row_issues),
    EVAL: _Side("eval.data", "eval.image_root", "data", "mmeb-eval", EVAL_COLUMNS, eval_row_issues),
}


@dataclass(frozen=True)
class DataSource:
    """An MMEB-format folder a stage reads: a user's folder, or a split of the synthetic benchmark artifact."""

    side: str  # TRAIN or EVAL
    identity: dict  # what identifies the data in a version
    inputs: dict[str, str]  # input artifacts (the synthetic benchmark)
    before: tuple[StageSpec, ...]  # ...built before the stage that reads it
    subsets: tuple[str, ...]  # what the folder holds (of the split the run reads), known without building
    categories: dict[str, str]  # category of each synthetic set
    local: Path | None  # a user's folder; None: the benchmark artifact's split folder
    images: Path | None  # a user's image root; None: the folder itself
    notes: tuple[str, ...] = ()  # subsets whose sampled rows miss some images (check_sampled_images)

    def folder(self, store: ArtifactStore) -> Path:
        if self.local is not None:
            return self.local
        return local_folder(store.get(self.inputs["benchmark"])) / self.side

    def image_root(self, store: ArtifactStore) -> Path:
        return self.images or self.folder(store)

    @property
    def image_root_name(self) -> str:
        """How artifacts name the image root: a path, or `<benchmark id>/<split>` so that versions do not depend
        on where the artifact root is mounted."""
        return str(self.images or self.local) if self.local else f"{self.inputs['benchmark']}/{self.side}"


def benchmark_spec(config: Config) -> StageSpec:
    from rge_core.synth.writer import write_benchmark

    settings = asdict(config.data.synth)

    def build(writer) -> dict:
        summary: dict = {}
        build_folder(writer, lambda folder: summary.update(write_benchmark(folder, **settings)))
        return {"subsets": summary["subsets"]}

    return StageSpec("benchmark", settings, {}, _SYNTH_CODE, build)


def synthetic_sets(config: Config) -> dict[str, str]:
    """Name -> category of the synthetic benchmark's sets, known from the config alone."""
    from rge_core.synth.writer import SUITES

    return {subset.name: subset.category for subset in SUITES[config.data.synth.suite]}


_FINGERPRINTED = {".parquet", ".jsonl", ".json", ".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


def folder_fingerprint(*folders: Path, mode: str = "content") -> str:
    """Identity of the data files (parquet, JSON lines) and images under `folders` (a data folder and its
    image root): an edited, added or replaced file makes a new version. `content` (data.fingerprint /
    eval.fingerprint): each file's name and sha256, so any changed byte counts (hashed once per process
    while the file's size and times stay the same; ~30k small images in a few seconds, see
    docs/data.md); `stat`: names, sizes and mtimes only, blind to an edit that keeps both."""
    if mode not in ("content", "stat"):
        raise ValueError(f"fingerprint mode must be content or stat, got {mode!r}")
    digest = hashlib.sha256()
    for folder in dict.fromkeys(folders):  # the image root is often the data folder itself
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in _FINGERPRINTED and p.is_file()):
            if mode == "content":
                identity = local_sha256(path)
            else:
                stat = path.stat()
                identity = f"{stat.st_size}\0{stat.st_mtime_ns}"
            digest.update(f"{folder.name}/{path.relative_to(folder)}\0{identity}\n".encode())
    return f"{mode}:{digest.hexdigest()[:16]}"


# Off inside `without_fetching()`: an hf:// source not in the cache raises NotFetchedYet instead (rge run --check).
_FETCHING = contextvars.ContextVar("rge_fetching", default=True)


@contextlib.contextmanager
def without_fetching() -> Iterator[None]:
    token = _FETCHING.set(False)
    try:
        yield
    finally:
        _FETCHING.reset(token)


def data_source(config: Config, store: ArtifactStore, side: str) -> DataSource:
    """The folder of `side` (TRAIN: data.source, EVAL: eval.data) as a stage's version sees it. Nothing is built;
    an hf:// source is fetched into the cache first (outside `without_fetching`)."""
    fetch_missing = _FETCHING.get()
    spec = _SIDES[side]
    value = config.data.source if side == TRAIN else config.eval.data
    image_root = config.data.image_root if side == TRAIN else config.eval.image_root
    split = config.data.split if side == TRAIN else EVAL_SPLIT
    if value == SYNTHETIC:
        benchmark = benchmark_spec(config)
        sets = synthetic_sets(config)
        inputs = {"benchmark": planned_id(store, benchmark)}
        return DataSource(side, {spec.identity_key: SYNTHETIC}, inputs, (benchmark,), tuple(sets), sets, None, None)
    named = config.data.subsets if side == TRAIN else config.eval.datasets
    hub: dict[str, str] = {}
    if is_hub_source(value):
        folder, hub["hub"] = hub_folder(
            value, cache_root(store), spec.hub_name, named or None, spec.setting, fetch_missing
        )
    else:
        folder = Path(value).resolve()
    if not folder.is_dir():
        raise SourceError(f"{spec.setting}: {value} is not a folder (nor 'synthetic' or hf://)")
    images = Path(image_root).resolve() if image_root else folder
    if not images.is_dir():
        raise SourceError(f"{spec.image_setting}: {image_root} is not a folder")
    subsets = tuple(DataFolder.open(folder).subsets((split,)))
    # Before the fingerprint reads the whole tree: a wrong image root fails in a second.
    notes = _check_sampled_images(side, folder, images, split, [name for name in named or subsets if name in subsets])
    identity = {spec.identity_key: str(folder), "image_root": str(images)}
    mode = config.data.fingerprint if side == TRAIN else config.eval.fingerprint
    identity["fingerprint"] = folder_fingerprint(folder, images, mode=mode)
    local_images = images if image_root else None
    return DataSource(side, {**identity, **hub}, {}, (), subsets, {}, folder, local_images, tuple(notes))


def _check_sampled_images(
    side_name: str, folder_path: Path, root: Path, split: str, wanted: Sequence[str]
) -> list[str]:
    """Read the first SAMPLED_ROWS rows of every subset the run uses and resolve their images. A subset whose
    sampled images are all missing is a wrong image root (or images never unpacked): one line naming the image
    root's setting and a path it tried, before anything is scanned. Returns a note per subset with some missing."""
    side = _SIDES[side_name]
    folder = DataFolder.open(folder_path)
    checker, notes = ImageChecker(root, check_files=True), []
    for subset in wanted:
        scan = scan_sample(folder, subset, split, side.columns, checker, side.rules, SAMPLED_ROWS)
        if scan is None or not scan.columns:  # absent, or unreadable: the stage's own scan says why
            continue
        paths = _image_paths(scan.columns, side.columns)
        bad = checker.bad_paths(pa.array(paths, pa.string()))
        if paths and len(bad) == len(paths):
            first = next(iter(bad))
            raise SourceError(
                f"{side.image_setting}: none of the {len(paths)} images named by the first {scan.num_rows} rows of "
                f"{subset} is under {root}: {bad[first]}{_hint(folder_path, side, first, root)}"
            )
        if bad:
            notes.append(f"{subset}: {len(bad)} of the {len(paths)} images of its first rows are missing")
    return notes


def _image_paths(columns: dict[str, pa.Array], spec: tuple) -> list[str]:
    paths: set[str] = set()
    for column in spec:
        if column.image:
            values = columns[column.name]
            values = pc.list_flatten(values) if column.is_list else values
            paths.update(path for path in values.to_pylist() if path)
    return sorted(paths)


def _hint(folder: Path, side: _Side, path: str, root: Path) -> str:
    """Where the rows' images are when not under the image root: the data folder itself (what `rge data fetch`
    writes), so the setting should be empty."""
    if root == folder:
        return f"; unpack the images there (rge data fetch) or set {side.image_setting}"
    if ImageChecker(folder, check_files=True).problem(path) is None:
        return f"; they are under {folder}: leave {side.image_setting} empty"
    return ""


def model_folder(config: Config, store: ArtifactStore, model_id: str | None) -> Path:
    """Local checkpoint folder of a model artifact (trained ones keep it in a sub-folder), or of the
    configured user checkpoint when there is no artifact."""
    return Path(config.model.path) if model_id is None else checkpoint_folder(store, model_id)
