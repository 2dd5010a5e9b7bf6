"""Image paths of MMEB rows: relative to an image root, never allowed to leave it; optionally decoded."""

from __future__ import annotations

import functools
import os
import posixpath
import stat
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from rge_core.data.image_header import header_problem
from rge_core.data.issues import DataError
from rge_core.messages import quoted


def _lexical_problem(rel_path: str) -> str | None:
    if not rel_path:
        return "empty image path"
    if rel_path.startswith(("/", "\\")) or rel_path[1:3] in (":/", ":\\"):
        return f"absolute image path {quoted(rel_path)} (paths must be relative to the image root)"
    normal = posixpath.normpath(rel_path)
    if normal == ".." or normal.startswith("../"):
        return f"image path {quoted(rel_path)} escapes the image root"
    return None


def _locate(root: str, rel_path: str, real_dir: Callable[[str], str]) -> tuple[str, str | None]:
    """(resolved target, problem or None). `root` is already resolved; `real_dir` resolves a folder
    (cached by ImageChecker: MMEB has ~1M images in few folders, so only the file itself is lstat'ed)."""
    joined = os.path.join(root, rel_path)
    target = os.path.join(real_dir(os.path.dirname(joined)), os.path.basename(joined))
    try:
        mode = os.lstat(target).st_mode
        if stat.S_ISLNK(mode):
            target = os.path.realpath(target)
            mode = os.stat(target).st_mode
    except OSError:
        return target, f"missing image {quoted(rel_path)} (looked for {target})"
    if not target.startswith(root.rstrip(os.sep) + os.sep):
        return target, f"image path {quoted(rel_path)} resolves outside the image root (to {target})"
    if not stat.S_ISREG(mode):
        return target, f"image path {quoted(rel_path)} is not a file ({target})"
    return target, None


def decode_problem(target: str | Path, rel_path: str) -> str | None:
    """Why PIL cannot decode the image, or None."""
    try:
        with Image.open(target) as image:
            image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return f"corrupt image {quoted(rel_path)} ({target}): {error}"
    return None


def resolve_image(image_root: str | Path, rel_path: str, *, where: str) -> Path:
    """Absolute path of image `rel_path` under `image_root`. Raises DataError, prefixed with `where`
    (e.g. "MSCOCO: test.parquet: row 3: field 'qry_img_path'"), if it escapes the root or is missing."""
    problem = _lexical_problem(rel_path)
    target = ""
    if problem is None:
        target, problem = _locate(os.path.realpath(image_root), rel_path, os.path.realpath)
    if problem:
        raise DataError(f"{where}: {problem}")
    return Path(target)


class ImageChecker:
    """Checks each distinct image path once across a whole read (MMEB repeats candidate images a lot).
    With `check_files=False` only the paths themselves are checked (absolute, `..`), not the disk; with a
    `pixel_cap`, each file's header too (rge_core/data/image_header.py: truncated, undecodable, too large)."""

    def __init__(
        self, image_root: str | Path | None, check_files: bool, decode: bool = False, pixel_cap: int | None = None
    ) -> None:
        if check_files and image_root is None:
            raise DataError("checking image files needs a local image root")
        self.root = os.path.realpath(image_root) if image_root is not None else ""
        self.check_files = check_files
        self.decode = decode  # also decode every image (a file that exists may still be corrupt)
        self.pixel_cap = pixel_cap
        self._real_dir = functools.lru_cache(maxsize=None)(os.path.realpath)
        self._problems: dict[str, str | None] = {}

    def problem(self, rel_path: str) -> str | None:
        if rel_path not in self._problems:
            problem = _lexical_problem(rel_path)
            if problem is None and self.check_files:
                target, problem = _locate(self.root, rel_path, self._real_dir)
                if problem is None and self.pixel_cap is not None:
                    problem = header_problem(target, rel_path, self.pixel_cap)
                if problem is None and self.decode:
                    problem = decode_problem(target, rel_path)
            self._problems[rel_path] = problem
        return self._problems[rel_path]

    def bad_paths(self, paths: pa.Array | pa.ChunkedArray) -> dict[str, str]:
        """Problem per bad path among `paths`; "" (no image) is skipped."""
        problems = {path: self.problem(path) for path in pc.unique(paths).to_pylist() if path}
        return {path: problem for path, problem in problems.items() if problem}

    @property
    def referenced(self) -> int:
        return len(self._problems)

    @property
    def bad(self) -> int:
        return sum(problem is not None for problem in self._problems.values())
