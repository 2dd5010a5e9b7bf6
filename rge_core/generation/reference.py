"""Reference generator: texts that already exist, read from a parquet or JSONL file keyed by pair id.

    generator = ReferenceGenerator("facts.parquet")          # columns auto-detected
    generator = ReferenceGenerator("mine.jsonl", id_column="pair_id", text_column="rationale")

The id column is the first of pair_id / item_id / id present, the text column the first of rationale /
facts / text, unless named. A request whose id has no entry (or a null text) gets an empty text with
finish_reason "missing"; the curation stage rejects it with that reason. Nothing is generated, so
num_tokens is 0 and sampling settings, seeds and regex have no effect.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

import pyarrow.parquet as pq

from rge_core.config.schema import DecodingConfig
from rge_core.fileio import read_bytes
from rge_core.generation.base import GenerationRequest, GenerationResult

ID_COLUMNS = ("pair_id", "item_id", "id")
TEXT_COLUMNS = ("rationale", "facts", "text")


def _read_rows(path: str) -> list[dict]:
    data = read_bytes(path)  # local path or fsspec URL
    if path.endswith(".parquet"):
        return pq.read_table(io.BytesIO(data)).to_pylist()
    if path.endswith((".jsonl", ".json")):
        return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    raise ValueError(f"{path}: expected a .parquet or .jsonl file")


def _pick(path: str, columns: set[str], named: str | None, candidates: tuple[str, ...], what: str) -> str:
    if named is not None:
        if named not in columns:
            raise ValueError(f"{path}: no {what} column {named!r}; columns: {sorted(columns)}")
        return named
    for name in candidates:
        if name in columns:
            return name
    raise ValueError(f"{path}: no {what} column (looked for {', '.join(candidates)}); columns: {sorted(columns)}")


class ReferenceGenerator:
    def __init__(self, path: str, id_column: str | None = None, text_column: str | None = None):
        path = str(path)
        self.name = f"reference:{path}"
        rows = _read_rows(path)
        columns = set().union(*(row.keys() for row in rows)) if rows else set()
        id_key = _pick(path, columns, id_column, ID_COLUMNS, "id")
        text_key = _pick(path, columns, text_column, TEXT_COLUMNS, "text")
        self.texts: dict[str, str | None] = {}
        for row in rows:
            key = str(row.get(id_key))
            if key in self.texts:
                raise ValueError(f"{path}: id {key!r} appears more than once")
            self.texts[key] = row.get(text_key)

    def generate(
        self, requests: Sequence[GenerationRequest], sampling: DecodingConfig, regex: str | None = None
    ) -> list[GenerationResult]:
        results = []
        for request in requests:
            text = self.texts.get(request.request_id)
            reason = "missing" if text is None else "stop"
            results.append(GenerationResult(request.request_id, text or "", num_tokens=0, finish_reason=reason))
        return results

    def close(self) -> None:
        self.texts.clear()
