"""Hits → a digest value: one entry per item, grouped by watchlist, with why it matched.

Pure: no I/O, no clock (``now`` is a parameter). An item that matched several
watchlists is one entry naming all its lists, placed in the section of its
best-scoring list, so a subscriber reads each story once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from monitor.domain import StoredHit, StoryRef


@dataclass(frozen=True, slots=True)
class Reason:
    """Why one watchlist matched one item, in words a subscriber can read."""

    watchlist: str
    score: float
    phrases: tuple[str, ...]  # the matched words (aliases, cues), in order of appearance
    anniversary: str | None  # e.g. "75th anniversary of DPRK–China diplomatic relations (matches the year)"
    evidence: tuple[Mapping[str, Any], ...] = ()  # the raw evidence, for machine-readable payloads


@dataclass(frozen=True, slots=True)
class AlsoReported:
    """Another outlet's item of the same story, named with its link under the main entry."""

    item_id: int
    title: str
    link: str | None
    source: str
    published: datetime | None
    hit_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DigestEntry:
    item_id: int
    title: str
    link: str | None
    source: str
    published: datetime | None  # in the subscriber's time zone
    summary: str
    watchlists: tuple[str, ...]
    reasons: tuple[Reason, ...]
    hit_ids: tuple[int, ...]
    also: tuple[AlsoReported, ...] = ()
    follow_up: bool = False  # the story was already sent to this subscription; these are further reports
    follow_up_of: StoryRef | None = None  # the story's report sent earlier, which a follow-up names

    @property
    def all_hit_ids(self) -> tuple[int, ...]:
        return self.hit_ids + tuple(h for a in self.also for h in a.hit_ids)


@dataclass(frozen=True, slots=True)
class DigestSection:
    watchlist: str
    title: str
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True, slots=True)
class ComingUp:
    """A round-number anniversary coming up, from the reference calendar."""

    date: date
    name: str
    years: int


@dataclass(frozen=True, slots=True)
class SourceProblem:
    """A feed that has been failing, shown so subscribers know what they may be missing.

    Named by its name and host, never its URL: feed URLs can carry credentials
    (userinfo, ``?api_key=``) that subscribers must not see.
    """

    name: str
    host: str
    problem: str


@dataclass(frozen=True, slots=True)
class Digest:
    subscription: str
    generated_at: datetime
    timezone: str
    sections: tuple[DigestSection, ...]
    coming_up: tuple[ComingUp, ...] = ()
    sources: tuple[SourceProblem, ...] = ()
    part: int = 1
    parts: int = 1
    follows: tuple[str, ...] = ()  # every list the subscription follows (the footer names them all)
    titles: Mapping[str, str] = field(default_factory=dict)  # watchlist name → title
    language: str = "en-GB"  # spelling of the words monitor writes (never the items' own text)
    notice: str | None = None  # a banner: a test message or an example, not real hits
    preferences_url: str | None = None  # the recipient's own signed preferences link (one-address messages)

    @property
    def entries(self) -> list[DigestEntry]:
        return [e for s in self.sections for e in s.entries]

    @property
    def hit_ids(self) -> list[int]:
        return [h for e in self.entries for h in e.all_hit_ids]

    @property
    def watchlists(self) -> list[str]:
        return [s.watchlist for s in self.sections]


# British → American spellings of words monitor itself writes (watchlist names and titles, labels).
# The items' own text is quoted as the outlet wrote it and never respelt.
_AMERICAN = {
    "defence": "defense", "offence": "offense", "licence": "license", "centre": "center",
    "programme": "program", "organisation": "organization", "organise": "organize",
    "recognise": "recognize", "analyse": "analyze", "favour": "favor", "honour": "honor",
}
_BRITISH = {us: gb for gb, us in _AMERICAN.items()}
_WORD = re.compile(r"[A-Za-z]+")


def spell(text: str, language: str) -> str:
    """``text`` in one spelling: American for ``en-US``, British otherwise (so "defence"/"defense" never mix)."""
    table = _AMERICAN if language.lower() == "en-us" else _BRITISH

    def swap(match: re.Match[str]) -> str:
        word = match.group(0)
        for stem, other in table.items():
            if word.lower().startswith(stem):
                replaced = other + word[len(stem):].lower()
                if word.isupper():
                    return replaced.upper()
                return replaced.capitalize() if word[0].isupper() else replaced
        return word

    return _WORD.sub(swap, text)


