"""Reference calendar: ordinals, resolution against the reference date, upcoming round dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from monitor.domain import Document
from monitor.match import Matcher, load_watchlists
from monitor.match.anniversaries import Calendar, CalendarEvent, find_ordinals, resolve, upcoming
from tests.helpers.engine_watchlists import write_engine_watchlists

SEEDED = Path(__file__).resolve().parents[2] / "watchlists"


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    """The engine on small fixed lists; only the seeded-calendar test reads ``watchlists/``."""
    result = load_watchlists(write_engine_watchlists(tmp_path_factory.mktemp("watchlists")))
    assert result.errors == []
    return Matcher.compile(result)


def event(id_: str, when: str, parties: tuple[str, ...] = ("dprk",)) -> CalendarEvent:
    y, m, d = (int(x) for x in when.split("-"))
    return CalendarEvent(id_, id_, m, d, y, parties, (), "test")


@pytest.mark.parametrize(("text", "value"), [
    ("the 98th anniversary of the pla", 98),
    ("marks 75 years of ties", 75),
    ("the seventy fifth anniversary", 75),
    ("70th founding anniversary", 70),
    ("건군 75주년", 75),
    ("창건 75돐", 75),
    ("建交七十五周年", 75),
    ("建交75周年", 75),
    ("75 летие", 75),
    ("centenary of the party", 100),
])
def test_ordinals_in_four_languages(text: str, value: int) -> None:
    assert [o.value for o in find_ordinals(text)] == [value]


def test_numbers_not_attached_to_an_anniversary_are_not_ordinals() -> None:
    assert find_ordinals("the second visit in six weeks; 20 diplomats; in 1961") == []


def test_resolve_prefers_the_event_whose_ordinal_fits_the_year() -> None:
    ussr = event("ussr_ties", "1948-10-12", ("dprk", "russia"))
    prc = event("prc_ties", "1949-10-06", ("dprk", "china"))
    found = resolve([ussr, prc], [75], date(2024, 10, 6), frozenset())
    assert found is not None and found.event.id == "prc_ties" and found.ordinal_ok is True
    mismatch = resolve([ussr, prc], [30], date(2022, 8, 24), frozenset({"china"}))
    assert mismatch is not None and mismatch.event.id == "prc_ties"
    assert (mismatch.ordinal, mismatch.ordinal_ok) == (30, False)


def test_expected_ordinal_uses_the_nearest_occurrence() -> None:
    ties = event("ties", "1949-10-06")
    assert ties.expected_ordinal(date(2024, 10, 6)) == 75
    # A report on 2 January about a late-December date still means last year's anniversary.
    assert event("dec", "1950-12-30").expected_ordinal(date(2021, 1, 2)) == 70


def test_upcoming_lists_only_round_anniversaries_inside_the_window() -> None:
    cal = Calendar({"a": event("a", "1949-10-06"), "b": event("b", "1948-10-12"), "c": event("c", "1953-07-27")})
    got = upcoming(cal, date(2024, 9, 1), 60)
    assert [(u.event, u.years, u.date) for u in got] == [("a", 75, date(2024, 10, 6))]
    assert upcoming(cal, date(2023, 7, 27), 0)[0].years == 70


def test_upcoming_handles_29_february() -> None:
    cal = Calendar({"leap": CalendarEvent("leap", "leap", 2, 29, 2000, ("dprk",), (), "x")})
    assert [u.date for u in upcoming(cal, date(2025, 1, 1), 365)] == [date(2025, 2, 28)]


def test_seeded_calendar_has_the_bilateral_milestones() -> None:
    cal = load_watchlists(SEEDED).calendar
    for key, when in [("dprk_ussr_ties", (10, 12, 1948)), ("dprk_prc_ties", (10, 6, 1949)),
                      ("korean_war_armistice", (7, 27, 1953)), ("csp_treaty_2024", (6, 19, 2024)),
                      ("cpv_entry", (10, 25, 1950)), ("sino_dprk_treaty_1961", (7, 11, 1961))]:
        e = cal.events[key]
        assert (e.month, e.day, e.year) == when and e.source


def test_hit_names_event_and_checks_the_ordinal(matcher: Matcher) -> None:
    doc = Document(title="North Korea, Russia mark 75 years of diplomatic relations")
    [m] = [x for x in matcher.match(doc, on=date(2023, 10, 12)) if x.watchlist == "anniversaries"]
    [ann] = [e for e in m.evidence if e["kind"] == "anniversary"]
    assert ann["event"] == "dprk_ussr_ties"
    assert (ann["ordinal"], ann["expected_ordinal"], ann["ordinal_ok"]) == (75, 75, True)
    assert ann["event_name"].startswith("Establishment of DPRK–USSR")


def test_victory_day_resolves_by_ordinal_and_date(matcher: Matcher) -> None:
    soviet = Document(title="Kim Jong Un congratulates Putin on 80th anniversary of Victory Day")
    korean = Document(title="Chinese delegation joins 70th anniversary of Victory Day in Pyongyang")
    [a] = [e for m in matcher.match(soviet, on=date(2025, 5, 9)) for e in m.evidence if e["kind"] == "anniversary"]
    [b] = [e for m in matcher.match(korean, on=date(2023, 7, 27)) for e in m.evidence if e["kind"] == "anniversary"]
    assert a["event"] == "victory_day_1945" and b["event"] == "korean_war_armistice"


def test_ordinal_that_disagrees_with_the_year_is_recorded_not_hidden(matcher: Matcher) -> None:
    # A late, misdated or wrongly numbered report still names the commemoration: alert, and say so.
    doc = Document(title="China and North Korea mark 30th anniversary of diplomatic ties")
    [m] = [x for x in matcher.match(doc, on=date(2024, 10, 6)) if x.watchlist == "anniversaries"]
    [ann] = [e for e in m.evidence if e["kind"] == "anniversary"]
    got = (ann["event"], ann["ordinal"], ann["expected_ordinal"], ann["ordinal_ok"])
    assert got == ("dprk_prc_ties", 30, 75, False)


def test_ordinal_check_is_skipped_without_a_date(matcher: Matcher) -> None:
    doc = Document(title="North Korea, Russia mark 75 years of diplomatic relations")
    [m] = [x for x in matcher.match(doc, on=None) if x.watchlist == "anniversaries"]
    [ann] = [e for e in m.evidence if e["kind"] == "anniversary"]
    assert (ann["event"], ann["ordinal"], ann["ordinal_ok"]) == ("dprk_ussr_ties", 75, None)


def test_domestic_commemoration_without_partner_does_not_match(matcher: Matcher) -> None:
    doc = Document(title="Kim Jong Un marks 70th anniversary of Victory Day with military parade")
    assert matcher.match(doc, on=date(2023, 7, 27)) == []
