"""``monitor match`` as other tools drive it: JSON Lines in, JSON Lines out, no database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, Cli, write_config
from tests.helpers.shared import shared_dir

EXPECTED = {
    "000": ({"anniversaries", "defense_treaties"}, set()),
    "001": ({"anniversaries", "defense_treaties"}, set()),
    "002": ({"delegation_visits", "anniversaries"}, {"defense_treaties"}),
    "003": ({"anniversaries", "defense_treaties"}, {"delegation_visits"}),
    "004": ({"delegation_visits", "anniversaries"}, set()),
}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(write_config(tmp_path / "monitor.yaml"))


def run_match(cli: Cli, items: list[dict[str, str]]) -> dict[str, set[str]]:
    lines = "".join(json.dumps(item) + "\n" for item in items)
    out = cli("match", input=lines).stdout
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in results] == [item["id"] for item in items]
    for record in results:
        for m in record["matches"]:
            assert m["score"] > 0 and m["evidence"], m
    return {r["id"]: {m["watchlist"] for m in r["matches"]} for r in results}


def test_seed_reports_match_the_lists_an_analyst_expects(cli: Cli) -> None:
    items = []
    for path in sorted(shared_dir("seeds").glob("*.txt")):
        text = path.read_text(encoding="utf-8").strip()
        title, _, body = text.partition("\n")
        items.append({"id": path.name[:3], "title": title, "summary": body})
    got = run_match(cli, items)
    for key, (must, must_not) in EXPECTED.items():
        assert must <= got[key], (key, got[key])
        assert not (must_not & got[key]), (key, got[key])


def test_near_misses_do_not_match(cli: Cli) -> None:
    items = [
        {"id": "missile", "title": "North Korea fires ballistic missile toward the East Sea",
         "summary": "South Korea's military said Pyongyang launched a short-range missile on Tuesday."},
        {"id": "pakistan", "title": "China and Pakistan mark 74th anniversary of diplomatic ties",
         "summary": "Xi Jinping and the Pakistani president exchanged congratulatory messages."},
        {"id": "iran", "title": "Russia and Iran sign strategic partnership treaty",
         "summary": "Putin and Pezeshkian signed the treaty in Moscow, covering defence cooperation."},
    ]
    assert run_match(cli, items) == {"missile": set(), "pakistan": set(), "iran": set()}


def test_explain_shows_the_evidence(cli: Cli) -> None:
    line = json.dumps({"id": "x", "title": "Shoigu arrives in Pyongyang for talks with Kim Jong Un"})
    out = cli("match", "--explain", input=line + "\n").stdout
    assert "delegation_visits" in out
    assert "Shoigu" in out and "Pyongyang" in out


def test_bad_json_line_is_reported_and_others_still_match(cli: Cli) -> None:
    good = json.dumps({"id": "ok", "title": "Markets rise"})
    result = cli("match", input="{not json\n" + good + "\n", check=False)
    assert result.returncode == 1
    assert "line 1: not JSON" in result.stderr
    assert json.loads(result.stdout) == {"id": "ok", "matches": []}


def test_backtest_reports_hits_and_what_an_edit_changes(tmp_path: Path) -> None:
    import shutil

    shutil.copy(ROOT / "monitor.yaml", tmp_path / "monitor.yaml")
    shutil.copytree(ROOT / "watchlists", tmp_path / "watchlists")
    cli = Cli(tmp_path / "monitor.yaml")
    cli("run", "--once")
    stored = [json.loads(line) for line in cli("hits", "--format", "jsonl").stdout.splitlines()]
    count = sum(1 for h in stored if h["watchlist"] == "delegation_visits")
    same = cli("watchlists", "backtest", "delegation_visits").stdout
    assert f"over 20 stored items: {count} hits" in same
    assert "0 new, 0 no longer" in same and "Sample wire" in same and "sample hits:" in same

    path = tmp_path / "watchlists" / "delegation_visits.yaml"
    text = path.read_text(encoding="utf-8").replace('version: "1"', 'version: "2"')
    path.write_text(text.replace("threshold: 0.75", "threshold: 99"), encoding="utf-8")
    edited = cli("watchlists", "backtest", "delegation_visits").stdout
    assert "version 2" in edited and ": 0 hits" in edited
    assert f"0 new, {count} no longer" in edited and "previous: 1" in edited
    assert len(cli("hits", "--format", "jsonl").stdout.splitlines()) == len(stored)  # nothing stored or sent
