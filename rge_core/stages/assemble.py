"""Stage 3, assemble: pairs + valid rationales -> the versioned training `dataset` artifact
(train.parquet, validation.parquet, README.md dataset card, statistics in the manifest).

    rge assemble --config configs/tiny.yaml
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pyarrow as pa

from data_schemas.io import read_table, write_table
from rge_core.artifacts.store import ArtifactStore
from rge_core.builds import StageSpec
from rge_core.config.schema import Config, versioned
from rge_core.curation.rationales_artifact import rationales_summary, read_rationales, valid_rationales
from rge_core.stages.dataset_card import dataset_card, length_stats
from rge_core.stages.declaration import StageDecl

_CODE = ["rge_core/stages/assemble.py", "rge_core/stages/dataset_card.py", "data_schemas"]


def in_validation(pair_id: str, seed: int, fraction: float) -> bool:
    """A stable split: depends only on the pair id and the seed, not on row order or dataset size."""
    digest = hashlib.sha256(f"{seed}/{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def assemble_spec(config: Config, store: ArtifactStore, inputs: dict[str, str]) -> StageSpec:
    pairs_id, rationales_id = inputs["pairs"], inputs["rationales"]
    settings = versioned(config.assemble)
    return StageSpec(
        "dataset",
        settings,
        {"pairs": pairs_id, "rationales": rationales_id},
        _CODE,
        lambda writer: _build(store, writer, pairs_id, rationales_id, settings),
    )


def _build(store: ArtifactStore, writer, pairs_id: str, rationales_id: str, settings: dict) -> dict:
    rationales = read_rationales(store.get(rationales_id))
    texts = valid_rationales(rationales)
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
    summary = rationales_summary(rationales)
    stats["curation"] = {
        k: summary[k] for k in ("rows", "rejects", "reject_rate", "prompt_set", "prompt_set_hash", "generator")
    }
    writer.write_text("README.md", dataset_card(writer.version_id, stats, examples[:3]))
    return stats


STAGE = StageDecl(
    "assemble",
    provides="dataset",
    needs=("pairs", "rationales"),
    spec=assemble_spec,
    section="assemble",
    help="Assemble the versioned training dataset from the pairs and their valid rationales.",
)