def source_name(hit: StoredHit) -> str:
    if hit.feed_name:
        return hit.feed_name
    host = urlsplit(hit.link or hit.feed_url).hostname
    return host or hit.feed_url


def surface(texts: Mapping[str, str], ev: Mapping[str, Any]) -> str:
    """The words of the item that a piece of evidence points at, as the item writes them.

    Evidence records the field and offsets of what matched; a prefix pattern (``ratif*``) matched only
    its stem, so the span is widened to the end of the word ("ratifies"). Scripts written without
    spaces (CJK) keep the matched span. Falls back to the recorded text when the item text is gone.
    """
    text = texts.get(str(ev.get("field") or ""), "")
    start, end = ev.get("start"), ev.get("end")
    recorded = str(ev.get("text") or "").strip()
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
        return recorded
    if recorded and text[start:end].casefold() != recorded.casefold():
        return recorded  # the stored text changed since (pruned, edited): trust the record
    while start > 0 and _in_word(text[start - 1]):
        start -= 1
    while end < len(text) and _in_word(text[end]):
        end += 1
    return text[start:end].strip() or recorded


def _in_word(ch: str) -> bool:
    """Letters and digits of scripts that separate words with spaces (not CJK, where a 'word' runs on)."""
    if not (ch.isalnum() or ch in "'’-"):
        return False
    code = ord(ch)
    return not (0x2E80 <= code <= 0x9FFF or 0xAC00 <= code <= 0xD7AF or 0xF900 <= code <= 0xFAFF
                or 0x3040 <= code <= 0x30FF)


def describe_evidence(watchlist: str, score: float, evidence: Sequence[Mapping[str, Any]],
                      texts: Mapping[str, str] | None = None) -> Reason:
    phrases: list[str] = []
    anniversary: str | None = None
    for ev in evidence:
        if ev.get("kind") == "anniversary":
            name = str(ev.get("event_name") or ev.get("event") or "anniversary")
            ordinal = ev.get("ordinal")
            text = f"{_ordinal(int(ordinal))} anniversary of {name}" if ordinal else f"anniversary of {name}"
            ok = ev.get("ordinal_ok")
            if ok is True:
                text += " (matches the year)"
            elif ok is False:
                expected = ev.get("expected_ordinal")
                text += f" (the year suggests the {_ordinal(int(expected))})" if expected else " (year mismatch)"
            anniversary = text
            continue
        text = surface(texts, ev) if texts else str(ev.get("text") or "").strip()
        if text and text.casefold() not in {p.casefold() for p in phrases}:
            phrases.append(text)
    return Reason(watchlist=watchlist, score=score, phrases=tuple(phrases[:8]), anniversary=anniversary,
                  evidence=tuple(evidence))


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def build_digest(
    subscription: str,
    hits: Sequence[StoredHit],
    *,
    now: datetime,
    zone: tzinfo,
    zone_name: str,
    titles: Mapping[str, str] | None = None,
    order: Sequence[str] = (),
    language: str = "en-GB",
) -> Digest:
    """Group ``hits`` into sections; ``order`` is the subscription's watchlist order (all the lists it follows)."""
    titles = titles or {}
    by_item: dict[int, list[StoredHit]] = defaultdict(list)
    for hit in hits:
        by_item[hit.item_id].append(hit)
    rank = {name: i for i, name in enumerate(order)}
    # Items of one story become one entry: the earliest report leads, the others are "also reported by".
    stories: dict[object, list[list[StoredHit]]] = defaultdict(list)
    for item_id, item_hits in by_item.items():
        item_hits.sort(key=lambda h: (-h.score, rank.get(h.watchlist, len(rank)), h.watchlist))
        key = item_hits[0].story_id if item_hits[0].story_id is not None else ("item", item_id)
        stories[key].append(item_hits)
    sections: dict[str, list[DigestEntry]] = defaultdict(list)
    for members in stories.values():
        members.sort(key=lambda m: (m[0].published_at.timestamp() if m[0].published_at else float("inf"),
                                    m[0].item_id))
        lead, others = members[0], members[1:]
        first = lead[0]
        lists: list[str] = []
        reasons: list[Reason] = []
        for member in members:
            for h in member:
                if h.watchlist not in lists:
                    lists.append(h.watchlist)
                    texts = {"title": h.title, "summary": h.summary, "content": h.content}
                    reasons.append(describe_evidence(h.watchlist, h.score, h.evidence, texts))
        entry = DigestEntry(
            item_id=first.item_id,
            title=first.title or "(untitled)",
            link=first.link,
            source=source_name(first),
            published=first.published_at.astimezone(zone) if first.published_at else None,
            summary=_clip(first.summary, 400),
            watchlists=tuple(lists),
            reasons=tuple(reasons),
            hit_ids=tuple(h.hit_id for h in lead),
            also=tuple(
                AlsoReported(item_id=m[0].item_id, title=m[0].title or "(untitled)", link=m[0].link,
                             source=source_name(m[0]),
                             published=m[0].published_at.astimezone(zone) if m[0].published_at else None,
                             hit_ids=tuple(h.hit_id for h in m))
                for m in others
            ),
            follow_up=any(h.follow_up for m in members for h in m),
            follow_up_of=next((h.follow_up_of for m in members for h in m if h.follow_up_of is not None), None),
        )
        sections[first.watchlist].append(entry)
    ordered = sorted(sections, key=lambda name: (rank.get(name, len(rank)), name))
    return Digest(
        subscription=subscription,
        generated_at=now.astimezone(zone),
        timezone=zone_name,
        follows=tuple(order),
        titles=dict(titles),
        language=language,
        sections=tuple(
            DigestSection(
                watchlist=name,
                title=titles.get(name, name.replace("_", " ").capitalize()),
                entries=tuple(sorted(
                    sections[name],
                    key=lambda e: e.published.timestamp() if e.published else 0.0,
                    reverse=True,
                )),
            )
            for name in ordered
        ),
    )


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def split_digest(digest: Digest, max_items: int) -> list[Digest]:
    """Split into messages of at most ``max_items`` entries; every entry lands in exactly one part.

    The calendar and sources notes go with the first part only.
    """
    entries = [(section, entry) for section in digest.sections for entry in section.entries]
    if len(entries) <= max_items:
        return [digest]
    chunks = [entries[i:i + max_items] for i in range(0, len(entries), max_items)]
    parts = []
    for index, chunk in enumerate(chunks, 1):
        sections: dict[str, tuple[DigestSection, list[DigestEntry]]] = {}
        for section, entry in chunk:
            sections.setdefault(section.watchlist, (section, []))[1].append(entry)
        parts.append(replace(
            digest,
            sections=tuple(replace(sec, entries=tuple(items)) for sec, items in sections.values()),
            coming_up=digest.coming_up if index == 1 else (),
            sources=digest.sources if index == 1 else (),
            part=index,
            parts=len(chunks),
        ))
    return parts


