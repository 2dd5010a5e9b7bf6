"""eval.rationales: what each query is embedded after, the diagnostics of the paper's central question.

    generated  its own greedy rationale (the method)
    shuffled   another query's generated rationale from the same dataset: a derangement seeded by
               eval.shuffle_seed and the dataset's name (rationales.parquet records whose rationale each got)
    given      the text eval.given_rationales holds for its item id: a parquet or JSONL file (id column item_id,
               pair_id or id; text column rationale, facts or text), an artifact (an eval's rationales.parquet,
               a benchmark's facts.parquet, a curation's valid rationales) or synthetic-facts (the synthetic
               benchmark's facts: the oracle's reasoning)

The stage settles every query's rationale before any encoding (`assign`): for shuffled it first encodes the
queries in generated mode, through that mode's own cache, so an earlier generated eval of the same model is
reused. The assignment goes to the embedding cache folder, and every process reads it back (`fixed_works`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rge_core.artifacts.store import ArtifactStore, looks_like_version_id
from rge_core.config.schema import Config
from rge_core.data.special_text import RESERVED
from rge_core.embedder import Rationale
from rge_core.evaluation.work import DatasetWork
from rge_core.fileio import atomic_write_parquet
from rge_core.model.inputs import Query

GENERATED, SHUFFLED, GIVEN = "generated", "shuffled", "given"
SYNTHETIC_FACTS = "synthetic-facts"
ASSIGNED = "assigned-rationales.parquet"  # in the embedding cache folder of a shuffled or given eval


class RationaleModeError(ValueError):
    pass


@dataclass(frozen=True)
class FixedQuery(Query):
    """A query embedded after a rationale settled beforehand (nothing is generated for it)."""

    given: Rationale = Rationale("", False, 0)
    rationale_of: str = ""  # the item whose rationale it is (itself for a given one)


def derangement(n: int, seed: int, dataset: str) -> list[int]:
    """donor[i]: whose rationale query i gets; never its own (one cycle through a seeded random order)."""
    if n < 2:
        raise RationaleModeError(f"eval.rationales: shuffled needs two queries or more per dataset; {dataset} has {n}")
    digest = int.from_bytes(hashlib.sha256(f"{seed}/{dataset}".encode()).digest()[:8], "big")
    order = np.random.default_rng(digest).permutation(n)
    donors = np.empty(n, dtype=int)
    donors[order] = np.roll(order, 1)  # order[k] takes the rationale of order[k - 1]
    return donors.tolist()


@dataclass(frozen=True)
class GivenSource:
    """What eval.given_rationales names, as the eval's version records it: {"given": synthetic-facts}, an
    artifact id, or a file's absolute path with its sha256."""

    identity: dict

    @property
    def name(self) -> str:
        return self.identity["given"]

    def texts(self, store: ArtifactStore, benchmark: str | None) -> dict[str, str | None]:
        """Item id -> text (a curation artifact: each pair's first valid rationale); `benchmark`: the synthetic
        benchmark artifact the eval reads, if any."""
        from rge_core.artifacts.local import local_folder
        from rge_core.curation.rationales_artifact import read_rationales, valid_rationales
        from rge_core.generation.reference import ReferenceGenerator

        if self.name == SYNTHETIC_FACTS:
            path = local_folder(store.get(str(benchmark))) / "facts.parquet"
        elif looks_like_version_id(self.name):
            artifact = store.get(self.name)
            if artifact.manifest.kind == "rationales":
                return dict(valid_rationales(read_rationales(artifact)))
            path = local_folder(artifact) / _ARTIFACT_FILES[artifact.manifest.kind]
        else:
            path = Path(self.name)
        try:
            return ReferenceGenerator(str(path)).texts
        except ValueError as error:
            raise RationaleModeError(f"eval.given_rationales: {error}") from None


_ARTIFACT_FILES = {"eval": "rationales.parquet", "benchmark": "facts.parquet", "rationales": ""}


def given_source(config: Config, store: ArtifactStore, synthetic: bool) -> GivenSource | None:
    """What eval.given_rationales names (None unless eval.rationales is given); `synthetic`: whether the eval
    reads the synthetic benchmark. A source that cannot be used fails here, in one line, before any work."""
    ev = config.eval
    value = ev.given_rationales
    if ev.rationales != GIVEN:
        if value:
            raise RationaleModeError(
                f"eval.given_rationales: {value} is set but eval.rationales is {ev.rationales} (set it to given)"
            )
        return None
    if not value:
        raise RationaleModeError(
            f"eval.given_rationales: eval.rationales given needs a file, an artifact id or {SYNTHETIC_FACTS}"
        )
    if value == SYNTHETIC_FACTS:
        if not synthetic:
            raise RationaleModeError(f"eval.given_rationales: {SYNTHETIC_FACTS} needs eval.data synthetic")
        return GivenSource({"given": SYNTHETIC_FACTS})
    if looks_like_version_id(value) and not Path(value).exists():
        if not store.is_complete(value):
            raise RationaleModeError(f"eval.given_rationales: no complete artifact {value} under {store.root}")
        kind = store.get(value).manifest.kind
        if kind not in _ARTIFACT_FILES:
            raise RationaleModeError(
                f"eval.given_rationales: {value} is a {kind} artifact; name an eval, benchmark or rationales "
                f"artifact, a .parquet or .jsonl file, or {SYNTHETIC_FACTS}"
            )
        return GivenSource({"given": value})
    path = Path(value).resolve()
    if not path.is_file() or path.suffix not in (".parquet", ".jsonl", ".json"):
        raise RationaleModeError(
            f"eval.given_rationales: {value} is not a .parquet or .jsonl file, an artifact id or {SYNTHETIC_FACTS}"
        )
    return GivenSource({"given": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})


