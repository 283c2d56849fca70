"""The parse path over two feed parsers' own test corpora (``../shared/feeds-corpus``, see its README).

Every file: no exception escapes ``parse_feed`` + normalisation (a :class:`ParseError`, the clear
refusal an operator sees, is an answer, not an escape).

feedparser's files carry an ``Expect:`` expression over feedparser's result. For those about titles,
links, dates and summaries, the expression is evaluated twice: over feedparser's own result (the
installed version), and over monitor's result presented in feedparser's shape. Where feedparser
meets its own expectation, monitor is counted as agreeing when the expression holds over its result
too. Text is compared as a reader sees it: both sides through ``html_to_text`` (monitor keeps HTML
for normalisation and never sanitises it, since it turns it into text). The agreement rate must stay
above :data:`AGREEMENT_FLOOR`.

Disagreements kept on purpose (the test prints every one it finds, by file):

* **entries with nothing to show are dropped**: an entry with a date but no title, link or text
  (feedparser's date tests are written that way) is not an item, so its date cannot be checked;
* **documents cut short are refused**: a document with no entries whose root is never closed
  (``</rss`` at the end) is "broken feed document", where feedparser recovers a channel title;
* **CDF** (Microsoft's 1997 Channel Definition Format) is not a feed format monitor reads;
* **sanitiser output vs text**: feedparser's expectations for hostile HTML are its sanitiser's
  output; monitor extracts the text a browser would show (an unclosed ``<!-- --`` comment hides
  the rest, as in HTML5), which differs in whitespace and in what the sanitiser keeps;
* **invalid bytes in UTF-8**: a document that is UTF-8 but for a few bytes stays UTF-8 with those
  bytes replaced, where feedparser decodes the whole document as windows-1252.

Outside the Expect cases, monitor also differs on purpose in: zone-less dates in a feed's language
zone; links resolved against the channel link before the feed URL; non-http(s) links dropped.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest

from monitor.errors import ParseError
from monitor.ingest.normalize import html_to_text, normalize_entries
from monitor.ingest.parse import ParsedFeed, parse_feed
from tests.helpers.shared import SHARED, shared_dir, shared_files

CORPUS = SHARED / "feeds-corpus"
AGREEMENT_FLOOR = 0.95
FIELDS = frozenset({"title", "link", "summary", "description", "published_parsed", "updated_parsed",
                    "created_parsed", "date_parsed", "feed", "entries", "get"})
BASE = "http://127.0.0.1:8097/"  # where feedparser's own test server serves these files


def _corpus_or_skip() -> Path:
    return shared_dir("feeds-corpus")


def _files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in ("README.md", "_meta.json"))


def _meta() -> dict[str, Any]:
    meta = CORPUS / "miniflux" / "_meta.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}


def _comment_fields(data: bytes) -> tuple[str | None, dict[str, str]]:
    head = data[:4096].decode("utf-8", "replace")
    expect = re.search(r"Expect:\s*(.+?)\s*(?:-->|$)", head, re.MULTILINE)
    headers = {}
    for match in re.finditer(r"Header:\s*([\w-]+):\s*(.+?)\s*$", head, re.MULTILINE):
        headers[match.group(1).lower()] = match.group(2)
    return (expect.group(1).strip() if expect else None), headers


def _run_ours(data: bytes, url: str, content_type: str | None) -> ParsedFeed | None:
    try:
        parsed = parse_feed(data, url=url, content_type=content_type)
    except ParseError:
        return None
    normalize_entries(parsed.entries, feed_url=url, now=_NOW)
    return parsed


_NOW = __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").UTC)


@pytest.mark.parametrize("path", shared_files("feeds-corpus", exclude=frozenset({"README.md", "_meta.json"})),
                         ids=lambda p: str(p.relative_to(CORPUS)))
def test_no_exception_escapes(path: Path) -> None:
    _corpus_or_skip()
    data = path.read_bytes()
    _expect, headers = _comment_fields(data)
    base = (_meta().get(path.name, {}).get("base") or "").strip() or BASE + str(path.relative_to(CORPUS))
    _run_ours(data, base, headers.get("content-type"))


def test_corpus_is_present_and_complete() -> None:
    corpus = _corpus_or_skip()
    assert len(_files()) > 2000, f"{corpus} looks incomplete"


# --------------------------------------------------------------------------- agreement with Expect:


class _Text(str):
    """A string that equals another when a reader sees the same text."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return False
        if str.__eq__(self, other):
            return True
        # monitor's field holds HTML; the expectation holds HTML or, for a text field, plain text.
        mine = html_to_text(str(self))
        return mine == html_to_text(other) or mine == " ".join(other.split())

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__


