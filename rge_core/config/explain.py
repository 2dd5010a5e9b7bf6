"""Every setting explained, from the schema itself (rge_core/config/schema.py): its help, type, default, allowed
range or choices, whether it changes an artifact's version, and the value each preset in configs/ gives it.
`rge config explain [KEY]` prints it; docs/settings.md is generated from the same function (a test keeps the
file current: `rge config explain --markdown > docs/settings.md`).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rge_core.config.errors import ConfigError
from rge_core.config.loader import load_yaml
from rge_core.config.schema import REMOVED, RENAMED, Config, default_of, retired

PRESETS = Path(__file__).resolve().parents[2] / "configs"
# Which stage versions its artifact with each section (rge_core/stages/*.py declare the same).
SECTION_STAGE = {
    "run": "none",
    "data": "ingest",
    "model": "model",
    "curation": "curate",
    "assemble": "assemble",
    "train": "train",
    "eval": "evaluate",
}


@dataclass(frozen=True)
class SettingDoc:
    key: str
    help: str
    type: str
    default: Any
    bounds: str  # allowed range or choices ("" when any value of the type)
    version: str  # whether (and how) it changes an artifact
    presets: dict[str, Any]  # preset file name -> the value it sets (only those that set it)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is not None:
        return f"{origin.__name__}[{', '.join(_type_name(arg) for arg in typing.get_args(tp))}]"
    return getattr(tp, "__name__", str(tp))


def _bounds(metadata: typing.Mapping[str, Any]) -> str:
    if "choices" in metadata:
        return "one of " + ", ".join(map(str, metadata["choices"]))
    parts = []
    if "min" in metadata:
        parts.append(f">= {metadata['min']}")
    if "above" in metadata:
        parts.append(f"> {metadata['above']}")
    if "max" in metadata:
        parts.append(f"<= {metadata['max']}")
    return ", ".join(parts)


def _version(key: str, marker: Any) -> str:
    if marker is True:
        return f"yes: part of the {SECTION_STAGE[key.split('.')[0]]} stage's artifact version"
    if marker is False:
        return "no: it changes how a run is spread, logged, sized or gated, not what it makes"
    return f"yes, {marker}" if not str(marker).startswith("no") else str(marker)


def _preset_values() -> dict[str, dict]:
    values = {}
    for path in sorted(PRESETS.glob("*.yaml")):
        try:
            values[path.name] = load_yaml(path)
        except ConfigError:
            continue
    return values


def _lookup(data: dict, key: str) -> tuple[bool, Any]:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def settings_docs() -> list[SettingDoc]:
    """One SettingDoc per leaf setting, in schema order."""
    presets = _preset_values()
    docs: list[SettingDoc] = []

    def walk(cls: type, prefix: str, parent_marker: Any) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f"{prefix}{f.name}"
            marker = f.metadata.get("version", True)
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{key}.", marker if parent_marker is True else parent_marker)
                continue
            given = {}
            for name, data in presets.items():
                found, value = _lookup(data, key)
                if found:
                    given[name] = value
            docs.append(
                SettingDoc(
                    key=key,
                    help=f.metadata["help"],
                    type=_type_name(hints[f.name]),
                    default=default_of(f),
                    bounds=_bounds(f.metadata),
                    version=_version(key, marker if parent_marker is True else parent_marker),
                    presets=given,
                )
            )

    walk(Config, "", True)
    return docs


def explain(key: str | None = None) -> list[SettingDoc]:
    """The settings under `key` (a setting or a section; None: all)."""
    docs = settings_docs()
    if key is None:
        return docs
    chosen = [d for d in docs if d.key == key or d.key.startswith(f"{key}.")]
    if not chosen:
        raise ConfigError(f"{key}: {retired(key) or 'no such setting or section (rge config explain lists them all)'}")
    return chosen


def as_text(doc: SettingDoc) -> str:
    lines = [
        doc.key,
        f"  {doc.help}",
        f"  type {doc.type}, default {doc.default!r}" + (f"; {doc.bounds}" if doc.bounds else ""),
    ]
    lines.append(f"  changes the version: {doc.version}")
    for name, value in doc.presets.items():
        lines.append(f"  configs/{name}: {value!r}")
    return "\n".join(lines)


def settings_markdown() -> str:
    """docs/settings.md: every setting, section by section."""
    parts = [
        "# Settings",
        "",
        "Every setting of the pipeline, generated from `rge_core/config/schema.py` by `rge config explain "
        '--markdown` (tests/test_settings_doc.py keeps this file current). "Version" says whether a setting '
        "changes an artifact's version (then a changed value builds a new artifact, and an unchanged one reuses "
        "it). Presets: the value each file in `configs/` sets (a blank: it keeps the default).",
    ]
    section = None
    for doc in settings_docs():
        top = doc.key.split(".")[0]
        if top != section:
            section = top
            parts += [
                "",
                f"## `{top}`",
                "",
                "| setting | what it does | default | allowed | version | presets |",
                "|---|---|---|---|---|---|",
            ]
        presets = "; ".join(f"{name}: `{value!r}`" for name, value in doc.presets.items())
        cells = [f"`{doc.key}`", doc.help, f"`{doc.default!r}`", doc.bounds, doc.version, presets]
        parts.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    parts += [
        "",
        "## Renamed and removed",
        "",
        "An old key in a config file or `--set` fails at load in one line saying what replaced it.",
        "",
        "| old key | now |",
        "|---|---|",
    ]
    parts += [f"| `{old}` | `{new}` |" for old, new in RENAMED.items()]
    parts += [f"| `{old}` | removed: {why} |" for old, why in REMOVED.items()]
    return "\n".join(parts) + "\n"
