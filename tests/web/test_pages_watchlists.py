"""The watchlists and anniversaries pages against a real server: versions, examples, problems, draft backtests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from monitor.web.pages_watchlists import _NEW_DRAFT
from tests.web.conftest import NOW, Story, Web, form_csrf
from tests.web.pages_support import custom_web, watchlist_folder

HOSTILE_LIST = """\
kind: watchlist
name: hostile
title: "<script>alert('title')</script> list"
version: "7"
severity: low
cues:
  visit: ["visit*"]
rules:
  - id: visit
    all:
      - cue: visit
      - side: dprk
examples:
  match:
    - title: "<script>alert('example')</script> Kim Jong Un visits Moscow"
    - title: A weather report that never matches
"""
BROKEN_LIST = "kind: watchlist\nname: broken\ntitle: Broken\nversion: '1'\nseverity: low\nrules: 3\n"


def test_the_watchlists_page_shows_versions_example_results_and_problems(db_url: str, tmp_path: Path) -> None:
    folder = watchlist_folder(tmp_path, ("hostile.yaml", HOSTILE_LIST), ("broken.yaml", BROKEN_LIST))
    with custom_web(db_url, watchlists_dir=folder) as web:
        client = web.logged_in()
        page = client.get("/watchlists")
        assert page.status_code == 200
        text = page.text
        for name in ("anniversaries", "defense_treaties", "delegation_visits", "hostile"):
            assert f'href="/watchlists/{name}"' in text
        assert "all 25 pass" in text  # delegation_visits' examples, as `monitor watchlists test` runs them
        assert "1 of 2 failing" in text
        assert "A weather report that never matches” should match but did not" in text
        assert "watchlists/broken.yaml:6:" in text  # the problem, with its line, relative to the folder
        assert "<script>alert" not in text and "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in text

        detail = client.get("/watchlists/hostile")
        assert detail.status_code == 200
        assert "<script>" not in detail.text
        assert "rules fingerprint" in detail.text and "1 of 2 pass" in detail.text
        assert 'name: hostile' in detail.text  # the form holds the current file to edit
        assert client.get("/watchlists/broken").status_code == 404
        assert client.get("/watchlists/nothing-here").status_code == 404


def test_a_draft_is_backtested_over_stored_items_without_being_saved(web: Web) -> None:
    web.seed([
        Story(title="Kim Jong Un arrives in Beijing for talks with Xi Jinping", feed="https://wire.example.org/rss"),
        Story(title="Choe Son Hui arrives in Moscow for talks with Lavrov", feed="https://other.example.org/rss"),
        Story(title="Kim Jong Un inspects a tractor factory", feed="https://wire.example.org/rss", watchlist=None),
    ])
    client = web.logged_in()
    csrf = form_csrf(client.get("/watchlists").text)
    before = sorted(p.name for p in web.settings.watchlists_dir.iterdir())
    response = client.post("/watchlists/backtest", data={"csrf": csrf, "draft": _NEW_DRAFT, "since": ""})
    assert response.status_code == 200, response.text
    text = response.text
    assert "my_draft (version 1): 2 hits in 3 stored items" in text
    assert "wire.example.org" in text and "other.example.org" in text  # hits per feed
    assert NOW.date().isoformat() in text  # hits per day
    assert "Sample hits" in text and "rule visit" in text
    assert sorted(p.name for p in web.settings.watchlists_dir.iterdir()) == before  # nothing saved

    # Standing in for a live list: the changes are counted against its stored hits.
    edited = client.post("/watchlists/backtest", data={"csrf": csrf, "draft": _NEW_DRAFT.replace(
        "name: my_draft", "name: delegation_visits"), "replaces": "delegation_visits"})
    assert edited.status_code == 200
    assert "Against the 2 stored hits" in edited.text

    # An old "since" leaves the items out.
    later = (NOW + timedelta(days=2)).date().isoformat()
    empty = client.post("/watchlists/backtest", data={"csrf": csrf, "draft": _NEW_DRAFT, "since": later})
    assert "0 hits in 0 stored items" in empty.text


def test_a_broken_draft_shows_the_validation_error_with_its_line(web: Web) -> None:
    client = web.logged_in()
    csrf = form_csrf(client.get("/watchlists/delegation_visits").text)
    broken = _NEW_DRAFT.replace("      - side: dprk\n", "      - side: nowhere\n")
    response = client.post("/watchlists/backtest", data={"csrf": csrf, "draft": broken,
                                                         "replaces": "delegation_visits"})
    assert response.status_code == 200
    assert "The draft is not valid" in response.text
    assert "draft (delegation_visits.yaml):13:" in response.text and "nowhere" in response.text
    assert broken.replace('"', "&#34;") in response.text  # the draft comes back to be fixed

    huge = client.post("/watchlists/backtest", data={"csrf": csrf, "draft": "#" * 300_000})
    assert huge.status_code in (400, 422)
    bad_day = client.post("/watchlists/backtest", data={"csrf": csrf, "draft": _NEW_DRAFT, "since": "yesterday"})
    assert bad_day.status_code == 400 and "YYYY-MM-DD" in bad_day.text


def test_a_backtest_without_the_sessions_csrf_token_is_refused(web: Web) -> None:
    client = web.logged_in()
    for data in ({}, {"csrf": "forged"}):
        response = client.post("/watchlists/backtest", data={"draft": _NEW_DRAFT, **data})
        assert response.status_code == 403
    assert web.client().post("/watchlists/backtest", data={"draft": _NEW_DRAFT}).status_code == 303  # to log in


def test_the_anniversaries_page_shows_the_next_90_days_by_week_with_ordinals(db_url: str, tmp_path: Path) -> None:
    soon = NOW.date() + timedelta(days=10)
    later = NOW.date() + timedelta(days=120)
    calendar = f"""\
