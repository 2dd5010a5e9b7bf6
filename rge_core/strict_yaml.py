"""YAML as every reader of ours parses it: safe types only, and a key given twice in one mapping is an error
(PyYAML would silently keep the last one).

    data = load_strict(text)      # raises yaml.YAMLError, with the line of the repeated key
"""

from __future__ import annotations

from typing import Any

import yaml


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) < len(node.value):
            keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
            repeated = next(key for key in keys if keys.count(key) > 1)
            raise yaml.constructor.ConstructorError(
                None, None, f"key {repeated!r} is given twice in one mapping", node.start_mark
            )
        return mapping


def load_strict(text: str | bytes) -> Any:
    return yaml.load(text, Loader=UniqueKeyLoader)
