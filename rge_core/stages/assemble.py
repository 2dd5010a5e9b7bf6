"""Stage 3, assemble: pairs + valid rationales -> the versioned training `dataset` artifact
(train.parquet, validation.parquet, README.md dataset card, statistics in the manifest).

    rge assemble --config configs/tiny.yaml
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import asdict

import pyarrow as pa

from data_schemas.io import read_table, write_table
from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec
from rge_core.config.schema import Config
from rge_core.curation.shards import shard_file
from rge_core.stages.dataset_card import dataset_card, length_stats

_CODE = ["rge_core/stages/assemble.py", "rge_core/stages/dataset_card.py", "data_schemas"]


def in_validation(pair_id: str, seed: int, fraction: float) -> bool:
    """A stable split: depends only on the pair id and the seed, not on row order or dataset size."""
    digest = hashlib.sha256(f"{seed}/{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def valid_rationales(store: ArtifactStore, rationales_id: str) -> dict[str, str]:
    artifact = store.get(rationales_id)
    shards = artifact.manifest.stats["shards"]
    texts: dict[str, str] = {}
    for index in range(shards):
        for row in read_table(artifact.file_url(shard_file(index)), "rationales").to_pylist():
            if row["valid"]:
                texts.setdefault(row["pair_id"], row["rationale"])  # first valid sample per pair
    return texts


def assemble_spec(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> StageSpec:
    pairs_id, rationales_id = inputs["ingest"], inputs["curate"]
    settings = asdict(config.assemble)
    return StageSpec(
        "dataset",
        settings,
        {"pairs": pairs_id, "rationales": rationales_id},
        _CODE,
        lambda writer: _build(store, writer, pairs_id, rationales_id, settings),
    )


def _build(store: ArtifactStore, writer, pairs_id: str, rationales_id: str, settings: dict) -> dict:
    texts = valid_rationales(store, rationales_id)
    examples = []
    for pair in read_table(store.get(pairs_id).file_url("pairs.parquet"), "pairs").to_pylist():
        if pair["pair_id"] not in texts:
            continue  # rejected in curation: no oracle rationale to teach
        split = (
            "validation"
            if in_validation(pair["pair_id"], settings["seed"], settings["validation_fraction"])
            else "train"
        )
        examples.append(
            {
                **{k: pair[k] for k in ("pair_id", "subset")},
                "split": split,
                "rationale": texts[pair["pair_id"]],
                **{k: pair[k] for k in ("qry_text", "qry_image", "pos_text", "pos_image", "neg_text", "neg_image")},
            }
        )
    if not examples:
        raise ValueError(f"{rationales_id}: no valid rationale matches a pair of {pairs_id}")
    stats: dict = {"image_root": store.get(pairs_id).manifest.stats["image_root"]}
    for split in ("train", "validation"):
        rows = [e for e in examples if e["split"] == split]
        if rows:
            write_table(writer.file_url(f"{split}.parquet"), pa.Table.from_pylist(rows), "training_examples")
        stats[split] = {"rows": len(rows), "per_subset": dict(sorted(Counter(r["subset"] for r in rows).items()))}
    stats["rationale_chars"] = length_stats([len(e["rationale"]) for e in examples])
    rationales_stats = store.get(rationales_id).manifest.stats
    stats["curation"] = {
        k: rationales_stats[k] for k in ("rows", "rejects", "reject_rate", "prompt_set", "prompt_set_hash", "generator")
    }
    writer.write_text("README.md", dataset_card(writer.version_id, stats, examples[:3]))
    return stats
