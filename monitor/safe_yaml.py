"""YAML for files an operator edits: aliases capped, no self-reference, bounded nesting.

YAML aliases make a small file stand for a huge (or, with a self-reference, endless) tree:
300 bytes of nested ``*refs`` fan out to billions of nodes when the tree is walked, and a
node that contains itself sends any recursive reader into a ``RecursionError``. Aliases
themselves are legitimate (``yaml.safe_dump`` writes ``&id001``/``*id001`` for a value used
twice), so they are allowed, but what they add is counted while the file is parsed, before
anything walks the tree: an alias to a node that contains it, aliases adding more than
:data:`MAX_ALIAS_NODES` nodes, and nesting deeper than :data:`MAX_DEPTH` are refused with
the line where the parser met them. The work is linear in the file.

Scanning and parsing run in libyaml (PyYAML's C parser) when PyYAML was built with it, which is
several times faster than the pure-Python scanner (every command loads the watchlists); the tree is
built in Python either way, so the caps above apply to both.

Errors are ``yaml.MarkedYAMLError`` values, so callers that already report YAML syntax
errors with file and line report these the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

MAX_DEPTH = 64  # no watchlist or config file comes near this; deep nesting is only ever an attack or a typo
MAX_ALIAS_NODES = 100_000  # nodes that aliases may add to a file's tree, all aliases together


class _Capped(Composer):
    """A composer that counts what aliases add and refuses self-reference and deep nesting."""

    if TYPE_CHECKING:  # the parser it is combined with provides the events
        def peek_event(self) -> yaml.Event: ...
        def get_event(self) -> yaml.Event: ...

    def _start_capping(self) -> None:
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


class _CappedLoader(_Capped, yaml.SafeLoader):
    """SafeLoader (pure Python) with the caps."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start_capping()


if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class _CappedCLoader(_Capped, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser, with the tree built by the capped composer above (first in the
        method order, so libyaml's own composer is never used)."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_capping()

    _Loader: type[_CappedLoader] | type[_CappedCLoader] = _CappedCLoader
else:  # pragma: no cover - PyYAML without libyaml
    _Loader = _CappedLoader


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (line numbers kept), with aliases capped and deep nesting refused."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """Plain Python values of ``text``, with aliases capped and deep nesting refused."""
    loader = _Loader(text)
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
        if "maximum nesting depth" in reason:  # libyaml's own limit (1,000) met before ours: one message
            reason = f"nested more than {MAX_DEPTH} levels deep"
        return reason, (mark.line + 1 if mark is not None else None)
    return str(exc), None
