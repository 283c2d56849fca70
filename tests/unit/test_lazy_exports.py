"""The names ``monitor.store`` re-exports load on first use, and each is the object its module defines;
the head revision read from the migration files is the one Alembic reads."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import monitor.db
from monitor import store
from monitor.db import alembic_head_revision, head_revision


def test_every_store_name_is_the_object_its_module_defines() -> None:
    for module, names in store._SOURCES.items():
        source = importlib.import_module(module)
        for name in names:
            assert getattr(store, name) is getattr(source, name), name
    assert sorted(store.__all__) == sorted(store._MODULE_OF)


def test_the_type_checking_imports_name_the_same_sources() -> None:
    """The imports mypy and import-linter read are the ones the package loads at run time."""
    tree = ast.parse(Path(store.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If))
    declared = {alias.name: node.module for node in block.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    assert declared == store._MODULE_OF


def test_a_submodule_import_does_not_hide_the_function_of_the_same_name() -> None:
    code = ("import monitor.store.match_sets, monitor.store.hits\nfrom monitor import store\n"
            "import sys\nassert 'monitor.store.items' not in sys.modules\n"
            "assert callable(store.match_sets) and store.match_sets.__module__ == 'monitor.store.match_sets'\n"
            "assert store.hits is sys.modules['monitor.store.hits']\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_an_unknown_store_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        store.no_such_thing  # noqa: B018


def test_the_head_revision_from_the_files_is_alembics() -> None:
    assert head_revision() == alembic_head_revision() is not None


def test_migration_files_that_branch_are_left_to_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    for name, down in (("a1", None), ("b2", "a1"), ("c3", "a1")):
        (versions / f"{name}.py").write_text(f'"""{name}"""\nrevision = "{name}"\ndown_revision = {down!r}\n',
                                             encoding="utf-8")
    monkeypatch.setattr(monitor.db, "MIGRATIONS", tmp_path)
    assert monitor.db._heads_from_files() == {"b2", "c3"}
    asked: list[bool] = []
    monkeypatch.setattr(monitor.db, "alembic_head_revision", lambda: asked.append(True) or "from alembic")
    assert head_revision() == "from alembic" and asked
    (versions / "c3.py").write_text('revision = "c3"\ndown_revision = "b2"\n', encoding="utf-8")
    assert head_revision() == "c3"
