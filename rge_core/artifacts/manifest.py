"""The manifest.json of an artifact: what it is, what it was made from, and what it holds. Its presence
marks the artifact complete, so it is always written last."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

MANIFEST_NAME = "manifest.json"


@dataclass
class FileRecord:
    sha256: str
    bytes: int


@dataclass
class Manifest:
    id: str
    kind: str
    created: str  # UTC ISO-8601
    config: dict[str, Any]
    inputs: dict[str, str]  # lineage: input name -> version id
    code_version: str
    files: dict[str, FileRecord] = field(default_factory=dict)  # relative path -> hash and size
    stats: dict[str, Any] = field(default_factory=dict)
    git_commit: str | None = None
    packages: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        data = json.loads(text)
        data["files"] = {path: FileRecord(**record) for path, record in data.get("files", {}).items()}
        return cls(**data)
