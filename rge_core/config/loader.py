"""YAML + dotted overrides -> typed config dataclasses (OLMo-core style), with strict checking.

Generic over any dataclass tree: str, int, float, bool, Optional/`X | None`, list[X], dict[str, X],
Literal, Any and nested dataclasses. Unknown keys and wrong types raise ConfigError naming the file and
the full dotted key, e.g. `configs/tiny.yaml: data.synth.seed: expected int, got str 'abc'`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from rge_core import fileio
from rge_core.config.bounds import check_bounds
from rge_core.config.errors import ConfigError
from rge_core.config.schema import Config, retired
from rge_core.messages import quoted, shortened
from rge_core.strict_yaml import load_strict, yaml_problem

T = TypeVar("T")


class _Mismatch(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}" if key else message)


@functools.cache
def _fields(cls: type) -> dict[str, Any]:
    # get_type_hints resolves the string annotations that `from __future__ import annotations` leaves.
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _join(key: str, part: object) -> str:
    part = shortened(str(part), 60)  # a key read from a file can be any text
    return f"{key}.{part}" if key else part


def _describe(value: object) -> str:
    return f"{type(value).__name__} {quoted(value)}"


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if origin is Literal:
        return f"Literal[{', '.join(map(repr, args))}]"
    if origin is not None:
        return f"{_type_name(origin)}[{', '.join(map(_type_name, args))}]"
    return "None" if tp is type(None) else getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (arg for arg in args if arg is not type(None)):
            try:
                return _convert(option, value, key)
            except _Mismatch:
                continue
        raise _Mismatch(key, f"expected {_type_name(tp)}, got {_describe(value)}")
    if origin is Literal:
        if any(value == arg and type(value) is type(arg) for arg in args):  # True is not Literal[1]
            return value
        raise _Mismatch(key, f"expected one of {list(args)}, got {_describe(value)}")
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch(key, f"expected a list, got {_describe(value)}")
        return [_convert(args[0], item, f"{key}[{i}]") for i, item in enumerate(value)] if args else list(value)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch(key, f"expected a mapping, got {_describe(value)}")
        if not args:
            return dict(value)
        return {_convert(args[0], k, key): _convert(args[1], v, _join(key, k)) for k, v in value.items()}
    if tp is float and isinstance(value, str):
        # PyYAML reads "1e-4" (no dot) as a string; accept numeric strings where a float is expected.
        try:
            value = float(value)
        except ValueError:
            pass
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is float and isinstance(value, float) and not math.isfinite(value):
        # nan, .inf and 1e309 would only fail much later, as JSON that names no key.
        raise _Mismatch(key, f"{value!r} is not a finite number")
    if isinstance(tp, type) and isinstance(value, tp) and not (isinstance(value, bool) and tp is not bool):
        return value
    raise _Mismatch(key, f"expected {_type_name(tp)}, got {_describe(value)}")


@functools.cache
def _markers(cls: type) -> dict[str, Mapping]:
    """Each field's range / choices marker (rge_core/config/schema.py: at_least, above, share, one_of, some_of)."""
    return {f.name: f.metadata for f in dataclasses.fields(cls) if f.init}


def _check_marker(marker: Mapping, value: Any, key: str) -> None:
    if isinstance(value, list):  # a list's marker holds for each item (schema.some_of)
        for i, item in enumerate(value):
            _check_marker(marker, item, f"{key}[{i}]")
        return
    if "choices" in marker and value not in marker["choices"]:
        raise _Mismatch(key, f"{quoted(value)} is not one of {', '.join(map(str, marker['choices']))}")
    if "min" in marker and value < marker["min"]:
        raise _Mismatch(key, f"{value!r} is below the minimum {marker['min']}")
    if "above" in marker and value <= marker["above"]:
        raise _Mismatch(key, f"{value!r} must be above {marker['above']}")
    if "max" in marker and value > marker["max"]:
        raise _Mismatch(key, f"{value!r} is above the maximum {marker['max']}")


def _unknown(key: str, cls: type) -> _Mismatch:
    why = retired(key)  # an old name in a user's YAML: say what it is now
    if why:
        return _Mismatch(key, why)
    return _Mismatch(shortened(key, 100), f"unknown key (known: {', '.join(_fields(cls))})")


def _build(cls: type[T], data: Any, key: str) -> T:
    if not isinstance(data, Mapping):
        raise _Mismatch(key, f"expected a mapping for {cls.__name__}, got {_describe(data)}")
    klass: type = cls  # functools.cache wants a Hashable; mypy cannot see that a type[T] is one
    fields, markers = _fields(klass), _markers(klass)
    unknown = [k for k in data if k not in fields]
    if unknown and not key and len(unknown) == len(data):
        # Most likely not a config file at all (a flow run's `config` can name any file): its keys are its
        # content, so none is quoted.
        raise _Mismatch(key, f"not an rge config: none of its top-level keys is a section ({', '.join(fields)})")
    if unknown:
        raise _unknown(_join(key, unknown[0]), cls)
    values = {name: _convert(fields[name], _over_default(klass, name, v), _join(key, name)) for name, v in data.items()}
    for name, value in values.items():
        _check_marker(markers[name], value, _join(key, name))
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:  # a missing required field, or a __post_init__ check
        raise _Mismatch(key, str(error)) from None


