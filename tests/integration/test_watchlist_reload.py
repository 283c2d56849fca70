"""The daemon's watchlists: reloaded when files change; a broken edit keeps the last good version."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from monitor.domain import Document
from monitor.pipeline import WatchlistSource

ROOT = Path(__file__).resolve().parents[2]
VISIT = Document(title="Chinese delegation led by Zhao Leji arrives in Pyongyang for talks with Kim Jong Un")


def touch_later(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_broken_edit_keeps_the_last_good_version_and_a_fix_is_picked_up(tmp_path: Path) -> None:
    folder = tmp_path / "watchlists"
    shutil.copytree(ROOT / "watchlists", folder)
    source = WatchlistSource(folder)
    assert "delegation_visits" in {m.watchlist for m in source.get().match(VISIT)}

    visits = folder / "delegation_visits.yaml"
    good = visits.read_text(encoding="utf-8")
    visits.write_text(good.replace("rules:", "rulez:"), encoding="utf-8")
    touch_later(visits)
    matcher = source.get()
    assert "delegation_visits" in {m.watchlist for m in matcher.match(VISIT)}  # last good version still runs

    anniversaries = folder / "anniversaries.yaml"
    anniversaries.write_text(anniversaries.read_text(encoding="utf-8").replace('version: "1"', 'version: "7"'),
                             encoding="utf-8")
    touch_later(anniversaries)
    assert source.get() is not matcher  # the other, valid edit is applied meanwhile
    assert {w.name: w.version for w in source.result.watchlists}["anniversaries"] == "7"  # type: ignore[union-attr]

    visits.write_text(good.replace('version: "1"', 'version: "2"'), encoding="utf-8")
    touch_later(visits)
    [hit] = [m for m in source.get().match(VISIT) if m.watchlist == "delegation_visits"]
    assert hit.version == "2"