def example_digest(
    subscription: str, follows: Sequence[str], *, now: datetime, zone: tzinfo, zone_name: str,
    titles: Mapping[str, str] | None = None, language: str = "en-GB", test: bool = False,
) -> Digest:
    """A digest of made-up entries showing what the subscription's messages look like.

    ``test``: one entry saying this is a test of the transport (``monitor notify test``); otherwise
    one example per followed list (``digest preview`` when nothing is pending). Marked with a notice
    either way, so nobody mistakes it for an alert.
    """
    titles = titles or {}
    if test:
        notice = f"TEST MESSAGE from monitor for the subscription {subscription}: not an alert, no action needed."
        chosen = list(follows[:1])
    else:
        notice = f"EXAMPLE of the messages of {subscription}: nothing is pending, these entries are made up."
        chosen = list(follows[:3])
    hits = []
    for index, name in enumerate(chosen, 1):
        title = spell("Test message: monitor can reach this subscription" if test
                      else f"Example entry for {titles.get(name, name.replace('_', ' '))}", language)
        hits.append(StoredHit(
            hit_id=0, item_id=-index, watchlist=name, score=1.0,
            evidence=[{"field": "title", "start": 0, "end": len(title.split()[0]), "text": title.split()[0],
                       "kind": "cue"}],
            title=title, link=None,
            summary=("monitor sent this through the subscription's real transport to check that it arrives."
                     if test else "An example of how a hit is shown: title, source, time, summary and why it "
                                  "matched."),
            published_at=now, feed_name="monitor", feed_url="monitor:example", created_at=now,
        ))
    digest = build_digest(subscription, hits, now=now, zone=zone, zone_name=zone_name, titles=titles,
                          order=follows, language=language)
    return replace(digest, notice=notice)
