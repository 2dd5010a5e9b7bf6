"""Curation of one shard of pairs: render prompts, generate, validate, resample the invalid ones.

Every request's seed derives from (base seed, pair id, attempt), never from the shard or batch it
lands in, so a resumed, re-sharded or multi-engine run writes the same texts (with vLLM, which honours
per-request seeds).

A bad pair is a reject, not a failed stage: one whose image is unusable now (truncated, undecodable, too
large: it may have changed since ingest, and training would read it too) is not sent to the generator, and
one whose request the generator refuses (a prompt longer than the context, an image it cannot read) is
found by retrying the batch one request at a time. Neither is retried: they would fail again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa

from data_schemas.schemas import RATIONALES
from rge_core.config.schema import DecodingConfig
from rge_core.curation.validate import RationaleRules, reject_reason
from rge_core.data.image_header import header_problem, pixel_cap
from rge_core.generation.base import GenerationRequest, GenerationResult, Generator
from rge_core.messages import shortened
from rge_core.prompts.prompt_set import PromptSet
from rge_core.prompts.render import render_pair
from rge_core.seeds import derived_seed


def shard_ranges(num_rows: int, shard_size: int) -> list[range]:
    return [range(start, min(start + shard_size, num_rows)) for start in range(0, num_rows, shard_size)]


def request_seed(base_seed: int, pair_id: str, attempt: int) -> int:
    return derived_seed(base_seed, pair_id, attempt)


@dataclass(frozen=True)
class ShardContext:
    prompt_set: PromptSet
    generator: Generator
    sampling: DecodingConfig
    rules: RationaleRules
    max_retries: int
    image_root: Path
    regex: str | None  # structured-output constraint handed to the generator, or None
    pixel_cap: int = 0  # images above it are rejects (rge_core/data/image_header.py); 0: Pillow's threshold


def _request(pair: dict, parts: list[dict], image_root: Path, seed: int) -> GenerationRequest:
    images = {"query": pair["qry_image"], "target": pair["pos_image"]}
    resolved = [
        {"type": "image", "path": str(image_root / images[part["side"]])} if part["type"] == "image" else part
        for part in parts
    ]
    return GenerationRequest(request_id=pair["pair_id"], parts=resolved, seed=seed)


def _image_problem(pair: dict, context: ShardContext) -> str:
    for rel in (pair["qry_image"], pair["pos_image"], pair["neg_image"]):
        if rel and (problem := header_problem(context.image_root / rel, rel, context.pixel_cap or pixel_cap(0))):
            return f"image: {problem}"
    return ""


def _generate(context: ShardContext, requests: list[GenerationRequest]) -> list[GenerationResult | str]:
    """The generator's results, or for a request it refuses, why (the batch is retried one by one)."""
    try:
        return list(context.generator.generate(requests, context.sampling, context.regex))
    except Exception:  # which request failed, and why, is found below
        if len(requests) == 1:
            raise
    results: list[GenerationResult | str] = []
    for request in requests:
        try:
            results += context.generator.generate([request], context.sampling, context.regex)
        except Exception as error:  # one pair's failure is that pair's reject reason
            results.append(f"error: {type(error).__name__}: {shortened(' '.join(str(error).split()))}")
    return results


def curate_pairs(pairs: Sequence[dict], context: ShardContext) -> pa.Table:
    """Rationale rows (schema `rationales`) for `pairs`, in their order; invalid ones have valid=False."""
    rendered = {pair["pair_id"]: render_pair(context.prompt_set, pair) for pair in pairs}
    failed = {pair["pair_id"]: reason for pair in pairs if (reason := _image_problem(pair, context))}
    final: dict[str, tuple[GenerationResult, str, int]] = {}
    pending = [pair for pair in pairs if pair["pair_id"] not in failed]
    for attempt in range(context.max_retries + 1):
        if not pending:
            break
        seeds = [request_seed(context.sampling.seed, pair["pair_id"], attempt) for pair in pending]
        requests = [
            _request(pair, rendered[pair["pair_id"]].parts, context.image_root, seed)
            for pair, seed in zip(pending, seeds, strict=True)
        ]
        results = _generate(context, requests)
        for pair, result, seed in zip(pending, results, seeds, strict=True):
            if isinstance(result, str):
                failed[pair["pair_id"]] = result
                continue
            final[pair["pair_id"]] = (result, reject_reason(result.text, result.finish_reason, context.rules), seed)
        pending = [pair for pair in pending if pair["pair_id"] not in failed and final[pair["pair_id"]][1]]
    for pair_id, reason in failed.items():  # never generated: no text, no tokens
        final[pair_id] = (
            GenerationResult(pair_id, "", 0, "error"),
            reason,
            request_seed(context.sampling.seed, pair_id, 0),
        )
    sampling = json.dumps(asdict(context.sampling), sort_keys=True)
    rows = []
    for pair in pairs:
        result, reason, seed = final[pair["pair_id"]]
        prompt = rendered[pair["pair_id"]]
        rows.append(
            {
                "pair_id": pair["pair_id"],
                "subset": pair["subset"],
                "rationale": result.text.strip(),
                "prompt_set": context.prompt_set.name,
                "prompt_set_hash": context.prompt_set.hash,
                "template": prompt.template,
                "template_hash": prompt.template_hash,
                "generator": context.generator.name,
                "sampling": sampling,
                "seed": seed,
                "num_tokens": result.num_tokens,
                "finish_reason": result.finish_reason,
                "valid": not reason,
                "reject_reason": reason,
            }
        )
    return pa.Table.from_pylist(rows, schema=RATIONALES)