class _View(dict):  # type: ignore[type-arg]
    """feedparser's result shape: keys as items and as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _ours_as_feedparser(parsed: ParsedFeed, bozo: Any) -> dict[str, Any]:
    entries = []
    for entry in parsed.entries:
        view = _View()
        if entry.title:
            view["title"] = _Text(entry.title)
        if entry.link:
            view["link"] = entry.link
        text = entry.summary or entry.content
        if text:
            view["summary"] = view["description"] = _Text(text)
        if entry.published is not None:
            stamp = entry.published.utctimetuple()
            for key in ("published_parsed", "updated_parsed", "created_parsed", "date_parsed"):
                view[key] = time.struct_time((*stamp[:8], 0))
        entries.append(view)
    feed = _View()
    if parsed.title:
        feed["title"] = _Text(parsed.title)
    if parsed.link:
        feed["link"] = parsed.link
    return {"feed": feed, "entries": entries, "bozo": bozo}


def _about_our_fields(expect: str) -> bool:
    names = set(re.findall(r"\[\s*'(\w+)'\s*\]|\.(\w+)\b|\bget\(\s*'(\w+)'", expect))
    used = {n for group in names for n in group if n}
    if not used & {"title", "link", "summary", "description", "published_parsed", "updated_parsed",
                   "created_parsed", "date_parsed"}:
        return False
    feed_keys = set(re.findall(r"\bfeed\s*\[\s*'(\w+)'\s*\]|\bfeed\.(\w+)\b", expect))
    if {n for group in feed_keys for n in group if n} - {"title", "link"}:
        return False  # monitor keeps only the feed's title and link
    return used <= FIELDS


def _expect_cases() -> Iterator[tuple[Path, str, dict[str, str]]]:
    for path in _files():
        if "feedparser" not in path.parts:
            continue
        expect, headers = _comment_fields(path.read_bytes())
        if expect and _about_our_fields(expect):
            yield path, expect, headers


def _served_type(path: Path) -> str:
    """The Content-Type feedparser's test server sends for a file without a Header: comment."""
    return "application/json" if path.suffix == ".json" else "application/xml"


def _holds(expect: str, namespace: dict[str, Any]) -> bool:
    try:
        return bool(eval(expect, {"__builtins__": {"len": len, "ord": ord, "tuple": tuple}}, namespace))
    except Exception:  # a missing key or entry: the expectation does not hold
        return False


def test_agreement_with_feedparser_expectations_on_titles_links_dates_summaries() -> None:
    _corpus_or_skip()
    counts: Counter[str] = Counter()
    disagreements: list[str] = []
    for path, expect, headers in _expect_cases():
        data = path.read_bytes()
        url = BASE + str(path.relative_to(CORPUS / "feedparser"))
        served = {"content-location": url, "content-type": _served_type(path), **headers}
        theirs = feedparser.parse(data, response_headers=served)
        if not _holds(expect, dict(theirs)):
            counts["feedparser itself disagrees"] += 1
            continue
        counts["cases"] += 1
        ours = _run_ours(data, url, headers.get("content-type"))
        if ours is not None and _holds(expect, _ours_as_feedparser(ours, theirs.get("bozo"))):
            counts["agree"] += 1
        else:
            disagreements.append(f"{path.relative_to(CORPUS)}: {expect}")
    rate = counts["agree"] / max(1, counts["cases"])
    print(f"\nfeeds corpus: {counts['agree']}/{counts['cases']} expectations agree ({rate:.1%}); "
          f"{counts['feedparser itself disagrees']} that feedparser itself does not meet left out")
    for line in disagreements:
        print("  disagrees:", line)
    assert counts["cases"] > 300
    assert rate >= AGREEMENT_FLOOR, "\n".join(disagreements)
