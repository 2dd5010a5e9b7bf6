"""`rge data fetch mmeb-train|mmeb-eval DEST`: TIGER-Lab's MMEB from the Hugging Face Hub into a folder that
the readers take as it is (images under the folder itself, the default image root), then `rge data check`.

The Hub layouts (docs/data.md): MMEB-train has `<subset>/original-*.parquet` and
`<subset>/diverse_instruction-*.parquet` with one image archive per subset, `images_zip/<subset>.zip`;
MMEB-eval has `<dataset>/test-*.parquet` and one archive for every dataset, `images.zip`. Resumable at
every step: huggingface_hub resumes downloads, `unpack` resumes extractions, a downloaded archive is deleted
once unpacked (a local snapshot's archives are read in place and kept), and `.rge-fetch/state.json`, written
last, records what is complete, so a rerun does no work and needs no network.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rge_core.data.archive_layout import member_placement
from rge_core.data.check import CheckReport, check_folder
from rge_core.data.hub import HubClient, HuggingFaceHub
from rge_core.data.issues import DataError
from rge_core.data.layout import EVAL_SPLIT, TRAIN_SPLITS
from rge_core.data.mmeb_eval import EVAL_COLUMNS
from rge_core.data.mmeb_train import TRAIN_COLUMNS
from rge_core.data.unpack import UnpackLimits, unpack

STATE = ".rge-fetch"  # hidden: the readers skip folders starting with "."
# Image paths read from the rows to place an archive's members; a few suffice.
_SAMPLED_PATHS = 200


@dataclass(frozen=True)
class HubDataset:
    kind: Literal["train", "eval"]  # as `rge data check` names them
    repo_id: str
    splits: tuple[str, ...]
    archive: str  # the image archive of a subset ({subset} filled in), or one shared by all
    default_prefix: str  # where the Hub's own instructions unpack it, if no row path is found in it

    def image_columns(self) -> list[str]:
        columns = TRAIN_COLUMNS if self.kind == "train" else EVAL_COLUMNS
        return [column.name for column in columns if column.image]


HUB_DATASETS = {
    "mmeb-train": HubDataset("train", "TIGER-Lab/MMEB-train", TRAIN_SPLITS, "images_zip/{subset}.zip", "images/"),
    "mmeb-eval": HubDataset("eval", "TIGER-Lab/MMEB-eval", (EVAL_SPLIT,), "images.zip", ""),
}


@dataclass(frozen=True)
class FetchResult:
    folder: Path
    commit: str
    subsets: list[str]  # every subset the folder holds
    downloaded: int  # files asked of the Hub by this run; 0 when the folder was already complete
    report: CheckReport | None  # None when nothing changed or the check was not asked for


def fetch(
    name: str,
    dest: Path,
    subsets: list[str] | None = None,
    revision: str = "main",
    hub: HubClient | None = None,
    check: bool = True,
    decode: bool = True,
    echo: Callable[[str], None] = lambda line: None,
    limits: UnpackLimits | None = None,
) -> FetchResult:
    """Fetch `subsets` (default: all) of HUB_DATASETS[name] at `revision` into `dest`, unpack their images
    within `limits` (default: UnpackLimits()) and, with `check`, validate the folder (`decode`: open every image)."""
    if name not in HUB_DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(HUB_DATASETS)}")
    spec, dest = HUB_DATASETS[name], dest.resolve()
    state = _read_state(dest, spec, revision)
    if state is not None and _holds(state, subsets):
        return FetchResult(dest, state["commit"], state["subsets"], 0, None)
    hub = hub or HuggingFaceHub()
    # A folder holds one commit: more subsets come from the commit already there.
    listing = hub.listing(spec.repo_id, state["commit"] if state else revision)
    if state and listing.commit != state["commit"]:
        raise DataError(f"{dest} holds commit {state['commit']}, the source has {listing.commit}; use another folder")
    files = _split_files(listing.files, spec.splits)
    if not files:
        raise DataError(f"{spec.repo_id}@{revision}: no subset folder with {' or '.join(spec.splits)} parquet files")
    unknown = sorted(set(subsets or []) - set(files))
    if unknown:
        raise DataError(f"{name}: no subset {', '.join(unknown)} in {spec.repo_id}; valid: {', '.join(sorted(files))}")
    chosen = sorted(files) if subsets is None else sorted(set(subsets))
    done = set(state["unpacked"]) if state else set()
    archives: dict[str, list[str]] = {_archive(spec, subset): [] for subset in chosen}  # -> the subsets it serves
    for subset in chosen:
        archives[_archive(spec, subset)].append(subset)
    # Archives the Hub does not have are left out; `rge data check` then names the missing images.
    todo = {archive: served for archive, served in archives.items() if archive in listing.files and archive not in done}
    in_place = hub.archive_folder  # archives read where they are (a local snapshot), else downloaded here
    wanted = [path for subset in chosen for path in files[subset]] + (sorted(todo) if in_place is None else [])
    echo(f"{spec.repo_id}@{listing.commit[:12]}: {len(chosen)} subsets, {len(wanted)} files -> {dest}")
    hub.download(spec.repo_id, listing.commit, wanted, dest)
    record = {"repo": spec.repo_id, "revision": revision, "commit": listing.commit}
    held_before: list[str] = state["subsets"] if state else []
    before = {"subsets": held_before, "all": bool(state and state["all"])}
    for archive, served in todo.items():
        path = (in_place or dest) / archive
        paths = _image_paths(dest, spec, [p for subset in served for p in files[subset]])
        placement = member_placement(path, paths, spec.default_prefix)
        written = unpack(path, dest, placement.target, dest / STATE / "scratch", limits or UnpackLimits())
        echo(f"unpacked {path} into {dest / placement.add} ({written} files)")
        done.add(archive)
        # Progress only: the subsets count as held once every archive they need is unpacked.
        _write_state(dest, {**record, **before, "unpacked": sorted(done)})
        if in_place is None:
            path.unlink()  # after the state says it is unpacked: MMEB-train's archives weigh tens of GB
    held = sorted(set(chosen) | set(held_before))
    _write_state(dest, {**record, "subsets": held, "all": subsets is None or before["all"], "unpacked": sorted(done)})
    report = check_folder(dest, kind=spec.kind, decode=decode) if check else None
    return FetchResult(dest, listing.commit, held, len(wanted), report)


def fetched(name: str, dest: Path, subsets: list[str] | None = None, revision: str = "main") -> str | None:
    """The commit `dest` holds when it already has `subsets` (default: all) of HUB_DATASETS[name]; None when a
    fetch would have work to do. Reads the state only: no network."""
    state = _read_state(dest.resolve(), HUB_DATASETS[name], revision)
    return state["commit"] if state is not None and _holds(state, subsets) else None


def _holds(state: dict, subsets: list[str] | None) -> bool:
    return state["all"] if subsets is None else set(subsets) <= set(state["subsets"])


def _split_files(files: list[str], splits: tuple[str, ...]) -> dict[str, list[str]]:
    """Parquet files of `splits` per subset, in the three layouts of rge_core/data/layout.py."""
    alternatives = "|".join(re.escape(split) for split in splits)
    pattern = re.compile(rf"([^/]+)/({alternatives})(\.parquet|-[^/]*\.parquet|/[^/]+\.parquet)")
    found: dict[str, list[str]] = {}
    for path in sorted(files):
        match = pattern.fullmatch(path)
        if match and not match.group(1).startswith((".", "_")):
            found.setdefault(match.group(1), []).append(path)
    return found


def _archive(spec: HubDataset, subset: str) -> str:
    return spec.archive.format(subset=subset)


def _image_paths(dest: Path, spec: HubDataset, parquet_files: list[str]) -> Iterator[str]:
    """Up to _SAMPLED_PATHS distinct image paths named by the rows of `parquet_files`."""
    seen: set[str] = set()
    for rel in parquet_files:
        names = set(pq.read_schema(dest / rel).names)
        table = pq.read_table(dest / rel, columns=[c for c in spec.image_columns() if c in names])
        for column in table.columns:
            values = pc.list_flatten(column) if pa.types.is_list(column.type) else column  # eval candidates
            for path in pc.unique(values).to_pylist():
                if path and path not in seen:
                    seen.add(path)
                    yield path
                    if len(seen) >= _SAMPLED_PATHS:
                        return


def _read_state(dest: Path, spec: HubDataset, revision: str) -> dict | None:
    path = dest / STATE / "state.json"
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    if state["repo"] != spec.repo_id or state["revision"] != revision:
        raise DataError(
            f"{dest} holds {state['repo']}@{state['revision']}; fetch {spec.repo_id}@{revision} into another folder"
        )
    return state


def _write_state(dest: Path, state: dict) -> None:
    path = dest / STATE / "state.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("state.json.partial")
    partial.write_text(json.dumps(state, indent=1))
    os.replace(partial, path)
