"""Hostile watchlists and configs: refused fast, with file and line, never a crash or a hang.

Each input here used to hang for minutes, exhaust memory or raise out of the loader. The
guard below is only a safety net so a regression fails instead of hanging the suite.
"""

from __future__ import annotations

import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.domain import Document
from monitor.errors import ConfigError
from monitor.match import Matcher, load_watchlists
from monitor.match.watchlist import MAX_ALIAS_VARIANTS, expand_alias

ROOT = Path(__file__).resolve().parents[2]
SEEDED = ROOT / "watchlists"


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """Fail (rather than hang the suite) if an input is handled in anything but linear time."""

    def _timeout(_signum: int, _frame: object) -> None:
        raise TimeoutError("took far too long: the input is handled in super-linear time")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(60)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def folder_with(tmp_path: Path, name: str, text: str) -> Path:
    for seeded in SEEDED.glob("*.yaml"):
        shutil.copy(seeded, tmp_path / seeded.name)
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


WATCHLIST_HEAD = """\
kind: watchlist
name: hostile
title: Hostile
version: "1"
severity: low
"""


def test_self_referencing_anchor_is_refused_with_its_line(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "self.yaml", WATCHLIST_HEAD + "rules: &loop\n  - id: a\n    all: *loop\n")
    result = load_watchlists(folder)
    [error] = [e for e in result.errors if e.path and e.path.endswith("self.yaml")]
    assert error.line == 8
    assert "alias *loop refers to a value that contains it" in str(error)
    assert {w.name for w in result.watchlists} == {"anniversaries", "defense_treaties", "delegation_visits"}


def test_aliases_that_add_little_are_fine(tmp_path: Path) -> None:
    """``yaml.safe_dump`` writes anchors for a value used twice; such files load as written out."""
    text = WATCHLIST_HEAD + """\
cues:
  visit: &verbs [arrive*, visit*]
  trip: *verbs
rules:
  - id: r
    all: [{actor: kim_jong_un}, trip]
"""
    result = load_watchlists(folder_with(tmp_path, "shared.yaml", text))
    assert result.errors == []
    [hostile] = [w for w in result.watchlists if w.name == "hostile"]
    assert hostile.cues["trip"] == ("arrive*", "visit*")


def alias_fan_out(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def test_alias_fan_out_in_a_watchlist_is_refused(tmp_path: Path) -> None:
    # Each level's "any:" holds ten aliases of the level below: walking it would visit 10**11 terms.
    rules = ["rules:", "  - id: r0", "    all: [&t0 {phrase: [x]}]"]
    for i in range(1, 12):
        rules += [f"  - id: r{i}", f"    all: [&t{i} {{any: [" + ", ".join([f"*t{i - 1}"] * 10) + "]}]"]
    folder = folder_with(tmp_path, "fan.yaml", WATCHLIST_HEAD + "\n".join(rules) + "\n")
    result = load_watchlists(folder)
    errors = [e for e in result.errors if e.path and e.path.endswith("fan.yaml")]
    assert len(errors) == 1 and "aliases expand to more than 100000 values" in str(errors[0])
    assert errors[0].line is not None


def test_alias_bomb_in_monitor_yaml_is_refused_before_anything_expands(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    bomb = alias_fan_out(9)
    assert len(bomb.encode()) < 600
    path.write_text(bomb, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert re.search(rf"{re.escape(str(path))}:\d+: not valid YAML", str(err.value))
    assert "aliases expand to more than 100000 values" in str(err.value)


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "deep.yaml", WATCHLIST_HEAD + "rules: " + "[" * 50_000 + "]" * 50_000 + "\n")
    result = load_watchlists(folder)
    [error] = [e for e in result.errors if e.path and e.path.endswith("deep.yaml")]
    assert "nested more than" in str(error)
    path = tmp_path / "monitor.yaml"
    path.write_text("feeds: " + "[" * 50_000 + "]" * 50_000 + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested more than"):
        load_settings(path)


def test_alternation_bomb_is_refused_at_validate_time_with_the_count(tmp_path: Path) -> None:
    alias = "{a|b}" * 26
    text = WATCHLIST_HEAD + f"""\
cues:
  bomb: ["{alias}"]
rules:
  - id: r
    all:
      - actor: kim_jong_un
      - bomb
"""
    result = load_watchlists(folder_with(tmp_path, "alt.yaml", text))
    [error] = [e for e in result.errors if e.path and e.path.endswith("alt.yaml")]
    assert error.line == 7
    assert f"expands to {2 ** 26} variants, limit {MAX_ALIAS_VARIANTS}" in str(error)
    assert "hostile" not in {w.name for w in result.watchlists}
    with pytest.raises(ValueError, match="variants"):
        expand_alias(alias)


def test_nested_alternatives_expand_to_every_spelling_once() -> None:
    assert expand_alias("{a{b|c}|d}x{1|}") == ["abx1", "abx", "acx1", "acx", "dx1", "dx"]
    assert expand_alias("founding of the {DPRK|Democratic People{'|}s Republic of Korea}") == [
        "founding of the DPRK", "founding of the Democratic People's Republic of Korea",
        "founding of the Democratic Peoples Republic of Korea"]


REGEX_RULE = WATCHLIST_HEAD + """\
rules:
  - id: r
    prefilter: ["said"]
    all:
      - regex: '{pattern}'
"""


def test_catastrophic_user_regex_runs_in_linear_time(tmp_path: Path) -> None:
    result = load_watchlists(folder_with(tmp_path, "re.yaml", REGEX_RULE.format(pattern=r"(\w+\s?)+:")))
    assert result.errors == []
    matcher = Matcher.compile(result)
    hostile = "said " + "a" * 32 + " " + "aaaa " * 20_000 + "!"
    assert matcher.match(Document(title="said " + "a" * 32, content=hostile)) == []
    [hit] = matcher.match(Document(title="Пхеньян said: talks"))
    assert hit.evidence[0]["text"] == "Пхеньян said:"  # \w still means any letter, as in Python's re


@pytest.mark.parametrize("pattern", [r"(a)\1", r"kim(?= jong)", r"(?<!north )korea"])
def test_regex_re2_cannot_run_is_refused_with_file_and_line(tmp_path: Path, pattern: str,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    result = load_watchlists(folder_with(tmp_path, "re.yaml", REGEX_RULE.format(pattern=pattern)))
    [error, *_] = [e for e in result.errors if e.path and e.path.endswith("re.yaml")]
    assert error.line == 10
    assert "does not compile" in str(error) and "RE2 syntax" in str(error)
    assert capfd.readouterr().err == ""  # the reason is in the error, not printed by the regex library


def test_unexpected_failure_in_one_file_is_reported_not_raised(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.match import watchlist

    folder = folder_with(tmp_path, "odd.yaml", WATCHLIST_HEAD + "rules:\n  - id: r\n    all: [{actor: kim_jong_un}]\n")
    real = watchlist._WatchlistReader.read

    def exploding(self: watchlist._WatchlistReader, top: dict, root: object) -> object:  # type: ignore[type-arg]
        if self.r.path.endswith("odd.yaml"):
            raise RuntimeError("surprise")
        return real(self, top, root)  # type: ignore[arg-type]

    monkeypatch.setattr(watchlist._WatchlistReader, "read", exploding)
    result = load_watchlists(folder)
    [error] = [e for e in result.errors if e.path and e.path.endswith("odd.yaml")]
    assert "could not be read (surprise)" in str(error)
    assert len(result.watchlists) == 3
