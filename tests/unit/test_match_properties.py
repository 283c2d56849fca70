"""Property-based tests: whatever the text or the watchlist file, no exception escapes.

Matching sees every feed's text and loading sees whatever an operator saves; both must turn
anything into an answer (matches, or errors with file and line), never into a crash.
"""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import load_settings
from monitor.domain import Document
from monitor.errors import ConfigError
from monitor.match import Matcher, load_watchlists
from monitor.match.engine import FIELD_CAPS
from monitor.match.regex import RegexError, compile_regex
from monitor.match.watchlist import check_alias, count_variants, expand_alias

ROOT = Path(__file__).resolve().parents[2]
MATCHER = Matcher.compile(load_watchlists(ROOT / "watchlists"))

# Pieces that steer the matcher into its rarer paths: actors, cues, events, ordinals, sentence
# marks, abbreviations, tags, CJK and characters whose case folding changes the length.
FRAGMENTS = [
    "Kim Jong Un", "Xi Jinping", "Putin", "Pyongyang", "Beijing", "Moscow", "delegation", "visit", "arrives in",
    "75th anniversary", "seventy-fifth", "treaty", "friendship", "ambassador", "embassy", "N. Korea", "Mr.",
    "U.S.", "...", ".", "!", "?", ";", "\n", "\n\n", "<a href='x'>", "</a>", "<!--", "<", ">", "周年", "朝鲜",
    "中国", "조선", "ß", "İ", "ﬁ", "—", "-", "_", "'", "’", " ", "  ", "\t", "\u00a0", "64", "1961", "첫",
]
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), max_size=40).map("".join)
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(title=TEXT, summary=TEXT, content=TEXT)
def test_matching_any_text_returns_matches_whose_evidence_points_into_the_text(
        title: str, summary: str, content: str) -> None:
    doc = Document(title=title, summary=summary, content=content)
    for match in MATCHER.match(doc):
        for ev in match.evidence:
            original = getattr(doc, ev["field"])
            assert 0 <= ev["start"] <= ev["end"] <= len(original)
            assert ev["text"] == original[ev["start"]:ev["end"]]


YAML_PIECES = [
    "kind: watchlist\n", "name: fuzz\n", "title: Fuzz\n", 'version: "1"\n', "severity: low\n", "rules:\n",
    "  - id: r\n", "    all:\n", "      - actor: kim_jong_un\n", "      - phrase: [\"{a|b}{c|d}\"]\n",
    "      - regex: '(\\w+\\s?)+:'\n", "      - regex: '(a)\\1'\n", "    within: 3\n", "    prefilter: [x]\n",
    "cues:\n", "  c: [\"{x|{y|z}}\"]\n", "  d: &a [1]\n", "  e: *a\n", "x: &b [*b]\n", "[[[[", "]]]]", "{{",
    "}}", ": :", "- -", "\t", "'", '"', "*", "&", "!!python/object:os.system\n", "%YAML 1.1\n", "---\n",
    "kind: actors\n", "actors:\n", "  k: {type: person, aliases: [\"{a|b}\"]}\n", "kind: calendar\n",
    "events:\n", "  e: {name: E, date: 13-45, parties: [x], aliases: [e], source: s}\n",
]
YAML_TEXT = st.lists(st.one_of(st.sampled_from(YAML_PIECES), st.text(max_size=6)), max_size=25).map("".join)


@FAST
@given(files=st.lists(YAML_TEXT, min_size=1, max_size=3))
def test_loading_any_watchlist_folder_reports_errors_and_never_raises(files: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for i, text in enumerate(files):
            (Path(folder) / f"f{i}.yaml").write_text(text, encoding="utf-8")
        result = load_watchlists(Path(folder))
        for error in result.errors:
            assert error.path is not None and "Traceback" not in str(error)
        Matcher.compile(result)  # whatever loaded compiles


@FAST
@given(text=YAML_TEXT)
def test_loading_any_config_file_raises_only_a_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "monitor.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_settings(path)
        except ConfigError as exc:
            assert str(path) in str(exc)


@FAST
@given(alias=st.lists(st.sampled_from(["{", "}", "|", "a", "b", " ", "*"]), max_size=30).map("".join))
def test_alias_checks_agree_with_expansion(alias: str) -> None:
    problem = check_alias(alias)
    if problem is None:
        variants = expand_alias(alias)
        assert 1 <= len(variants) <= count_variants(alias)
        assert all("{" not in v and "}" not in v for v in variants)


@FAST
@given(pattern=st.text(max_size=20))
def test_any_regex_either_compiles_with_re2_or_is_refused_with_a_reason(pattern: str) -> None:
    try:
        compiled = compile_regex(pattern)
    except RegexError as exc:
        assert str(exc)
        return
    list(compiled.finditer("kim jong un said: 75th anniversary 中国 " * 3))


@pytest.fixture
def hang_guard() -> Iterator[None]:
    """Fail instead of hanging the suite if matching is not linear (a safety net, not a timing assertion)."""

    def _timeout(_signum: int, _frame: object) -> None:
        raise TimeoutError("matching took far too long: super-linear in the text")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


HIT = "Kim Jong Un arrives in Beijing for talks with Xi Jinping. "


@pytest.mark.usefixtures("hang_guard")
@pytest.mark.parametrize("filler", [".", "!?;", "<!--<a", "a ", "Xi Jinping in Pyongyang with the embassy staff, ",
                                    "Xi Jinping visited Pyongyang with the embassy staff. ",
                                    "Kim Jong Un marks the 64th anniversary of the treaty with China, "])
def test_worst_case_texts_are_matched_in_full(filler: str) -> None:
    """Big hostile fields (after a real hit) are read linearly, and the hit in them is still found."""
    content = HIT + filler * (256 * 1024 // len(filler))
    doc = Document(title="x", content=content)
    assert "delegation_visits" in {m.watchlist for m in MATCHER.match(doc)}


def test_text_past_a_field_cap_is_not_read() -> None:
    content = "a " * (FIELD_CAPS["content"] // 2) + HIT
    assert MATCHER.match(Document(title="x", content=content)) == []
    assert MATCHER.match(Document(title="x", content=HIT + content))
