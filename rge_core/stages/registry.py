"""The stages: every module of rge_core/stages/ that declares a `STAGE` (a StageDecl), plus any registered at run
time (`register`, for extensions and tests), in the order their roles impose: a stage comes after every stage
that provides a role it reads; among stages free to go, the first declared (by module name) goes first.

    for decl in stages(): ...            # the pipeline's order
    providers = role_providers()          # role -> the stage whose artifact later readers get
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import pkgutil

from rge_core.config.schema import Config
from rge_core.stages.declaration import StageDecl

_REGISTERED: list[StageDecl] = []


def register(decl: StageDecl) -> None:
    """Add a stage declared outside rge_core/stages/ (an extension, a test)."""
    unregister(decl.name)
    _REGISTERED.append(decl)
    stages.cache_clear()


def unregister(name: str) -> None:
    _REGISTERED[:] = [decl for decl in _REGISTERED if decl.name != name]
    stages.cache_clear()


def _declared() -> list[StageDecl]:
    import rge_core.stages as package

    found = []
    for module in sorted(info.name for info in pkgutil.iter_modules(package.__path__)):
        decl = getattr(importlib.import_module(f"{package.__name__}.{module}"), "STAGE", None)
        if isinstance(decl, StageDecl):
            found.append(decl)
    return found


@functools.cache
def stages() -> tuple[StageDecl, ...]:
    """Every stage, in pipeline order (see the module docstring)."""
    declared = [*_declared(), *_REGISTERED]
    names = [decl.name for decl in declared]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be unique, got {names}")
    sections = {field.name for field in dataclasses.fields(Config)}
    for decl in declared:
        if decl.section is not None and decl.section not in sections:
            raise ValueError(f"stage {decl.name}: section {decl.section!r} is not a section of config/schema.py")
    providers = {role: [d.name for d in declared if d.provides == role] for role in {d.provides for d in declared}}
    for decl in declared:
        unknown = [role for role in decl.needs if role not in providers]
        if unknown:
            raise ValueError(f"stage {decl.name} needs {unknown}, which no stage provides")
    after = {d.name: {p for role in d.needs for p in providers[role] if p != d.name} for d in declared}
    ordered: list[StageDecl] = []
    while len(ordered) < len(declared):
        placed = {d.name for d in ordered}
        ready = [d for d in declared if d.name not in placed and after[d.name] <= placed]
        if not ready:
            raise ValueError(f"the stages' needs form a cycle among {sorted(set(names) - placed)}")
        ordered.append(ready[0])
    return tuple(ordered)


def stage(name: str) -> StageDecl:
    for decl in stages():
        if decl.name == name:
            return decl
    raise ValueError(f"unknown stage {name!r}; choose from {[d.name for d in stages()]}")


def provider_before(name: str, role: str) -> str:
    """The stage whose artifact `name` reads for `role`: the last provider of it before `name`."""
    order = [d.name for d in stages()]
    earlier = [d.name for d in stages()[: order.index(name)] if d.provides == role]
    if not earlier:
        raise ValueError(f"stage {name} needs {role}, which no stage before it provides")
    return earlier[-1]
