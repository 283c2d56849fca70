"""YAML for files an operator edits: plain trees only, no anchors or aliases, bounded nesting.

YAML aliases make a small file stand for a huge (or, with a self-reference, endless) tree:
300 bytes of nested ``*refs`` fan out to billions of nodes when the tree is walked, and a
node that contains itself sends any recursive reader into a ``RecursionError``. Neither
watchlists nor ``monitor.yaml`` need them, so they are refused where the parser meets them,
with the line, before anything walks the tree. Nesting is capped for the same reason.

Errors are ``yaml.MarkedYAMLError`` values, so callers that already report YAML syntax
errors with file and line report these the same way.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.composer import ComposerError

MAX_DEPTH = 64  # no watchlist or config file comes near this; deep nesting is only ever an attack or a typo


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors, aliases and nesting deeper than :data:`MAX_DEPTH`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise ComposerError(None, None, "YAML anchors and aliases (&name, *name) are not supported: "
                                "write the value out in full", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose(text: str) -> yaml.Node | None:
    """The node tree of ``text`` (line numbers kept), refusing anchors, aliases and deep nesting."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load(text: str) -> Any:
    """Plain Python values of ``text``, refusing anchors, aliases and deep nesting."""
    loader = _StrictLoader(text)
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