kind: calendar
events:
  test_ties:
    name: "Test <b>ties</b> day"
    date: {soon.year - 75}-{soon.month:02d}-{soon.day:02d}
    parties: [dprk, russia]
    source: "A treaty"
    aliases: ["test ties"]
  far_day:
    name: Far away day
    date: {later.year - 50}-{later.month:02d}-{later.day:02d}
    parties: [dprk, china]
    source: "Elsewhere"
    aliases: ["far away"]
"""
    folder = watchlist_folder(tmp_path, ("calendar.yaml", calendar))
    with custom_web(db_url, watchlists_dir=folder) as web:
        client = web.logged_in()
        page = client.get("/anniversaries")
        assert page.status_code == 200
        text = page.text
        assert "75th anniversary of Test &lt;b&gt;ties&lt;/b&gt; day" in text
        assert "Far away day" not in text  # beyond 90 days
        monday = soon - timedelta(days=soon.weekday())
        assert f"Week of {monday.day} {monday.strftime('%B %Y')}" in text
        assert "<code>test_ties</code>" in text and f'datetime="{soon.isoformat()}"' in text
        assert 'href="/watchlists/anniversaries"' in text


def test_a_capped_backtest_says_where_it_stopped_and_counts_only_what_it_read(web: Web) -> None:
    from monitor.db import read_scope
    from monitor.operations.watchlists import backtest_draft

    web.seed([Story(title=f"Kim Jong Un arrives in Beijing for talks, day {n}") for n in range(5)])
    draft = _NEW_DRAFT.replace("name: my_draft", "name: delegation_visits")
    with read_scope(web.engine) as session:
        capped = backtest_draft(session, web.settings.watchlists_dir, draft, replaces="delegation_visits",
                                since=None, max_items=2)
        timed = backtest_draft(session, web.settings.watchlists_dir, draft, replaces="delegation_visits",
                               since=None, seconds=0.0)
    assert capped.report is not None and capped.report.scanned == 2
    assert capped.stopped == "stopped after 2 items (the cap for one request)"
    # The three stored hits it did not read are not counted as "no longer matching".
    assert len(capped.report.stored) == 2 and capped.report.gone == []
    assert timed.report is not None and timed.report.scanned == 0 and timed.stopped is not None
    assert "time budget" in timed.stopped


def test_ordinals_read_as_english() -> None:
    from monitor.operations.calendar import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 73, 100, 101, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "73rd", "100th", "101st", "111th", "112th"]
