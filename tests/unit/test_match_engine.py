"""The compiled matcher: normalisation, boundaries, evidence spans, scores, exclusions.

The watchlists are small and fixed (tests/helpers/engine_watchlists.py), so these tests
exercise the engine and do not move when the seeded lists in ``watchlists/`` are tuned.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from monitor.domain import Document
from monitor.match import Matcher, explain, load_watchlists, normalise
from tests.helpers.engine_watchlists import write_engine_watchlists


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_engine_watchlists(tmp_path_factory.mktemp("watchlists"))


@pytest.fixture(scope="module")
def matcher(folder: Path) -> Matcher:
    result = load_watchlists(folder)
    assert result.errors == []
    return Matcher.compile(result)


def names(matcher: Matcher, title: str, summary: str = "", on: date | None = None) -> set[str]:
    return {m.watchlist for m in matcher.match(Document(title=title, summary=summary), on=on)}


def test_watchlist_names_lists_every_compiled_watchlist(matcher: Matcher) -> None:
    assert sorted(matcher.watchlist_names) == ["anniversaries", "delegation_visits"]


@pytest.mark.parametrize("spelling", ["Choe Son Hui", "Choe Son-hui", "Choe Sonhui", "CHOE SON HUI", "Choi Son-hee"])
def test_romanisations_and_hyphenations_of_a_name_are_the_same_actor(matcher: Matcher, spelling: str) -> None:
    assert "delegation_visits" in names(matcher, f"{spelling} arrives in Moscow")


@pytest.mark.parametrize("spelling", ["Ri Yong Ho", "Lee Yong-ho", "Rhee Yong Ho"])
def test_ri_lee_rhee_are_one_surname(matcher: Matcher, spelling: str) -> None:
    assert "delegation_visits" in names(matcher, f"{spelling} holds talks with Wang Yi in Beijing")


def test_curly_and_straight_apostrophes_are_equivalent(matcher: Matcher) -> None:
    for apostrophe in ("'", "\u2019"):
        title = f"Korean People{apostrophe}s Army officers visit China"
        assert "delegation_visits" in names(matcher, title)


def test_word_boundaries_apply_to_latin_but_not_to_chinese_or_korean(matcher: Matcher) -> None:
    assert names(matcher, "Chinatown restaurant owner visits Pyongyangcity exhibit") == set()
    assert "delegation_visits" in names(matcher, "习近平同金正恩举行会谈")
    assert "delegation_visits" in names(matcher, "김정은동지 중국방문")


def test_korea_alone_and_south_korea_are_not_the_dprk(matcher: Matcher) -> None:
    assert names(matcher, "Korea and China hold talks in Beijing") == set()
    assert names(matcher, "South Korea's foreign minister visits Beijing") == set()
    assert names(matcher, "South Korea's Kim Hong-kyun arrives in Beijing for talks") == set()
    assert names(matcher, "Kim Dae-jung meets Jiang Zemin in Beijing") == set()


def test_surname_only_headline_next_to_a_partner_leader_is_the_dprk_leader(matcher: Matcher) -> None:
    # Headlines say "Putin hosts Kim"; a South Korean Kim is named in full or comes with Seoul.
    assert "delegation_visits" in names(matcher, "Putin hosts Kim at Vladivostok summit")
    assert "delegation_visits" in names(matcher, "Kim arrives in Beijing for talks with Xi")


def test_china_and_russia_discussing_north_korea_is_not_a_visit(matcher: Matcher) -> None:
    assert names(matcher, "Lavrov and Wang Yi discuss North Korea in Beijing") == set()
    assert names(matcher, "Xi visits Moscow; talks cover sanctions on North Korea") == set()


def test_evidence_spans_point_into_the_original_field_text(matcher: Matcher) -> None:
    summary = "<p>The <b>Russian</b> minister arrived in Pyongyang.</p>"
    doc = Document(title="Shoigu  meets Kim Jong-un", summary=summary)
    [match] = [m for m in matcher.match(doc) if m.watchlist == "delegation_visits"]
    assert match.evidence
    for ev in match.evidence:
        text = getattr(doc, ev["field"])
        assert text[ev["start"]:ev["end"]] == ev["text"]
        assert ev["kind"] in {"actor", "cue", "phrase", "regex", "anniversary"}
        assert {"rule", "field", "start", "end", "text", "kind"} <= set(ev)
    actors = {ev["actor"] for ev in match.evidence if ev["kind"] == "actor"}
    assert actors & {"kim_jong_un", "pyongyang"} and actors & {"shoigu", "russia"}


def test_offsets_survive_characters_that_fold_to_several(matcher: Matcher) -> None:
    title = "Straße news: Lavrov arrives in Pyongyang"
    [match] = [m for m in matcher.match(Document(title=title)) if m.watchlist == "delegation_visits"]
    for ev in match.evidence:
        assert title[ev["start"]:ev["end"]] == ev["text"]


def test_offsets_count_characters_after_emoji_and_other_scripts(matcher: Matcher) -> None:
    """The automaton reads UTF-8; the spans it reports must still be character offsets."""
    title = "\U0001f6a8\U0001f1f0\U0001f1f5 Срочно 速报: Lavrov arrives in Pyongyang \U0001f680"
    [match] = [m for m in matcher.match(Document(title=title)) if m.watchlist == "delegation_visits"]
    spans = {ev["text"] for ev in match.evidence}
    assert {"Lavrov", "Pyongyang"} <= spans
    for ev in match.evidence:
        assert title[ev["start"]:ev["end"]] == ev["text"]


def test_normalise_blanks_tags_without_moving_offsets() -> None:
    text, offsets = normalise("<b>Xi</b> arrives")
    assert offsets is None
    assert text.index("xi") == 3 and text.endswith("arrives")


def test_match_version_is_the_watchlist_version_and_score_meets_threshold(matcher: Matcher) -> None:
    [match] = matcher.match(Document(title="Kim Jong Un arrives in Vladivostok"))
    assert match.watchlist == "delegation_visits"
    assert match.version == "1"
    assert match.score >= 0.75
    assert match.to_json()["evidence"][0]["rule"] == "travel"


def test_title_weighs_more_than_content(matcher: Matcher) -> None:
    title = matcher.match(Document(title="Kim Jong Un arrives in Vladivostok"))[0]
    content = matcher.match(Document(title="News", content="Kim Jong Un arrives in Vladivostok."))[0]
    assert title.score > content.score


def test_exclusion_in_the_same_sentence_blocks_the_rule(matcher: Matcher) -> None:
    assert names(matcher, "Kim Jong Un sends congratulatory message to Xi Jinping on his visit") == set()
    assert names(matcher, "Chinese tourists arrive in Pyongyang") == set()


def test_cues_must_share_a_sentence_with_both_sides(matcher: Matcher) -> None:
    summary = "North Korea held a rally. Separately, the Chinese premier arrived in Hanoi."
    assert "delegation_visits" not in names(matcher, "News roundup", summary)


def test_on_defaults_to_the_published_date(matcher: Matcher) -> None:
    doc = Document(title="China and North Korea mark 75th anniversary of diplomatic ties",
                   published=datetime(2024, 10, 6, tzinfo=UTC))
    [match] = [m for m in matcher.match(doc) if m.watchlist == "anniversaries"]
    [ann] = [ev for ev in match.evidence if ev["kind"] == "anniversary"]
    assert ann["event"] == "dprk_prc_ties" and ann["ordinal_ok"] is True


def test_match_many_matches_each_document(matcher: Matcher) -> None:
    docs = [Document(title="Putin lands in Pyongyang"), Document(title="Weather in Oslo")]
    assert [[m.watchlist for m in ms] for ms in matcher.match_many(docs)] == [["delegation_visits"], []]


def test_explain_names_rule_text_and_resolved_event(matcher: Matcher) -> None:
    doc = Document(title="Chinese embassy in Pyongyang marks 98th anniversary of the PLA")
    [match] = [m for m in matcher.match(doc, on=date(2025, 7, 30)) if m.watchlist == "anniversaries"]
    text = explain(match)
    assert text.startswith("anniversaries (version 1) score")
    assert "pla_day" in text and "ordinal 98 matches expected 98" in text
    assert "title[" in text


def test_within_words_window_and_regex_terms(folder: Path, tmp_path: Path) -> None:
    for name in ("actors.yaml", "calendar.yaml"):
        (tmp_path / name).write_text((folder / name).read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "w.yaml").write_text("""\
kind: watchlist
name: near
title: Near
version: "2"
severity: low
threshold: 0.5
rules:
  - id: close
    within: 3
    all:
      - actor: putin
      - phrase: ["bridge"]
  - id: numbered
    prefilter: ["article"]
    all:
      - regex: 'article \\d+'
""", encoding="utf-8")
    result = load_watchlists(tmp_path)
    assert result.errors == []
    m = Matcher.compile(result)
    assert [x.watchlist for x in m.match(Document(title="Putin opens the bridge"))] == ["near"]
    assert m.match(Document(title="Putin said many things about trade, and later, a bridge")) == []
    [hit] = m.match(Document(title="Invoking Article 4 of the pact"))
    [ev] = hit.evidence
    assert ev["kind"] == "regex" and ev["text"] == "Article 4"
