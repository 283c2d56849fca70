"""YAML for files an operator edits: aliases capped, no self-reference, bounded nesting.

YAML aliases make a small file stand for a huge (or, with a self-reference, endless) tree:
300 bytes of nested ``*refs`` fan out to billions of nodes when the tree is walked, and a
node that contains itself sends any recursive reader into a ``RecursionError``. Aliases
themselves are legitimate (``yaml.safe_dump`` writes ``&id001``/``*id001`` for a value used
twice), so they are allowed, but what they add is counted while the file is parsed, before
anything walks the tree: an alias to a node that contains it, aliases adding more than
:data:`MAX_ALIAS_NODES` nodes, and nesting deeper than :data:`MAX_DEPTH` are refused with
the line where the parser met them. The work is linear in the file.

Errors are ``yaml.MarkedYAMLError`` values, so callers that already report YAML syntax
errors with file and line report these the same way.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

MAX_DEPTH = 64  # no watchlist or config file comes near this; deep nesting is only ever an attack or a typo
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add to a file's tree, all aliases together


class _CappedLoader(yaml.SafeLoader):
    """SafeLoader that counts what aliases add and refuses self-reference and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in its tree with aliases expanded (when complete)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(event)
        if self._depth >= MAX_DEPTH:
            mark: Any = event.start_mark
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is not None:
            self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node

    def _alias(self, event: yaml.AliasEvent) -> yaml.Node:
        mark: Any = event.start_mark
        node = self.anchors.get(event.anchor) if event.anchor is not None else None
        if node is None:
            raise ComposerError(None, None, f"alias *{event.anchor} is not defined above", mark)
        size = self._sizes.get(id(node))
        if size is None:  # its node is still being read: the alias is inside what it names
            raise ComposerError(None, None, f"alias *{event.anchor} refers to a value that contains it", mark)
        self._alias_nodes += size
        if self._alias_nodes > MAX_ALIAS_NODES:
            raise ComposerError(None, None, f"YAML aliases expand to more than {MAX_ALIAS_NODES} values: "
                                "write the values out instead of nesting aliases", mark)
        self.get_event()
        return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (line numbers kept), with aliases capped and deep nesting refused."""
    loader = _CappedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """Plain Python values of ``text``, with aliases capped and deep nesting refused."""
    loader = _CappedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def describe(exc: yaml.YAMLError) -> tuple[str, int | None]:
    """A one-line reason and the 1-based line of a YAML error (no parser internals)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            reason = f"{exc.problem} ({exc.context})"
        return reason, (mark.line + 1 if mark is not None else None)
    return str(exc), None
