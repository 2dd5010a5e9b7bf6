"""Prompt sets: a folder of Jinja templates plus a manifest and a subset mapping (layout: prompts/README.md).

Everything that can go wrong with a set is found here, at load time, before any generation: manifest keys
and types, the output regex, missing template files, template syntax errors and templates that fail to
render (undefined variables, sandbox violations), each error naming the file and, for templates, the line.

    from rge_core.prompts import load_prompt_set
    prompt_set = load_prompt_set("prompts/rge-v1")
"""

from __future__ import annotations

import hashlib
import os
import re
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from rge_core.messages import quoted, shortened
from rge_core.strict_yaml import load_strict, yaml_problem

MANIFEST = "manifest.yaml"
MAPPING = "mapping.yaml"
# Where the image goes in a rendered template. NUL never occurs in data or template text, so splitting
# at the markers cannot cut a real text.
QUERY_IMAGE = "\x00query_image\x00"
TARGET_IMAGE = "\x00target_image\x00"
# Relative set paths (e.g. the config default "prompts/rge-v1") also resolve against the checkout.
_REPO_ROOT = Path(__file__).resolve().parents[2]
_MANIFEST_KEYS = {"name": str, "version": int, "description": str, "output_format": dict, "templates": dict}
_FORMAT_KEYS = {"description": str, "regex": str, "max_tokens": int}
_OPTIONAL_FORMAT_KEYS = frozenset({"max_tokens"})  # a set need not declare a token budget
# What vLLM's structured-output backends (xgrammar, outlines, guidance) reject or handle badly.
_UNSUPPORTED_REGEX = re.compile(r"\(\?(?:[=!]|<[=!]|P)|\\[1-9]")
_ENV = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=False)


class PromptSetError(ValueError):
    """A prompt set is malformed, or a pair cannot be rendered with it."""


@dataclass(frozen=True)
class PromptSet:
    name: str
    version: int
    description: str
    output_regex: str
    output_description: str
    max_tokens: int | None  # rationale budget in tokens of the pipeline's model (its tokenizer); None: no budget
    templates: dict[str, str]  # family -> template source
    mapping: dict[str, str]  # subset -> family
    path: Path
    hash: str  # sha256 over manifest, mapping and templates (see set_hash)
    template_hashes: dict[str, str]  # family -> sha256 of its template file
    template_files: dict[str, str]  # family -> file name inside the set folder
    files: dict[str, bytes]  # exactly the files `hash` covers, as read: what an artifact copies of the set


def template_context(
    subset: str,
    family: str,
    query_text: str,
    target_text: str,
    query_image: bool,
    target_image: bool,
    output_format: str,
) -> dict[str, str]:
    """The only variables a template sees."""
    return {
        "subset": subset,
        "family": family,
        "query_text": query_text,
        "target_text": target_text,
        "query_image": QUERY_IMAGE if query_image else "",
        "target_image": TARGET_IMAGE if target_image else "",
        "output_format": output_format,
    }


@lru_cache(maxsize=256)
def compile_template(source: str, filename: str) -> Template:
    """Compile once per (source, file); a syntax error becomes a PromptSetError naming file and line."""
    try:
        code = _ENV.compile(source, name=PurePosixPath(filename).name, filename=filename)
    except TemplateSyntaxError as exc:
        raise PromptSetError(f"{filename}:{exc.lineno}: template syntax error: {exc.message}") from exc
    return _ENV.template_class.from_code(_ENV, code, _ENV.make_globals(None))


def render_template(source: str, filename: str, context: dict[str, str]) -> str:
    """Render to text with the image markers in place; any failure names the template file and line."""
    try:
        return compile_template(source, filename).render(context)
    except PromptSetError:
        raise
    except Exception as exc:  # undefined variable, sandbox violation, or an error in a filter/expression
        raise PromptSetError(f"{filename}:{_template_line(exc, filename)}: {type(exc).__name__}: {exc}") from exc


def _template_line(exc: BaseException, filename: str) -> int | str:
    # Jinja rewrites tracebacks so that template frames carry the template's file name and line.
    lines = [line for frame, line in traceback.walk_tb(exc.__traceback__) if frame.f_code.co_filename == filename]
    return lines[-1] if lines else "?"


