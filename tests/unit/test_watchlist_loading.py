"""Loading and validating watchlist folders: every problem names its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from monitor.errors import WatchlistError
from monitor.match import Matcher, load_watchlists

SEEDED = Path(__file__).resolve().parents[2] / "watchlists"

GOOD = """\
kind: watchlist
name: {name}
title: A test list
version: 3
severity: low
cues:
  visit: ["visit*"]
rules:
  - id: r1
    all:
      - side: dprk
      - side: [china, russia]
      - cue: visit
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("actors.yaml", "calendar.yaml"):
        shutil.copy(SEEDED / name, tmp_path / name)
    return tmp_path


def errors_for(folder: Path, body: str, name: str = "bad.yaml") -> list[WatchlistError]:
    (folder / name).write_text(body, encoding="utf-8")
    result = load_watchlists(folder)
    return [e for e in result.errors if e.path and e.path.endswith(name)]


def test_seeded_folder_loads_three_watchlists_without_errors() -> None:
    result = load_watchlists(SEEDED)
    assert result.errors == []
    assert sorted(w.name for w in result.watchlists) == ["anniversaries", "defense_treaties", "delegation_visits"]
    assert all(isinstance(w.version, str) and w.version for w in result.watchlists)
    assert all(w.title and w.severity and w.description and w.examples for w in result.watchlists)
    assert "dprk_prc_ties" in result.calendar


def test_version_is_a_string_even_when_written_as_a_number(folder: Path) -> None:
    (folder / "ok.yaml").write_text(GOOD.format(name="ok"), encoding="utf-8")
    result = load_watchlists(folder)
    assert result.errors == []
    assert result.watchlists[0].version == "3"


def test_unknown_key_is_reported_with_its_line_and_the_file_is_skipped(folder: Path) -> None:
    (folder / "ok.yaml").write_text(GOOD.format(name="ok"), encoding="utf-8")
    body = GOOD.format(name="bad").replace("severity: low\n", "severity: low\nthreshhold: 2\n")
    (folder / "bad.yaml").write_text(body, encoding="utf-8")
    result = load_watchlists(folder)
    assert [w.name for w in result.watchlists] == ["ok"]
    [error] = result.errors
    assert error.path is not None and error.path.endswith("bad.yaml")
    assert error.line == 6
    assert "threshhold" in str(error) and "bad.yaml:6:" in str(error)


def test_regex_that_does_not_compile_is_one_error_with_its_line(folder: Path) -> None:
    body = GOOD.format(name="rx").replace("      - cue: visit\n", "      - cue: visit\n      - regex: '(unclosed'\n")
    [error] = errors_for(folder, body)
    assert error.line == 14
    assert "regex does not compile" in str(error)


def test_unknown_actor_side_and_calendar_event_each_name_their_line(folder: Path) -> None:
    body = GOOD.format(name="refs").replace(
        "      - side: dprk\n", "      - actor: kim_jong_oon\n      - side: narnia\n      - event: no_such_day\n")
    errors = errors_for(folder, body)
    assert [e.line for e in errors] == [11, 12, 13]
    for error, name in zip(errors, ("kim_jong_oon", "narnia", "no_such_day"), strict=True):
        assert name in error.reason


def test_invalid_yaml_reports_the_line_of_the_problem(folder: Path) -> None:
    [error] = errors_for(folder, "kind: watchlist\nname: x\nrules: [\n  - {a: 1\n")
    assert error.line is not None and error.line >= 4
    assert "invalid YAML" in str(error)


def test_missing_kind_and_missing_required_keys_are_errors(folder: Path) -> None:
    [error] = errors_for(folder, "name: x\n")
    assert "kind" in str(error)
    errors = errors_for(folder, "kind: watchlist\nname: x\n")
    assert {e.reason for e in errors} >= {"watchlist: missing required key 'rules'",
                                          "watchlist: missing required key 'version'"}


def test_a_rule_made_only_of_regexes_needs_a_prefilter(folder: Path) -> None:
    body = GOOD.format(name="rxonly").replace(
        "    all:\n      - side: dprk\n      - side: [china, russia]\n      - cue: visit\n",
        "    all:\n      - regex: 'treaty of \\\\w+'\n")
    [error] = errors_for(folder, body)
    assert "prefilter" in str(error) and error.line == 9


def test_bad_alias_in_actors_file_is_reported_and_others_still_load(folder: Path) -> None:
    (folder / "extra_actors.yaml").write_text(
        "kind: actors\nactors:\n  bad:\n    side: dprk\n    type: person\n    aliases: ['Kim * Un']\n",
        encoding="utf-8")
    (folder / "ok.yaml").write_text(GOOD.format(name="ok"), encoding="utf-8")
    result = load_watchlists(folder)
    [error] = result.errors
    assert error.line == 6 and "only allowed once, at the end" in str(error)
    assert [w.name for w in result.watchlists] == ["ok"]


def test_duplicate_watchlist_names_keep_the_first(folder: Path) -> None:
    (folder / "a.yaml").write_text(GOOD.format(name="same"), encoding="utf-8")
    (folder / "b.yaml").write_text(GOOD.format(name="same"), encoding="utf-8")
    result = load_watchlists(folder)
    assert [w.path.endswith("a.yaml") for w in result.watchlists] == [True]
    [error] = result.errors
    assert error.path is not None and error.path.endswith("b.yaml") and error.line == 2


def test_other_files_in_the_folder_are_ignored(folder: Path) -> None:
    (folder / "sample_feed.xml").write_text("<rss></rss>", encoding="utf-8")
    (folder / "README.txt").write_text("notes", encoding="utf-8")
    assert load_watchlists(folder).errors == []


def test_unreadable_folder_is_an_error_not_an_exception(tmp_path: Path) -> None:
    result = load_watchlists(tmp_path / "missing")
    [error] = result.errors
    assert error.path == str(tmp_path / "missing")
    assert Matcher.compile(result).watchlist_names == []


def test_embedded_examples_of_the_seeded_watchlists_all_pass() -> None:
    from monitor.match import run_examples

    result = load_watchlists(SEEDED)
    assert run_examples(result, Matcher.compile(result)) == []


def test_failing_example_names_watchlist_file_and_line(folder: Path) -> None:
    body = GOOD.format(name="ex") + "examples:\n  match:\n    - Kim Jong Un plants a tree\n"
    (folder / "ex.yaml").write_text(body, encoding="utf-8")
    from monitor.match import run_examples

    result = load_watchlists(folder)
    [failure] = run_examples(result, Matcher.compile(result))
    assert "ex.yaml:16" in failure and "'ex'" in failure and "should match" in failure


def test_json_schema_documents_exactly_the_keys_the_loader_accepts() -> None:
    import json

    from monitor.match import watchlist

    schema = json.loads((SEEDED.parent / "docs" / "watchlist.schema.json").read_text(encoding="utf-8"))
    defs = schema["$defs"]
    assert set(defs["watchlist"]["properties"]) == set(watchlist._WATCHLIST_KEYS)
    assert set(defs["rule"]["properties"]) == set(watchlist._RULE_KEYS)
    assert set(defs["term"]["properties"]) == set(watchlist._TERM_KEYS)
