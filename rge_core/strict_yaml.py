"""YAML as every reader of ours parses it (config files, `--set` values, the flow's overrides, prompt sets,
rewrite files, prefect.yaml): safe types only; a key given twice in one mapping is an error (PyYAML would
silently keep the last one); aliases may expand to at most ALIAS_BUDGET nodes in all (a few hundred bytes
of nested aliases otherwise expand to billions: a "billion laughs" bomb); nesting deeper than Python's
recursion allows is an error, not a crash.

    data = load_strict(text)          # raises yaml.YAMLError
    f"{path}: invalid YAML: {yaml_problem(error)}"   # line, column and problem, never the file's text
"""

from __future__ import annotations

from typing import Any

import yaml

from rge_core.messages import shortened

# Nodes that aliases may add to a document when expanded. prefect.yaml's few aliases of small mappings
# add well under 200; a bomb adds billions.
ALIAS_BUDGET = 10_000


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping and aliases that expand beyond the budget."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._expanded = 0  # nodes added by aliases so far
        self._sizes: dict[int, int] = {}  # id(node) -> nodes under it, aliases expanded
        self._open: set[str] = set()  # anchors whose node is being composed

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in self._open:  # used inside itself: infinite when expanded
                raise yaml.composer.ComposerError(
                    None, None, "a recursive alias (an anchor used inside itself)", event.start_mark
                )
            node = super().compose_node(parent, index)
            self._expanded += self._size(node)
            if self._expanded > ALIAS_BUDGET:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases expand to more than {ALIAS_BUDGET} nodes (an alias bomb?)", event.start_mark
                )
            return node
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(anchor)

    def _size(self, node: yaml.Node) -> int:
        """Nodes under `node` with aliases expanded (a complete node: recursive aliases were refused)."""
        if id(node) not in self._sizes:
            size = 1
            if isinstance(node, yaml.SequenceNode):
                size += sum(self._size(item) for item in node.value)
            elif isinstance(node, yaml.MappingNode):
                size += sum(self._size(key) + self._size(value) for key, value in node.value)
            self._sizes[id(node)] = size
        return self._sizes[id(node)]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        mapping = super().construct_mapping(node, deep=deep)
        if len(mapping) < len(node.value):
            # Named by its lines, not its text: the document may be any file, a secret one included.
            first: dict[Any, yaml.Node] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in first:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"a key is given twice in one mapping (first at line {first[key].start_mark.line + 1})",
                        key_node.start_mark,
                    )
                first[key] = key_node
        return mapping


def load_strict(text: str | bytes) -> Any:
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)
    except RecursionError:
        raise yaml.YAMLError("nested too deeply to read") from None


def yaml_problem(error: yaml.YAMLError) -> str:
    """`line L, column C: problem` of a YAML error, without the snippet of the document that PyYAML's own
    message quotes (the document may be any file, a secret one included)."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return shortened(str(error).splitlines()[0] if str(error) else type(error).__name__, 120)
    mark = error.problem_mark or error.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = " ".join(part for part in (error.context, error.problem) if part)
    return where + shortened(problem, 120)
