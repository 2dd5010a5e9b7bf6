"""Stage 1, ingest: an MMEB-train-format folder (or the synthetic benchmark) -> the canonical `pairs`
artifact (pairs.parquet, rejects.jsonl, image_root in its stats), its texts rewritten by the files of
data.query_rewrites / data.candidate_rewrites when set (rge_core/data/rewrites.py).

    rge ingest --config configs/tiny.yaml
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from data_schemas.io import write_table
from rge_core.artifacts.local import cache_root, local_folder
from rge_core.artifacts.store import ArtifactStore
from rge_core.artifacts.verify import local_sha256
from rge_core.config.schema import Config
from rge_core.data.hf_source import hub_folder, is_hub_source
from rge_core.data.image_header import pixel_cap
from rge_core.data.layout import TRAIN_SPLITS, list_subsets
from rge_core.data.mmeb_train import read_mmeb_train
from rge_core.data.rewrites import RewriteFile, load_rewrites
from rge_core.data.special_text import check_no_special_tokens
from rge_core.stages.prepare import prepare_benchmark
from rge_core.stages.runner import StageSpec, build_or_reuse

SYNTHETIC = "synthetic"
_CODE = ["rge_core/data", "data_schemas", "rge_core/stages/ingest.py"]
_REWRITTEN = {"query": ("qry_text",), "candidate": ("pos_text", "neg_text")}  # columns of each side


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


@dataclass(frozen=True)
class _Source:
    train: Path  # the MMEB-train folder
    images: Path  # local image root
    image_root: str  # how the artifact names the image root (see image_root)
    inputs: dict[str, str]  # input artifacts
    identity: dict  # what identifies the source in the version hash


def _source(config: Config, store: ArtifactStore) -> _Source:
    data = config.data
    if data.source == SYNTHETIC:
        benchmark_id = prepare_benchmark(config, store)
        train = local_folder(store.get(benchmark_id)) / "train"
        # Named through the benchmark artifact, so versions do not depend on where the root is mounted.
        return _Source(train, train, f"{benchmark_id}/train", {"benchmark": benchmark_id}, {"source": SYNTHETIC})
    hub: dict[str, str] = {}
    if is_hub_source(data.source):  # fetched into the cache (a no-op once there), then a local folder
        subsets = data.subsets or None
        folder, hub["hub"] = hub_folder(data.source, cache_root(store), "mmeb-train", subsets, "data.source")
    else:
        folder = Path(data.source).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"data.source: {data.source} is not a folder (nor 'synthetic' or hf://)")
    images = Path(data.image_root).resolve() if data.image_root else folder
    fingerprint = folder_fingerprint(folder, images, mode=data.fingerprint)
    identity = {"source": str(folder), "image_root": str(images), "fingerprint": fingerprint}
    return _Source(folder, images, str(images), {}, {**identity, **hub})


def _rewrites(config: Config) -> dict[str, RewriteFile | None]:
    data = config.data
    return {side: load_rewrites(getattr(data, f"{side}_rewrites"), f"data.{side}_rewrites") for side in _REWRITTEN}


def _check_rewrites(rewrites: dict[str, RewriteFile | None], train: Path) -> None:
    present = list_subsets(train, TRAIN_SPLITS)
    for side, rewrite_file in rewrites.items():
        if rewrite_file is not None:
            rewrite_file.check_datasets(present, f"data.{side}_rewrites")


def _rewrite_pairs(pairs: pa.Table, rewrites: dict[str, RewriteFile | None]) -> tuple[pa.Table, dict]:
    """The pairs with each side's texts rewritten, and per side the file's record with how many texts of
    each subset its rules changed (a subset whose rules change nothing shows 0)."""
    subsets = pairs.column("subset").to_pylist()
    # A pair without a hard negative keeps neg_text "": a "\n" there would read as a negative downstream.
    has_negative = [
        bool(text or image)
        for text, image in zip(pairs.column("neg_text").to_pylist(), pairs.column("neg_image").to_pylist(), strict=True)
    ]
    records: dict[str, dict | None] = {}
    for side, columns in _REWRITTEN.items():
        rewrite_file = rewrites[side]
        if rewrite_file is None:
            records[side] = None
            continue
        # Only subsets the file has rules for; one whose rules change nothing shows 0.
        changed = {subset: 0 for subset in sorted(set(subsets)) if rewrite_file.rules_for(subset) is not None}
        for name in columns:
            texts = pairs.column(name).to_pylist()
            for row, (subset, text) in enumerate(zip(subsets, texts, strict=True)):
                if name == "neg_text" and not has_negative[row]:
                    continue
                texts[row], was_changed = rewrite_file.apply(subset, text)
                if subset in changed:
                    changed[subset] += was_changed
            pairs = pairs.set_column(pairs.column_names.index(name), name, pa.array(texts, pa.string()))
        records[side] = {**rewrite_file.record(), "changed": changed}
    return pairs, records


def _pixel_cap(config: Config) -> int:
    return pixel_cap(config.model.max_pixels)


def ingest(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> str:
    """Write (or reuse) the pairs artifact for `config.data`; returns its version id."""
    rewrites = _rewrites(config)  # bad files fail before the synthetic benchmark is built
    source = _source(config, store)
    _check_rewrites(rewrites, source.train)
    settings = {**source.identity, "split": config.data.split, "subsets": config.data.subsets}
    # What makes a row a reject: a text's length, an image's size (its header checked).
    settings["row_bounds"] = {"max_text_chars": config.data.max_text_chars, "pixel_cap": _pixel_cap(config)}
    if any(rewrites.values()):
        settings["rewrites"] = {side: f.record() if f else None for side, f in rewrites.items()}
    return build_or_reuse(
        store,
        StageSpec("pairs", settings, source.inputs, _CODE, lambda writer: _build(config, writer, source, rewrites)),
    )


def _build(config: Config, writer, source: _Source, rewrites: dict[str, RewriteFile | None]) -> dict:
    pairs, rejects = read_mmeb_train(
        source.train,
        split=config.data.split,
        subsets=config.data.subsets or None,
        image_root=source.images,
        on_error="skip",
        pixel_cap=_pixel_cap(config),
        max_text_chars=config.data.max_text_chars,
    )
    if pairs.num_rows == 0:
        raise ValueError(f"{source.train}: no usable pairs in split {config.data.split!r} ({len(rejects)} rejected)")
    pairs, rewrite_stats = _rewrite_pairs(pairs, rewrites)
    subsets = pairs.column("subset").to_pylist()
    check_no_special_tokens(
        (
            (subsets[row], name, row, text)
            for name in ("qry_text", "pos_text", "neg_text")
            for row, text in enumerate(pairs.column(name).to_pylist())
        ),
        f"data.source {source.train}",
    )
    write_table(writer.file_url("pairs.parquet"), pairs, "pairs")
    writer.write_text("rejects.jsonl", "".join(json.dumps(asdict(issue)) + "\n" for issue in rejects))
    per_subset = Counter(pairs.column("subset").to_pylist())
    return {
        "rows": pairs.num_rows,
        "rejects": len(rejects),
        "subsets": dict(sorted(per_subset.items())),
        "image_root": source.image_root,
        "rewrites": rewrite_stats,
    }
