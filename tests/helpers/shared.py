"""The folders that live beside the checkout in ``../shared/`` (seeds, feeds-wild, feeds-corpus).

They are not part of the repository. Locally a test that needs one skips with a reason naming
the folder; under ``CI=true`` the same test fails instead, so a CI run never passes by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def _missing(path: Path) -> str:
    return f"{path} is missing (../shared/{path.name} lives beside the checkout, not in it)"


def shared_dir(name: str) -> Path:
    """The folder ``../shared/<name>``; skip the calling test when it is absent, fail under ``CI=true``."""
    path = SHARED / name
    if path.is_dir() and any(path.iterdir()):
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{_missing(path)}; CI must run this test")
    pytest.skip(_missing(path))


def shared_files(name: str, *, exclude: frozenset[str] = frozenset({"README.md"})) -> list[Path]:
    """The files under ``../shared/<name>`` to parametrize a test over, never an empty list.

    pytest turns an empty parameter set into a silent skip, even under CI; when the folder is absent
    this returns one placeholder path, and the test's call to :func:`shared_dir` skips or fails loudly.
    """
    folder = SHARED / name
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in exclude) if folder.is_dir() else []
    return files or [folder / "(missing)"]
