"""The `rationales` artifact kind, read and written through one reader and one writer: its rows live in
parquet shards (`shards/rationales-NNNNN.parquet`, as many as the manifest's `shards` stat says), each validated
against the `rationales` schema. Stages that read rationales (assemble) or write them (curate, a filter of them)
go through here, never through the shard layout.

    table = read_rationales(store.get(rationales_id))             # every row, shard by shard
    texts = valid_rationales(table)                               # pair id -> its first valid rationale
    stats = write_rationales(writer, table)                       # one shard; returns the stats to record
    summary = rationales_summary(table)                           # rows, valid, rejects, prompt set, generator
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from data_schemas.io import read_table, write_table
from rge_core.artifacts.store import Artifact, ArtifactWriter

SHARDS_STAT = "shards"


def shard_file(index: int) -> str:
    return f"shards/rationales-{index:05d}.parquet"


def read_rationales(artifact: Artifact) -> pa.Table:
    """Every row of a rationales artifact, in shard order."""
    shards = artifact.manifest.stats[SHARDS_STAT]
    return pa.concat_tables([read_table(artifact.file_url(shard_file(i)), "rationales") for i in range(shards)])


def valid_rationales(table: pa.Table) -> dict[str, str]:
    """Pair id -> its first valid rationale (what assemble teaches, what eval.rationales given reads)."""
    texts: dict[str, str] = {}
    for row in table.filter(table.column("valid")).select(["pair_id", "rationale"]).to_pylist():
        texts.setdefault(row["pair_id"], row["rationale"])
    return texts


def write_rationales(writer: ArtifactWriter, table: pa.Table) -> dict:
    """`table` as the rows of the artifact being written (one shard); the stats its manifest must hold."""
    write_table(writer.file_url(shard_file(0)), table, "rationales")
    return {**rationales_summary(table), SHARDS_STAT: 1}


def rationales_summary(table: pa.Table) -> dict:
    """What a dataset card and a manifest say of a rationales table: its rows, how many are valid and rejected,
    per subset, their mean length, and the prompt set and generator that wrote them."""
    valid = table.filter(table.column("valid"))
    first = table.slice(0, 1).to_pylist()[0] if table.num_rows else {}
    return {
        "rows": table.num_rows,
        "valid": valid.num_rows,
        "rejects": table.num_rows - valid.num_rows,
        "reject_rate": round((table.num_rows - valid.num_rows) / max(table.num_rows, 1), 4),
        "valid_per_subset": dict(sorted(Counter(valid.column("subset").to_pylist()).items())),
        "mean_tokens": round(sum(valid.column("num_tokens").to_pylist()) / max(valid.num_rows, 1), 2),
        "prompt_set": first.get("prompt_set", ""),
        "prompt_set_hash": first.get("prompt_set_hash", ""),
        "generator": first.get("generator", ""),
    }
