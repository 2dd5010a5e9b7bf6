"""What a checkpoint folder allows, read from its config.json without loading it."""

from __future__ import annotations

import json
from pathlib import Path

# The embedded tiny model's language model (rge_core/model/tiny.py).
TINY_MAX_POSITIONS = 4096


def max_positions(folder: Path) -> int | None:
    """max_position_embeddings of the checkpoint's language model (Qwen-VL keeps it in text_config); None when
    the folder has no readable config.json or names none."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    value = config.get("text_config", {}).get("max_position_embeddings", config.get("max_position_embeddings"))
    return value if isinstance(value, int) else None
