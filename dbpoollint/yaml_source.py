"""YAML documents with the line each value came from (compose, serverless, Kubernetes, Helm).

PyYAML does the parsing (anchors, merges, flow style, multi-line scalars); this module only keeps
the 1-based line of every mapping key, mapping value and sequence item, because findings point at
the line a value was written on.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode


class YamlError(ValueError):
    """A file that is not valid YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class LineDict(dict[Any, Any]):
    """A mapping that knows the line of each key (`key_line`) and of itself (`line`)."""

    line: int
    key_lines: dict[Any, int]

    def key_line(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence that knows the line of each item (`item_line`) and of itself (`line`)."""

    line: int
    item_lines: list[int]

    def item_line(self, index: int) -> int:
        return self.item_lines[index] if 0 <= index < len(self.item_lines) else self.line


class _LineLoader(yaml.SafeLoader):
    """SafeLoader (no arbitrary objects) whose mappings and sequences carry their lines."""


def _construct_mapping(loader: _LineLoader, node: MappingNode) -> LineDict:
    loader.flatten_mapping(node)  # resolves `<<: *anchor` merges, as SafeLoader does
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # a complex key (`? [a, b]`) names nothing we read
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _LineLoader, node: SequenceNode) -> LineList:
    items = LineList(loader.construct_object(child, deep=True) for child in node.value)
    items.line = node.start_mark.line + 1
    items.item_lines = [child.start_mark.line + 1 for child in node.value]
    return items


def _construct_unknown(loader: _LineLoader, node: Node) -> Any:
    """Custom tags (`!Ref`, `!Sub`, `!reference`) load as their plain value, never fail."""
    if isinstance(node, MappingNode):
        return _construct_mapping(loader, node)
    if isinstance(node, SequenceNode):
        return _construct_sequence(loader, node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_LineLoader.add_constructor(None, _construct_unknown)


def load_documents(text: str) -> list[Any]:
    """Every document of a YAML stream (Kubernetes manifests hold several), with lines kept."""
    try:
        return list(yaml.load_all(text, Loader=_LineLoader))  # a SafeLoader subclass
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 0
        raise YamlError(str(error.problem or error), line) from None
    except (yaml.YAMLError, RecursionError) as error:
        raise YamlError(str(error), 0) from None
