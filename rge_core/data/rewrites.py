"""Text rewrite files in the RGE release's YAML format (github.com/MCG-NJU/RGE, src/dataset.py): per
dataset, rules for the texts of one side (queries, or candidates):

    ImageNet_1K:
      original: "Represent the given image for classification"  # every occurrence; replacement defaults to ""
      replacement: "Name the main object of the image"
    HatefulMemes:
      value_map: {"Yes": "Yes, it is hateful."}                 # exact texts only
    VOC2007:
      prefix_add: "Category: "
      suffix_add: " (a label)"

The ops run value_map -> original/replacement -> prefix_add -> suffix_add. The release maps every text of
a side through its file, so every text of a side that has a file ends with a newline afterwards, datasets
the file does not name included. Names match with '-' and '_' interchangeable: MMEB spells ImageNet_1K
(train, Hugging Face folders) and ImageNet-1K (paper) both ways.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import yaml

from rge_core.data.mmeb_registry import MMEB_DATASETS, spelling_key
from rge_core.messages import quoted, shortened
from rge_core.strict_yaml import load_strict, yaml_problem

KEYS = ("value_map", "original", "replacement", "prefix_add", "suffix_add")


class RewriteError(ValueError):
    """An unusable rewrite file; the one-line message names the setting, the file, the dataset and the key."""


@dataclass(frozen=True)
class RewriteRules:
    value_map: dict[str, str]
    original: str | None
    replacement: str
    prefix_add: str
    suffix_add: str

    def apply(self, text: str) -> str:
        text = self.value_map.get(text, text)
        if self.original is not None:
            text = text.replace(self.original, self.replacement)
        return f"{self.prefix_add}{text}{self.suffix_add}"


@dataclass(frozen=True)
class RewriteFile:
    path: str  # resolved
    sha256: str  # of the file's bytes
    rules: dict[str, RewriteRules]  # keyed by the file's own dataset names

    @cached_property
    def _by_key(self) -> dict[str, RewriteRules]:
        return {spelling_key(name): rules for name, rules in self.rules.items()}

    def rules_for(self, dataset: str) -> RewriteRules | None:
        return self._by_key.get(spelling_key(dataset))

    def apply(self, dataset: str, text: str) -> tuple[str, bool]:
        """(the text as rewritten, whether the dataset's rules changed it beyond the newline). A rule that
        changes nothing in a whole dataset usually means the data's wording differs from what the file expects."""
        rules = self.rules_for(dataset)
        rewritten = rules.apply(text) if rules is not None else text
        changed = rewritten != text
        return (rewritten if rewritten.endswith("\n") else rewritten + "\n"), changed

    def rewrite(self, dataset: str, text: str) -> str:
        return self.apply(dataset, text)[0]

    def check_datasets(self, present: Iterable[str], setting: str) -> None:
        """Fail on datasets the file names that are neither in `present` nor MMEB-V1 sets (the release's files
        name all 36, whatever a folder holds): a typo would silently rewrite nothing."""
        present = sorted(set(present))
        known = {spelling_key(name) for name in [*present, *MMEB_DATASETS]}
        absent = [name for name in self.rules if spelling_key(name) not in known]
        if absent:
            raise RewriteError(
                f"{setting}: {self.path}: dataset {shortened(', '.join(absent))} not present "
                f"(present: {', '.join(present)})"
            )

    def record(self) -> dict:
        return {"path": self.path, "sha256": self.sha256}


def load_rewrites(path: str, setting: str) -> RewriteFile | None:
    """The rewrite file at `path` (None for ""), validated; `setting` (e.g. "eval.query_rewrites") names it
    in errors."""
    if not path:
        return None
    resolved = Path(path).resolve()
    where = f"{setting}: {resolved}"
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise RewriteError(f"{where}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        raw = load_strict(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RewriteError(f"{where}: not a UTF-8 YAML file: {exc.reason} at byte {exc.start}") from None
    except yaml.YAMLError as exc:
        raise RewriteError(f"{where}: not a UTF-8 YAML file: {yaml_problem(exc)}") from None
    if raw is None:  # an empty file: no rules, texts still get their newline
        raw = {}
    if not isinstance(raw, dict):
        raise RewriteError(f"{where}: expected a mapping of dataset names at the top level, got {_got(raw)}")
    rules: dict[str, RewriteRules] = {}
    for dataset, entry in raw.items():
        if not isinstance(dataset, str):
            raise RewriteError(f"{where}: dataset name {quoted(dataset)}: expected a string, got {_got(dataset)}")
        rules[dataset] = _rules(entry, f"{where}: {shortened(dataset, 60)}")
    _check_spellings(rules, where)
    return RewriteFile(str(resolved), hashlib.sha256(data).hexdigest(), rules)


def _got(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {quoted(value)}"


def _rules(entry: object, where: str) -> RewriteRules:
    if not isinstance(entry, dict):
        raise RewriteError(f"{where}: expected a mapping with keys among {', '.join(KEYS)}, got {_got(entry)}")
    for key, value in entry.items():
        if key not in KEYS:
            raise RewriteError(f"{where}: unknown key {quoted(key)} (allowed: {', '.join(KEYS)})")
        if key == "value_map":
            _check_value_map(value, f"{where}: value_map")
        elif not isinstance(value, str):
            raise RewriteError(f"{where}: {key}: expected a string, got {_got(value)}")
    if entry.get("original") == "":
        raise RewriteError(f"{where}: original: empty; it would insert the replacement between every character")
    if "replacement" in entry and "original" not in entry:
        raise RewriteError(f"{where}: replacement: given without original, so it would replace nothing")
    return RewriteRules(
        value_map=dict(entry.get("value_map", {})),
        original=entry.get("original"),
        replacement=entry.get("replacement", ""),
        prefix_add=entry.get("prefix_add", ""),
        suffix_add=entry.get("suffix_add", ""),
    )


def _check_value_map(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise RewriteError(f"{where}: expected a mapping of exact text to replacement text, got {_got(value)}")
    for source, target in value.items():
        # Unquoted Yes/No are YAML booleans, which would never equal a text.
        for role, item in (("key", source), ("value", target)):
            if not isinstance(item, str):
                raise RewriteError(f"{where}: {role}: expected a string, got {_got(item)} (quote it)")


def _check_spellings(rules: dict[str, RewriteRules], where: str) -> None:
    """Two spellings of one dataset ('ImageNet_1K', 'ImageNet-1K') must carry the same rules, else which
    applies would depend on how a folder spells the name. The release's files list both, identically."""
    first: dict[str, str] = {}
    for name, entry in rules.items():
        other = first.setdefault(spelling_key(name), name)
        if other != name and rules[other] != entry:
            raise RewriteError(
                f"{where}: {shortened(other, 60)} and {shortened(name, 60)} are the same dataset with different rules; "
                "keep one"
            )
