"""The torchvision CPU compat hook acts only when torchvision's native library cannot load."""

from __future__ import annotations

import importlib.machinery
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rge_core.compat import torchvision_cpu


def run_python(code: str, **env_extra: str) -> str:
    import os

    env = {**os.environ, **env_extra}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def native_library_loads() -> bool:
    """Independent of the hook: can torch load torchvision's own _C library here?"""
    out = run_python(
        """
        import importlib.machinery, pathlib, torch
        spec = importlib.machinery.PathFinder.find_spec("torchvision")
        folder = pathlib.Path(list(spec.submodule_search_locations)[0])
        libs = [folder / f"_C{s}" for s in importlib.machinery.EXTENSION_SUFFIXES if (folder / f"_C{s}").exists()]
        try:
            torch.ops.load_library(str(libs[0])); print("loads")
        except OSError:
            print("fails")
        """
    )
    return out == "loads"


def test_pth_hook_makes_torchvision_importable_in_a_fresh_interpreter():
    # The venv's .pth (written by `make setup`) installs the hook; a bare `import torchvision` must work.
    out = run_python(
        """
        import torch, torchvision
        from torchvision.transforms import v2
        from rge_core.compat import torchvision_cpu
        assert v2.Resize((8, 8))(torch.rand(3, 16, 16)).shape == (3, 8, 8)
        print(torchvision_cpu.state)
        """
    )
    assert out == ("native" if native_library_loads() else "shimmed")


def test_loadable_native_library_is_left_alone(tmp_path: Path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("needs a C compiler to build a loadable stand-in for torchvision's _C library")
    package = tmp_path / "torchvision"
    package.mkdir()
    (package / "__init__.py").write_text("")
    source = tmp_path / "empty.c"
    source.write_text("int rge_compat_probe(void) { return 0; }\n")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    subprocess.run([compiler, "-shared", "-fPIC", str(source), "-o", str(package / f"_C{suffix}")], check=True)
    out = run_python(
        """
        import torch
        from rge_core.compat import torchvision_cpu
        state = torchvision_cpu.prepare_torchvision()
        has_kernel = getattr(torch._C, "_dispatch_has_kernel", None)
        defined = has_kernel("torchvision::nms") if has_kernel else None
        try:
            torch.ops.torchvision.nms
            nms_schema = True
        except (AttributeError, RuntimeError):
            nms_schema = False
        print(state, nms_schema)
        """,
        PYTHONPATH=str(tmp_path),
    )
    assert out == "native False"


def test_absent_torchvision_changes_nothing(tmp_path: Path):
    out = run_python(
        """
        import importlib.machinery, sys
        real = importlib.machinery.PathFinder.find_spec
        importlib.machinery.PathFinder.find_spec = classmethod(
            lambda cls, name, path=None, target=None: None if name == "torchvision" else real(name, path, target))
        from rge_core.compat import torchvision_cpu
        print(torchvision_cpu.prepare_torchvision(), "torch" in sys.modules)
        """
    )
    assert out == "absent False"


def test_install_pth_writes_an_importable_hook_line(tmp_path: Path):
    pth = torchvision_cpu.install_pth(tmp_path)
    line = pth.read_text().strip()
    assert line.startswith("import rge_core.compat.torchvision_cpu;")
    out = run_python(
        f"""
        import sys
        sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "TorchvisionImportHook"]
        exec({line!r})
        print(sum(type(f).__name__ == "TorchvisionImportHook" for f in sys.meta_path))
        """
    )
    assert out == "1"
