"""Instruction sets for evaluation. "standard" keeps MMEB's own texts (comparable with published
numbers). A YAML file rewrites instructions per dataset, as the RGE reference eval did:

    ImageNet-1K:
      query: {find: "Represent the given image for classification", replace: "Think about the object, then represent it"}
      candidate: {find: "...", replace: "..."}

Every item of a listed dataset must contain its `find` text: a rewrite that silently misses some items
would make a mixed, unreported evaluation.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

STANDARD = "standard"
SIDES = ("query", "candidate")


class InstructionError(ValueError):
    pass


def load_instructions(spec: str) -> tuple[dict[str, dict[str, tuple[str, str]]], str]:
    """(dataset -> side -> (find, replace), content hash); ({}, "standard") for MMEB's own texts."""
    if spec == STANDARD:
        return {}, STANDARD
    path = Path(spec)
    text = path.read_text()
    raw = yaml.safe_load(text) or {}
    rewrites: dict[str, dict[str, tuple[str, str]]] = {}
    for dataset, sides in raw.items():
        if not isinstance(sides, dict) or not set(sides) <= set(SIDES):
            raise InstructionError(f"{path}: {dataset}: expected a mapping with keys among {SIDES}")
        rewrites[dataset] = {}
        for side, rule in sides.items():
            if not isinstance(rule, dict) or set(rule) != {"find", "replace"}:
                raise InstructionError(f"{path}: {dataset}.{side}: expected {{find: ..., replace: ...}}")
            rewrites[dataset][side] = (str(rule["find"]), str(rule["replace"]))
    return rewrites, hashlib.sha256(text.encode()).hexdigest()[:16]


def rewrite(rewrites: dict, dataset: str, side: str, text: str, where: str) -> str:
    rule = rewrites.get(dataset, {}).get(side)
    if rule is None:
        return text
    find, replace = rule
    if find not in text:
        raise InstructionError(f"{where}: {side} text does not contain the instruction to rewrite: {find!r}")
    return text.replace(find, replace, 1)
