"""The five seed articles (real reporting the seeded watchlists come from).

They live outside the repository, in ``../shared/seeds`` beside the checkout; the test is skipped
when they are not there, and fails under ``CI=true``. Each is matched as title (first line) + body,
once as summary and once as content.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.domain import Document
from monitor.match import Matcher, load_watchlists
from tests.helpers.shared import shared_dir

WATCHLISTS = Path(__file__).resolve().parents[2] / "watchlists"

# (file prefix, must match, must not match)
EXPECTED = [
    ("000", {"anniversaries", "defense_treaties"}, set()),
    ("001", {"anniversaries", "defense_treaties"}, set()),
    ("002", {"delegation_visits", "anniversaries"}, {"defense_treaties"}),
    ("003", {"anniversaries", "defense_treaties"}, {"delegation_visits"}),
    ("004", {"delegation_visits", "anniversaries"}, set()),
]


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.compile(load_watchlists(WATCHLISTS))


@pytest.mark.parametrize(("prefix", "must", "must_not"), EXPECTED, ids=[e[0] for e in EXPECTED])
@pytest.mark.parametrize("body_field", ["summary", "content"])
def test_seed_article_matches_its_lists(matcher: Matcher, prefix: str, must: set[str], must_not: set[str],
                                        body_field: str) -> None:
    seeds = shared_dir("seeds")
    files = sorted(seeds.glob(f"{prefix}_*.txt"))
    assert files, f"seed {prefix} not found in {seeds}"
    title, _, body = files[0].read_text(encoding="utf-8").partition("\n")
    doc = Document(title=title, **{body_field: body})
    got = {m.watchlist for m in matcher.match(doc)}
    assert must <= got, f"missing {must - got}"
    assert not (must_not & got), f"unexpected {must_not & got}"
