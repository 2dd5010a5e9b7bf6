"""Where the paths in a run's parameters may point: under the project, the artifacts root (as the worker's
environment or the config file sets it, not as a parameter overrides it) and the data roots
that the operator declares in RGE_ALLOWED_ROOTS (paths or URL prefixes, separated by `os.pathsep`). A config
file, a setting or a prompt set outside them is one line naming it, before anything is read or written.

Flow runs are always checked: their parameters come from whoever can reach the Prefect API, not from the
operator of the worker that runs them. The CLI is checked only where RGE_ALLOWED_ROOTS is set (e.g. a
service account running `rge` for others): a user at a terminal can read and write those paths anyway, and
keeps data in /data, artifacts on s3:// and checkpoints in their home without declaring them
(docs/orchestration.md, "Where parameters may reach").

    config = load_checked_config(Path("configs/tiny.yaml"), ["data.source=/data/mmeb-train"])
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rge_core.artifacts.store import looks_like_version_id, resolve_root
from rge_core.config.loader import ConfigPaths, config_paths, load_config
from rge_core.config.schema import Config
from rge_core.messages import shortened

ROOTS_ENV = "RGE_ALLOWED_ROOTS"
PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Settings that name a file or folder to read or write, and their values that name none.
PATH_SETTINGS: dict[str, tuple[str, ...]] = {
    "run.artifacts_root": ("",),  # "": $RGE_ARTIFACTS or ./rge-artifacts, checked as such
    "data.source": ("synthetic",),
    "data.image_root": ("",),
    "data.query_rewrites": ("",),
    "data.candidate_rewrites": ("",),
    "model.path": ("tiny",),
    "curation.prompt_set": (),
    "curation.generator_model": ("",),
    "curation.reference": ("", "synthetic-facts"),
    "train.launch.hostfile": ("",),
    "eval.data": ("synthetic",),
    "eval.image_root": ("",),
    "eval.model": ("",),  # or a model artifact id
    "eval.query_rewrites": ("",),
    "eval.candidate_rewrites": ("",),
}
_HUB = "hf://"  # Hub datasets: one repo per setting (rge_core/data/hf_source.py), fetched into the cache


class OutsideAllowedRoots(ValueError):
    """A parameter names a path outside the allowed roots."""


def declared_roots() -> list[str]:
    return [root for root in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if root.strip()]


def allowed_roots(artifacts_root: str = "") -> list[str]:
    """The project, the artifacts root (`artifacts_root` as the config file sets it, else the environment's
    or the default) and the declared roots."""
    roots = [str(PROJECT_ROOT), resolve_root(artifacts_root), *declared_roots()]
    return list(dict.fromkeys(_normal(root) for root in roots))


def _normal(value: str) -> str:
    """A local path made absolute with its symbolic links resolved (a link inside the project may point
    anywhere); a URL as it is, without a trailing slash."""
    if "://" in value and not value.startswith("file://"):
        return value.rstrip("/")
    return os.path.realpath(value.removeprefix("file://"))


def _inside(value: str, roots: Iterable[str]) -> bool:
    normal = _normal(value)
    separator = "/" if "://" in normal else os.sep
    return any(normal == root or normal.startswith(root.rstrip(separator) + separator) for root in roots)


def check_path(setting: str, value: str, roots: list[str]) -> None:
    if not _inside(value, roots):
        raise OutsideAllowedRoots(
            f"{setting}: {shortened(value)} is outside the allowed roots ({', '.join(roots)}); "
            f"a worker's operator declares data roots in {ROOTS_ENV}"
        )


def check_config_paths(config: Config, roots: list[str]) -> None:
    """Every path setting of `config` under `roots` (values that name no path, Hub sources and artifact ids
    aside)."""
    from rge_core.prompts.prompt_set import PromptSetError, resolve_set_folder

    for setting, not_paths in PATH_SETTINGS.items():
        value: Any = config
        for part in setting.split("."):
            value = getattr(value, part)
        if value in not_paths or value.startswith(_HUB):
            continue
        if setting == "eval.model" and looks_like_version_id(value) and not Path(value).exists():
            continue
        if setting == "curation.prompt_set":
            try:  # a bare name or relative path may resolve in the checkout's prompts/
                value = str(resolve_set_folder(value))
            except PromptSetError:
                pass  # not found: the stage says so, having read nothing
        check_path(setting, value, roots)
    check_path("run.artifacts_root", resolve_root(config.run.artifacts_root), roots)


def load_checked_config(paths: ConfigPaths, overrides: list[str]) -> Config:
    """load_config(paths, overrides), the files and every path setting checked against the allowed roots; the
    artifacts root the files themselves set is allowed, one that an override sets must be under the others."""
    for path in config_paths(paths):
        check_path("config", str(path), allowed_roots())
    own_root = load_config(paths).run.artifacts_root if config_paths(paths) else ""
    config = load_config(paths, overrides)
    check_config_paths(config, allowed_roots(own_root))
    return config


def load_cli_config(paths: ConfigPaths, overrides: list[str]) -> Config:
    """The CLI's config: checked as a flow run's where the operator declared RGE_ALLOWED_ROOTS."""
    return load_checked_config(paths, overrides) if declared_roots() else load_config(paths, overrides)


def check_cli_path(what: str, value: str | Path) -> None:
    """A path argument of the CLI, checked where the operator declared RGE_ALLOWED_ROOTS."""
    if declared_roots():
        check_path(what, str(value), allowed_roots())