def load_prompt_set(path: str | Path) -> PromptSet:
    """Load, validate and hash the prompt set in folder `path` (a bare name looks in the checkout's prompts/)."""
    folder = resolve_set_folder(path)
    _refuse_links(folder)
    manifest_bytes = _read_bytes(folder / MANIFEST)
    mapping_bytes = _read_bytes(folder / MAPPING)
    manifest = _check_manifest(_parse_yaml(manifest_bytes, folder / MANIFEST), folder / MANIFEST)
    files = {family: _template_name(name, family, folder / MANIFEST) for family, name in manifest["templates"].items()}
    raw = {
        family: _read_bytes(folder / name, f"template for family {family!r} in {folder / MANIFEST}")
        for family, name in files.items()
    }
    templates = {family: _decode(data, folder / files[family]) for family, data in raw.items()}
    mapping = _check_mapping(_parse_yaml(mapping_bytes, folder / MAPPING), folder, set(templates))
    output = manifest["output_format"]
    hashed = {MANIFEST: manifest_bytes, MAPPING: mapping_bytes, **{files[f]: raw[f] for f in files}}
    prompt_set = PromptSet(
        name=manifest["name"],
        version=manifest["version"],
        description=manifest["description"],
        output_regex=output["regex"],
        output_description=output["description"],
        max_tokens=output.get("max_tokens"),
        templates=templates,
        mapping=mapping,
        path=folder,
        hash=set_hash(hashed),
        template_hashes={family: hashlib.sha256(data).hexdigest() for family, data in raw.items()},
        template_files=files,
        files=hashed,
    )
    for family in templates:
        _check_template(prompt_set, family)
    return prompt_set


def check_subsets(prompt_set: PromptSet, subsets: Iterable[str]) -> None:
    """Fail, naming the mapping file, when any of `subsets` has no template family."""
    missing = sorted(set(subsets) - prompt_set.mapping.keys())
    if missing:
        raise PromptSetError(
            f"{prompt_set.path / MAPPING}: no template family for subset(s) {', '.join(missing)}; map them there"
        )


def set_hash(files: dict[str, bytes]) -> str:
    """sha256 over (name, length, bytes) of each file, in sorted name order: independent of read order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{len(files[name])}\0".encode())
        digest.update(files[name])
    return digest.hexdigest()


def resolve_set_folder(path: str | Path) -> Path:
    """The set's folder, symbolic links resolved: `path`, else (relative) inside the checkout or its prompts/."""
    path = Path(path)
    candidates = [path]
    if not path.is_absolute():
        candidates += [_REPO_ROOT / path, _REPO_ROOT / "prompts" / path]
    for candidate in candidates:
        if (candidate / MANIFEST).is_file():
            return candidate.resolve()
    raise PromptSetError(f"prompt set not found: {path} (no {MANIFEST} there)")


def _refuse_links(folder: Path) -> None:
    """No symbolic link anywhere in the set: one could point anywhere, outside the set and its hash."""
    for parent, folders, files in os.walk(folder):
        for name in sorted([*folders, *files]):
            if os.path.islink(os.path.join(parent, name)):
                raise PromptSetError(
                    f"{Path(parent) / name}: a symbolic link; a prompt set's files must be regular files inside it"
                )


def _read_bytes(path: Path, what: str = "") -> bytes:
    if path.is_symlink():  # it could point anywhere, outside the set and its hash
        raise PromptSetError(f"{path}: a symbolic link; a prompt set's files must be regular files inside it")
    if not path.is_file():
        raise PromptSetError(f"{path}: file not found" + (f" ({what})" if what else ""))
    return path.read_bytes()


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptSetError(f"{path}: not UTF-8: {exc}") from exc


def _parse_yaml(data: bytes, path: Path) -> Any:
    try:
        return load_strict(_decode(data, path))
    except yaml.YAMLError as exc:
        raise PromptSetError(f"{path}: invalid YAML: {yaml_problem(exc)}") from None


def _check_keys(
    value: Any,
    keys: dict[str, type],
    where: str,
    path: Path,
    optional: frozenset[str] = frozenset(),
) -> None:
    if not isinstance(value, dict):
        raise PromptSetError(f"{path}: {where} must be a mapping, got {type(value).__name__}")
    if unknown := sorted(set(value) - set(keys)):
        raise PromptSetError(f"{path}: unknown key(s) in {where}: {shortened(', '.join(map(str, unknown)))}")
    for key, kind in keys.items():
        if key not in value:
            if key in optional:
                continue
            raise PromptSetError(f"{path}: {where} lacks {key!r}")
        # bool is an int subclass; `version: true` is a mistake, not version 1.
        if not isinstance(value[key], kind) or isinstance(value[key], bool):
            raise PromptSetError(f"{path}: {where}.{key} must be {kind.__name__}, got {type(value[key]).__name__}")


