"""A ``monitor web`` server with settings of the test's choosing (subscriptions, a watchlist folder)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.web.conftest import ROOT, Web, web_server, web_settings


@contextmanager
def custom_web(db_url: str, **values: Any) -> Iterator[Web]:
    """Like the ``web`` fixture, with ``values`` overriding the settings."""
    yield from web_server(web_settings(db_url, **values))


def watchlist_folder(tmp_path: Path, *extra: tuple[str, str]) -> Path:
    """A copy of the seeded watchlist folder with ``(file name, text)`` files added or replaced."""
    folder = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", folder, ignore=shutil.ignore_patterns("*.xml"))
    for name, text in extra:
        (folder / name).write_text(text, encoding="utf-8")
    return folder
