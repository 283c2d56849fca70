"""The capped YAML loader on libyaml's parser reads every file as the pure-Python one does, and refuses
the same hostile files with the same reasons and lines (monitor uses libyaml when PyYAML has it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor import safe_yaml
from tests.unit.test_watchlist_bombs import alias_fan_out

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted([*ROOT.glob("watchlists/*.yaml"), ROOT / "monitor.yaml", *ROOT.glob("deploy/*.yaml"),
                *ROOT.glob("tests/data/**/*.yaml")])

pytestmark = pytest.mark.skipif(safe_yaml._Loader is safe_yaml._CappedLoader,
                                reason="PyYAML was built without libyaml: only the pure-Python parser is used")


def tree(node: Any) -> Any:
    """A node tree as plain values: tags, values, positions and quoting (plain style is None or '')."""
    if node is None:
        return None
    where = (node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value, where, node.style or None)
    if isinstance(node, yaml.SequenceNode):
        return (node.tag, where, [tree(n) for n in node.value])
    return (node.tag, where, [(tree(k), tree(v)) for k, v in node.value])


def read(loader: type[Any], text: str) -> Any:
    parser = loader(text)
    try:
        return tree(parser.get_single_node())
    except yaml.YAMLError as exc:
        return ("refused", safe_yaml.describe(exc))
    finally:
        parser.dispose()


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_libyaml_reads_the_projects_files_as_the_python_parser_does(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert read(safe_yaml._Loader, text) == read(safe_yaml._CappedLoader, text)


@pytest.mark.parametrize(("text", "reason"), [
    (alias_fan_out(9), "aliases expand to more than"),
    ("a: &a [1, *a]\n", "refers to a value that contains it"),
    ("x: " + "[" * 100 + "]" * 100 + "\n", "nested more than 64 levels deep"),
    ("x: " + "[" * 50_000 + "]" * 50_000 + "\n", "nested more than 64 levels deep"),
    ("a: *nowhere\n", "is not defined above"),
    ("a: [1, 2\nb: 3\n", ""),  # a syntax error: refused with a line by both
])
def test_both_parsers_refuse_hostile_yaml_alike(text: str, reason: str) -> None:
    fast, slow = read(safe_yaml._Loader, text), read(safe_yaml._CappedLoader, text)
    assert fast[0] == slow[0] == "refused"
    assert reason in fast[1][0] and reason in slow[1][0]
    assert fast[1][1] == slow[1][1] is not None  # the same line
    if reason:  # the caps' own refusals read the same; a syntax error is worded by each parser
        assert fast == slow