def _check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    _check_keys(manifest, _MANIFEST_KEYS, "manifest", path)
    _check_keys(manifest["output_format"], _FORMAT_KEYS, "output_format", path, _OPTIONAL_FORMAT_KEYS)
    if manifest["output_format"].get("max_tokens", 1) < 1:
        raise PromptSetError(
            f"{path}: output_format.max_tokens must be a positive int, got {manifest['output_format']['max_tokens']}"
        )
    regex = manifest["output_format"]["regex"]
    try:
        compiled = re.compile(regex)
    except re.error as exc:
        raise PromptSetError(f"{path}: output_format.regex does not compile: {exc}") from exc
    if _UNSUPPORTED_REGEX.search(regex):
        raise PromptSetError(
            f"{path}: output_format.regex uses lookarounds, named groups or backreferences, "
            "which vLLM structured output does not support"
        )
    if compiled.fullmatch(""):
        raise PromptSetError(f"{path}: output_format.regex matches the empty text")
    if not manifest["templates"]:
        raise PromptSetError(f"{path}: templates is empty")
    return manifest


def _template_name(name: Any, family: Any, path: Path) -> str:
    parts = PurePosixPath(name).parts if isinstance(name, str) else ()
    if not isinstance(family, str) or not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        raise PromptSetError(
            f"{path}: templates.{shortened(str(family), 60)} must be a file name inside the set folder, "
            f"got {quoted(name)}"
        )
    return name


def _check_mapping(mapping: Any, folder: Path, families: set[str]) -> dict[str, str]:
    path = folder / MAPPING
    if not isinstance(mapping, dict) or not mapping:
        raise PromptSetError(f"{path}: must be a non-empty mapping subset -> family")
    for subset, family in mapping.items():
        if not isinstance(subset, str) or not isinstance(family, str):
            raise PromptSetError(f"{path}: {quoted(subset)}: {quoted(family)} is not a subset name -> family name pair")
        if family not in families:
            raise PromptSetError(
                f"{path}: subset {shortened(subset, 60)} maps to family {quoted(family)}, which has no template in "
                f"{folder / MANIFEST}"
            )
    return mapping


# Every combination of image sides, plus image-only sides (no text left once the placeholder is gone).
_SAMPLES = [
    (q_img, t_img, "Represent the given image with the following question: What is on the table?", "A red cup")
    for q_img in (True, False)
    for t_img in (True, False)
] + [(True, True, "", "")]


def _check_template(prompt_set: PromptSet, family: str) -> None:
    """Render against sample contexts for every subset of the family; each image marker exactly once per
    image side, no text placeholder of MMEB's own, and some text besides the images."""
    filename = str(prompt_set.path / prompt_set.template_files[family])
    source = prompt_set.templates[family]
    subsets = [s for s, f in prompt_set.mapping.items() if f == family] or ["SampleSubset"]
    for subset in subsets:
        for q_img, t_img, q_text, t_text in _SAMPLES:
            context = template_context(subset, family, q_text, t_text, q_img, t_img, prompt_set.output_description)
            text = render_template(source, filename, context)
            for marker, has_image, variable in (
                (QUERY_IMAGE, q_img, "query_image"),
                (TARGET_IMAGE, t_img, "target_image"),
            ):
                if text.count(marker) != int(has_image):
                    raise PromptSetError(
                        f"{filename}: {{{{ {variable} }}}} appears {text.count(marker)} times for a pair "
                        f"{'with' if has_image else 'without'} that image ({subset}); it must appear exactly "
                        "once when the side has an image"
                    )
            if "<|image" in text:
                raise PromptSetError(
                    f"{filename}: writes an image placeholder; place {{{{ query_image }}}} "
                    "or {{ target_image }} instead"
                )
            if not text.replace(QUERY_IMAGE, "").replace(TARGET_IMAGE, "").strip():
                raise PromptSetError(f"{filename}: renders no text ({subset})")