@functools.cache
def _section_defaults(cls: type) -> dict[str, dict]:
    """The defaults of `cls`'s nested sections as plain data, where a field's own default differs from its
    class's (eval.decoding is greedy, DecodingConfig samples)."""
    return {
        f.name: dataclasses.asdict(f.default_factory())
        for f in dataclasses.fields(cls)
        if f.init and f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory())
    }


def _over_default(cls: type, name: str, value: Any) -> Any:
    """A mapping given for a nested section, over that section's own default: keys it leaves out keep the
    field's default, not the section class's."""
    default = _section_defaults(cls).get(name) if dataclasses.is_dataclass(cls) else None
    return merged(default, value) if default is not None and isinstance(value, Mapping) else value


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "") -> T:
    """Build dataclass `cls` from plain data; missing keys keep their defaults. `source` prefixes errors."""
    try:
        return _build(cls, data, "")
    except _Mismatch as error:
        raise ConfigError(f"{source}: {error}" if source else str(error)) from None


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dicts/lists (YAML- and JSON-ready) of a dataclass tree."""
    return dataclasses.asdict(config)


def _set_dotted(data: dict[str, Any], cls: type, key: str, value: Any) -> None:
    """Set `key` inside the dict form of a `cls` tree, refusing keys the dataclasses do not declare."""
    node, tp, parts = data, cls, key.split(".")
    for depth, part in enumerate(parts):
        if typing.get_origin(tp) in (Union, types.UnionType):  # Optional[Section]: step into the section
            tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
        if dataclasses.is_dataclass(tp):
            if part not in _fields(tp):
                raise _unknown(".".join(parts[: depth + 1]), tp)
            tp = _fields(tp)[part]
        elif typing.get_origin(tp) is dict or tp is dict:
            tp = typing.get_args(tp)[1] if typing.get_args(tp) else Any
        else:
            parent = ".".join(parts[:depth])
            raise _Mismatch(
                ".".join(parts[: depth + 1]), f"unknown key ({parent} holds {_type_name(tp)}, not a section)"
            )
        if depth == len(parts) - 1:
            # A mapping set on a section updates it instead of resetting its other keys to defaults.
            merge = dataclasses.is_dataclass(tp) and isinstance(value, dict) and isinstance(node.get(part), dict)
            node[part] = {**node[part], **value} if merge else value
        else:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]


def apply_overrides(config: T, overrides: Iterable[str]) -> T:
    """Apply dotted `key=value` overrides; each value is parsed as YAML (`data.subsets=[A,B]`)."""
    for override in overrides:
        key, sep, raw = override.partition("=")
        source = f"--set {shortened(override)}"
        if not sep or not key.strip():
            raise ConfigError(f"{source}: expected key=value")
        # An empty value means the empty string (YAML would read it as null).
        try:
            value = load_strict(raw) if raw.strip() else ""
        except yaml.YAMLError as error:
            raise ConfigError(f"{source}: invalid YAML: {yaml_problem(error)}") from None
        data = to_dict(config)
        try:
            _set_dotted(data, type(config), key.strip(), value)
        except _Mismatch as error:
            raise ConfigError(f"{source}: {error}") from None
        config = from_dict(type(config), data, source)
    return config


def load_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file (local path or fsspec URL); a key given twice is an error; an empty file is
    an empty mapping."""
    try:
        data = load_strict(fileio.read_bytes(str(path)))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {yaml_problem(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


ConfigPaths = str | Path | Sequence[str | Path] | None


def config_paths(paths: ConfigPaths) -> list[Path]:
    """One preset or several (a base preset, then overlays), as a list of paths."""
    if paths is None:
        return []
    return [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]


def merged(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """`overlay` over `base`: mappings merge key by key, any other value (lists too) replaces the base's."""
    out = dict(base)
    for key, value in overlay.items():
        both_mappings = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = merged(out[key], value) if both_mappings else value
    return out


def load_config(paths: ConfigPaths = None, overrides: Iterable[str] = ()) -> Config:
    """The pipeline Config from YAML files (none: the defaults), each later file over the earlier ones (a
    preset, then overlays such as configs/rehearsal.yaml), with dotted overrides applied last."""
    data: dict[str, Any] = {}
    for path in config_paths(paths):
        layer = load_yaml(path)
        if not layer:  # almost always a truncated or wrong file: all defaults would run silently
            raise ConfigError(f"{path}: the config file is empty (no settings)")
        from_dict(Config, layer, str(path))  # errors name the file that holds the bad key
        data = merged(data, layer)
    config = from_dict(Config, data, " + ".join(map(str, config_paths(paths))))
    return check_bounds(apply_overrides(config, overrides))


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True)
