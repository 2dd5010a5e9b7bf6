"""Make `import torchvision` work beside a CPU-only torch.

Every Linux torchvision wheel on PyPI is a CUDA build: next to torch+cpu its native library (`_C.so`)
cannot load (it needs libc10_cuda.so), and the import then dies in `_meta_registrations` with
"operator torchvision::nms does not exist". transformers' Qwen2-VL image processor — and so vLLM,
including the helper processes vLLM spawns — imports torchvision at module level. `nms` and `qnms` are
the only ops torchvision registers fake kernels for without checking that its library loaded; defining
their schemas lets the pure-Python rest of torchvision (transforms.v2, all we use) import.

The fix runs just before torchvision's first import, in every interpreter of the CPU venv: `make setup`
writes a one-line `.pth` file (see `install_pth`) that puts `TorchvisionImportHook` on `sys.meta_path`.
It loads torchvision's native library exactly as torchvision does; only if that fails does it define the
two schemas. With a working (CUDA or native CPU) torchvision, or none installed, it changes nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import site
import sys
from pathlib import Path

PTH_NAME = "rge_torchvision_cpu_compat.pth"

# Exact schemas of torchvision's own registrations (torchvision/csrc/ops/nms.cpp, qnms.cpp).
_UNGUARDED_OP_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)

# "native", "shimmed" or "absent" once prepare_torchvision() has run; None before.
state: str | None = None
# Keeps the op definitions alive for the life of the process (a dropped Library unregisters them).
_shim_library = None


def _native_library(package_dir: Path) -> Path | None:
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = package_dir / f"_C{suffix}"
        if candidate.exists():
            return candidate
    return None


def prepare_torchvision() -> str:
    """Get torchvision ready to import; returns "native", "shimmed" or "absent". Idempotent."""
    global state, _shim_library
    if state is not None:
        return state
    spec = importlib.machinery.PathFinder.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        state = "absent"
        return state
    import torch

    library = _native_library(Path(list(spec.submodule_search_locations)[0]))
    try:
        if library is None:
            raise OSError("torchvision ships no native library")
        torch.ops.load_library(str(library))
        state = "native"
    except OSError:
        _shim_library = torch.library.Library("torchvision", "DEF")
        for schema in _UNGUARDED_OP_SCHEMAS:
            _shim_library.define(schema)
        state = "shimmed"
    return state


class TorchvisionImportHook(importlib.abc.MetaPathFinder):
    """Runs prepare_torchvision() when torchvision is first imported, then steps aside."""

    def find_spec(self, fullname, path, target=None):
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            prepare_torchvision()
        return None  # the regular finders do the import itself


def install_import_hook() -> None:
    if "torchvision" not in sys.modules and not any(isinstance(f, TorchvisionImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, TorchvisionImportHook())


def install_pth(site_packages: Path | None = None) -> Path:
    """Write the .pth file that installs the hook in every interpreter of this environment."""
    target = Path(site_packages or site.getsitepackages()[0]) / PTH_NAME
    module = "rge_core.compat.torchvision_cpu"  # not __name__: that is "__main__" under `python -m`
    target.write_text(f"import {module}; {module}.install_import_hook()\n")
    return target


if __name__ == "__main__":
    print(install_pth())