def cache_extra(config: Config, source: GivenSource | None) -> list:
    """What the mode adds to the embedding cache key ([] for generated, whose cache it shares)."""
    ev = config.eval
    if ev.rationales == SHUFFLED:
        return [SHUFFLED, ev.shuffle_seed]
    if source is not None:
        return [GIVEN, source.identity]
    return []


def version_settings(config: Config, source: GivenSource | None) -> dict:
    """The mode's settings whose version marker is a sentence (eval.rationales itself is versioned as is)."""
    ev = config.eval
    settings: dict = {}
    if ev.rationales == SHUFFLED:
        settings["shuffle_seed"] = ev.shuffle_seed
    if source is not None:
        settings["given_rationales"] = source.identity
    return settings


def check_mode(config: Config) -> None:
    """Settings that depend on each other (called before any work)."""
    ev = config.eval
    if ev.rationales != GENERATED and not ev.reasoning:
        raise RationaleModeError(
            f"eval.rationales: {ev.rationales} embeds each query after a rationale; it needs eval.reasoning true"
        )


def _given_rows(works: Sequence[DatasetWork], texts: dict[str, str | None], source: GivenSource) -> list[dict]:
    missing = [r["item_id"] for work in works for r in work.rows if texts.get(r["item_id"]) is None]
    if missing:
        total = sum(len(work.rows) for work in works)
        raise RationaleModeError(
            f"eval.given_rationales: {source.name} has no rationale for {len(missing)} of {total} eval queries "
            f"(first: {', '.join(missing[:3])})"
        )
    rows = []
    for work in works:
        for r in work.rows:
            text = texts[r["item_id"]] or ""
            found = [token for token in RESERVED if token in text]
            if found:
                raise RationaleModeError(
                    f"eval.given_rationales: {source.name}: {r['item_id']}: the rationale contains the model's "
                    f"special tokens {' '.join(found)}"
                )
            rows.append(_row(work, r["item_id"], Rationale(text, False, 0), r["item_id"]))
    return rows


def _row(work: DatasetWork, item_id: str, rationale: Rationale, of: str) -> dict:
    return {
        "item_id": item_id,
        "dataset": work.dataset,
        "rationale": rationale.text,
        "num_tokens": rationale.num_tokens,
        "budget_hit": rationale.budget_hit,
        "rationale_of": of,
    }


Generate = Callable[[DatasetWork], list[Rationale]]


def _shuffled_rows(works: Sequence[DatasetWork], generate: Generate, seed: int) -> list[dict]:
    rows = []
    for work in works:
        own = generate(work)
        ids = [r["item_id"] for r in work.rows]
        for i, donor in enumerate(derangement(len(ids), seed, work.dataset)):
            rows.append(_row(work, ids[i], own[donor], ids[donor]))
    return rows


def assign(
    config: Config,
    store: ArtifactStore,
    works: Sequence[DatasetWork],
    source: GivenSource | None,
    benchmark: str | None,
    generate: Generate,
    cache: Path,
) -> str:
    """Settle every query's rationale for a shuffled or given eval and write the assignment into `cache`;
    `generate(work)` gives a dataset's generated rationales (shuffled), `benchmark` is the synthetic benchmark
    the eval reads (given synthetic-facts). Returns the file."""
    if config.eval.rationales == SHUFFLED:
        rows = _shuffled_rows(works, generate, config.eval.shuffle_seed)
    elif source is not None:
        rows = _given_rows(works, source.texts(store, benchmark), source)
    else:
        raise RationaleModeError(f"eval.rationales: {config.eval.rationales} assigns no rationale")
    path = str(cache / ASSIGNED)
    atomic_write_parquet(path, pa.Table.from_pylist(rows))
    return path


def fixed_works(works: list[DatasetWork], assigned: str) -> list[DatasetWork]:
    """`works` with every query a FixedQuery after its assigned rationale (from `assign`'s file)."""
    if not assigned:
        return works
    table = pq.read_table(assigned).to_pylist()
    by_id = {row["item_id"]: Rationale(row["rationale"], row["budget_hit"], row["num_tokens"]) for row in table}
    of = {row["item_id"]: row["rationale_of"] for row in table}
    fixed = []
    for work in works:
        queries: list[Query] = [
            FixedQuery(q.text, q.image, q.instruction, by_id[r["item_id"]], of[r["item_id"]])
            for q, r in zip(work.queries, work.rows, strict=True)
        ]
        fixed.append(replace(work, queries=queries))
    return fixed
