"""Stage 1, ingest: an MMEB-train-format folder (or the synthetic benchmark) -> the canonical `pairs`
artifact (pairs.parquet, rejects.jsonl, image_root in its stats), its texts rewritten by the files of
data.query_rewrites / data.candidate_rewrites when set (rge_core/data/rewrites.py).

    rge ingest --config configs/tiny.yaml
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict

import pyarrow as pa

from data_schemas.io import write_table
from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec
from rge_core.config.schema import Config, versioned
from rge_core.data.image_header import pixel_cap
from rge_core.data.mmeb_train import read_mmeb_train
from rge_core.data.rewrites import RewriteFile, load_rewrites
from rge_core.data.special_text import check_no_special_tokens
from rge_core.sources import TRAIN, DataSource, data_source
from rge_core.stages.declaration import StageDecl

_CODE = ["rge_core/data", "data_schemas", "rge_core/sources.py", "rge_core/stages/ingest.py"]
_REWRITTEN = {"query": ("qry_text",), "candidate": ("pos_text", "neg_text")}  # columns of each side


def _rewrites(config: Config) -> dict[str, RewriteFile | None]:
    data = config.data
    return {side: load_rewrites(getattr(data, f"{side}_rewrites"), f"data.{side}_rewrites") for side in _REWRITTEN}


def _check_rewrites(rewrites: dict[str, RewriteFile | None], present: tuple[str, ...]) -> None:
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


def ingest_spec(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> StageSpec:
    """The pairs artifact of `config.data`; every setting and the data's image root are checked here, in seconds."""
    rewrites = _rewrites(config)  # bad files fail before anything else
    source = data_source(config, store, TRAIN)  # a wrong image root fails here, not after a full scan
    _check_rewrites(rewrites, source.subsets)
    # What makes a row a reject, besides data.max_text_chars: an image above the pixel cap (its header checked).
    settings = {**versioned(config.data), **source.identity, "pixel_cap": _pixel_cap(config)}
    if any(rewrites.values()):
        settings["rewrites"] = {side: f.record() if f else None for side, f in rewrites.items()}
    return StageSpec(
        "pairs",
        settings,
        source.inputs,
        _CODE,
        lambda writer: _build(config, store, writer, source, rewrites),
        before=source.before,
    )


def _build(
    config: Config, store: ArtifactStore, writer, source: DataSource, rewrites: dict[str, RewriteFile | None]
) -> dict:
    folder = source.folder(store)
    pairs, rejects = read_mmeb_train(
        folder,
        split=config.data.split,
        subsets=config.data.subsets or None,
        image_root=source.image_root(store),
        on_error="skip",
        pixel_cap=_pixel_cap(config),
        max_text_chars=config.data.max_text_chars,
    )
    if pairs.num_rows == 0:
        raise ValueError(f"{folder}: no usable pairs in split {config.data.split!r} ({len(rejects)} rejected)")
    pairs, rewrite_stats = _rewrite_pairs(pairs, rewrites)
    subsets = pairs.column("subset").to_pylist()
    check_no_special_tokens(
        (
            (subsets[row], name, row, text)
            for name in ("qry_text", "pos_text", "neg_text")
            for row, text in enumerate(pairs.column(name).to_pylist())
        ),
        f"data.source {folder}",
    )
    write_table(writer.file_url("pairs.parquet"), pairs, "pairs")
    writer.write_text("rejects.jsonl", "".join(json.dumps(asdict(issue)) + "\n" for issue in rejects))
    per_subset = Counter(pairs.column("subset").to_pylist())
    return {
        "rows": pairs.num_rows,
        "rejects": len(rejects),
        "subsets": dict(sorted(per_subset.items())),
        "image_root": source.image_root_name,
        "rewrites": rewrite_stats,
    }


STAGE = StageDecl(
    "ingest",
    provides="pairs",
    spec=ingest_spec,
    section="data",
    help="Ingest an MMEB-train folder (or the synthetic benchmark) into the pairs artifact.",
)
