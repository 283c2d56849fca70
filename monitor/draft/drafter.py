"""Drafting a watchlist from a folder of documents: actors, event cues, dates, rules, a report.

Why: the seeded watchlists were written by hand from a handful of reports. An analyst who
follows another relationship has a folder of their own; the drafter reads it the way the
hand-writer did — who is named (reusing ``actors.yaml`` and finding new people, bodies and
countries), which kinds of event bring the parties together in one sentence, which dates
and anniversaries are mentioned — and writes a *draft* in the watchlist language, with the
documents' own sentences as examples and a report of what each rule catches and misses.
It never writes into the live watchlist folder: activating a list stays a human decision.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from monitor.domain import Document
from monitor.draft.documents import Source
from monitor.draft.lexicon import BODY_WORDS, COUNTRIES, CUE_FAMILIES, PERSON_TITLES, STOPWORDS
from monitor.match import Actor, LoadResult, Matcher, load_watchlists, run_examples
from monitor.match.watchlist import Rule, Term, Watchlist

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_SENTENCE = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*\s+|\n+|(?<=[。！？])")
_TOKEN = re.compile(r"[^\W\d_][\w'’.-]*[\w]|[^\W\d_]|\d+|[^\w\s]")
_CONNECTORS = {"of", "the", "for", "and", "de", "al", "bin", "ibn", "on"}
_TITLE_WORDS = {w for t in PERSON_TITLES for w in t.split()} | {
    "defense", "defence", "foreign", "vice", "first", "deputy", "state", "supreme", "senior", "former", "acting",
    "affairs", "national", "security", "trade", "economy", "economic", "interior", "top", "chief", "general",
}
_GENERIC = _TITLE_WORDS | set(BODY_WORDS) | {"the", "of", "and", "for", "on"}
_NEVER_NAMES = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
                "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
                "december", "advertisement", "meanwhile", "however", "notably", "additionally", "earlier", "later",
                "during", "according", "despite", "while", "after", "before", "since", "although", "analysts",
                "officials", "both", "this", "that", "these", "those", "there", "their", "they", "his", "her", "its",
                "in", "on", "at", "the", "a", "an", "it", "he", "she", "we", "as", "but", "and", "or", "for", "if",
                "also", "with", "by", "from", "to", "under", "over", "amid", "last", "next"}
_MONTHS = {m: i + 1 for i, m in enumerate(("january", "february", "march", "april", "may", "june", "july", "august",
                                           "september", "october", "november", "december"))}
_MONTH_RE = "(" + "|".join(_MONTHS) + r")"
_DATE_PATTERNS = (
    # July 30, 2025 / July 30
    re.compile(_MONTH_RE + r"\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?\b", re.I),
    # 30 July 2025
    re.compile(r"\b(\d{1,2})\s+" + _MONTH_RE + r"(?:\s+(\d{4}))?\b", re.I),
    # 2025-07-30
    re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b"),
    # 2025년 7월 30일 / 2025年7月30日
    re.compile(r"(?:(\d{4})\s*[년年]\s*)?(\d{1,2})\s*[월月]\s*(\d{1,2})\s*[일日]"),
)
_RU_MONTHS = {"января": 1, "февраля": 2, "марта": 3, "апреля": 4, "мая": 5, "июня": 6, "июля": 7, "августа": 8,
              "сентября": 9, "октября": 10, "ноября": 11, "декабря": 12}
_RU_DATE = re.compile(r"\b(\d{1,2})\s+(" + "|".join(_RU_MONTHS) + r")(?:\s+(\d{4}))?", re.I)
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
                  "eighth": 8, "ninth": 9, "tenth": 10, "fifteenth": 15, "twentieth": 20, "twenty-fifth": 25,
                  "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70,
                  "seventy-fifth": 75, "eightieth": 80, "ninetieth": 90, "hundredth": 100}
_WHAT = r"((?:(?!\b(?:between|with|on|in|that|which|and|when|as|at|by)\b)[^,.;:()\"“”])+)"
_ANNIVERSARY = re.compile(
    r"(\d{1,3}|" + "|".join(sorted(_ORDINAL_WORDS, key=len, reverse=True)) + r")(?:st|nd|rd|th)?\s+"
    r"anniversary\s+of\s+(?:the\s+|their\s+|its\s+|his\s+|her\s+)?" + _WHAT
    + r"|(\d{1,3})\s+years\s+of\s+" + _WHAT,
    re.I)


# ---------------------------------------------------------------------------------------------
# Values


@dataclass
class Mention:
    """A name found in the documents that ``actors.yaml`` does not know."""

    name: str
    type: str  # person | body | country
    aliases: set[str] = field(default_factory=set)
    side_votes: Counter[str] = field(default_factory=Counter)
    docs: set[str] = field(default_factory=set)
    count: int = 0

    @property
    def side(self) -> str | None:
        return self.side_votes.most_common(1)[0][0] if self.side_votes else None


@dataclass
class DraftEvent:
    id: str
    name: str
    date: str  # YYYY-MM-DD or MM-DD
    parties: list[str]
    aliases: list[str]
    source: str
    new: bool  # False when it is an existing calendar event the documents mention


@dataclass
class Sentence:
    doc: str
    text: str
    actors: set[str] = field(default_factory=set)
    sides: set[str] = field(default_factory=set)
    families: dict[str, set[str]] = field(default_factory=dict)  # family -> texts seen
    events: set[str] = field(default_factory=set)


@dataclass
class Draft:
    """Everything the drafter decided, and the files it writes."""

    name: str
    parties: list[str]
    side_docs: dict[str, int]
    families: dict[str, Counter[str]]  # kept family -> phrase texts seen (counts)
    mined: list[str]
    known_actors: dict[str, set[str]]  # actor id -> docs
    new_actors: dict[str, Mention]
    new_sides: list[str]
    events: list[DraftEvent]
    dates: list[tuple[str, str, str]]  # (doc, date text, sentence)
    undated: list[tuple[str, str]]  # (doc, anniversary phrase) with no date found
    watchlist_yaml: str = ""
    actors_yaml: str = ""
    calendar_yaml: str = ""
    caught: dict[str, list[str]] = field(default_factory=dict)  # doc -> rules that hold
    errors: list[str] = field(default_factory=list)
    example_failures: list[str] = field(default_factory=list)
    report: str = ""
    files: list[Path] = field(default_factory=list)

    @property
    def missed(self) -> list[str]:
        return [doc for doc, rules in self.caught.items() if not rules]


class DraftError(Exception):
    """The draft cannot be made (no documents, a bad name); the message says why."""


# ---------------------------------------------------------------------------------------------
# Probing the documents with the existing actor file


def _country_actors(base: LoadResult) -> dict[str, Actor]:
    """Countries of the built-in list that ``actors.yaml`` has no actor of their own for."""
    out = {}
    for cid, name, aliases in COUNTRIES:
        existing = base.actors.get(cid)
        if existing is not None and existing.type == "country":
            continue
        out[cid] = Actor(cid, name, (cid,), "country", aliases)
    return out


def _probe(base: LoadResult, countries: dict[str, Actor]) -> tuple[Matcher, LoadResult]:
    """A matcher whose rules each report one thing: an actor, a cue family, a calendar event."""
    actors = {**base.actors, **countries}
    rules: list[Rule] = [Rule(f"actor__{aid}", 0, (Term("actor", 0, actors=(aid,)),), within="document")
                         for aid in actors]
    for family, phrases in CUE_FAMILIES.items():
        rules.append(Rule(f"family__{family}", 0, (Term("phrase", 0, values=phrases),), within="document"))
    for eid in base.calendar.events:
        rules.append(Rule(f"event__{eid}", 0, (Term("event", 0, values=(eid,)),), within="document"))
    probe = Watchlist("probe", "probe", "0", "info", "", 0.1, {"title": 1.0, "summary": 1.0, "content": 1.0},
                      {}, tuple(rules), (), (), "<probe>", 0)
    result = LoadResult([probe], [], actors, tuple(dict.fromkeys((*base.sides, *countries))), base.calendar)
    return Matcher.compile(result), result


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and len(s.strip()) > 2]


def _read_sentence(matcher: Matcher, actors: dict[str, Actor], doc: str, text: str) -> Sentence:
    s = Sentence(doc, text)
    for m in matcher.match(Document(title=text)):
        for ev in m.evidence:
            kind, _, key = str(ev["rule"]).partition("__")
            if kind == "actor":
                s.actors.add(key)
                s.sides.update(actors[key].sides)
            elif kind == "family":
                s.families.setdefault(key, set()).add(str(ev["text"]).lower())
            elif kind == "event":
                s.events.add(key)
    return s


# ---------------------------------------------------------------------------------------------
# New names


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", re.sub(r"['’]", "", name.lower())).strip("_")
    return slug if slug and slug[0].isalpha() else ""


def _capital(token: str) -> bool:
    return token[:1].isupper() and token[:1].isalpha()


def _runs(sentence: str) -> Iterable[tuple[list[str], bool]]:
    """Runs of capitalised words ("Islamic Revolutionary Guard Corps"); whether the run starts the sentence."""
    tokens = [m.group() for m in _TOKEN.finditer(sentence)]
    run: list[str] = []
    start = 0
    for i, tok in enumerate([*tokens, "."]):
        if _capital(tok):
            if not run:
                start = i
            run.append(tok)
        elif run and tok.lower() in _CONNECTORS and i + 1 < len(tokens) and _capital(tokens[i + 1]):
            run.append(tok)
        else:
            if run:
                yield run, start == 0
            run = []


def _possessive(tok: str) -> str:
    return re.sub(r"['’]s$", "", tok)


def _new_names(s: Sentence, probe: Matcher, actors: dict[str, Actor], found: dict[str, Mention]) -> None:
    """Find people and bodies named in the sentence that the actor file does not know."""
    for run, at_start in _runs(s.text):
        sides: list[str] = []
        titled = False
        # Strip leading titles and known-country words: "Russian Defense Minister Andrei Belousov".
        while run:
            word = _possessive(run[0])
            known = _known(probe, actors, word)
            if word.lower() in _TITLE_WORDS or word.lower().rstrip(".") in _TITLE_WORDS:
                titled = titled or word.lower() not in ("defense", "defence", "foreign", "state", "national")
                run = run[1:]
            elif known is not None and actors[known].type in ("country", "capital"):
                sides.extend(actors[known].sides)
                run = run[1:]
            else:
                break
        while run and run[-1].lower() in _CONNECTORS:
            run = run[:-1]
        if not run:
            continue
        run = [*run[:-1], _possessive(run[-1])]
        name = " ".join(run)
        lower = [t.lower() for t in run]
        if lower[0] in _NEVER_NAMES or (at_start and len(run) == 1 and not titled):
            continue
        if _known(probe, actors, name) is not None \
                or _known_type(probe, actors, run[-1]) in ("person", "body"):
            continue
        if any(w in BODY_WORDS for w in lower):
            kind = "body"
            if all(w in _GENERIC for w in lower):
                # "Defense Ministry" alone is every country's: keep it with its country's name.
                if not sides:
                    continue
                with_country = _with_country(s.text, name)
                if with_country is None:
                    continue
                name = with_country
        elif titled and 2 <= len(run) <= 4 and not all(w in _GENERIC for w in lower) \
                and all(_capital(t) for t in run):
            kind = "person"
        else:
            continue
        mention = found.setdefault(name.lower(), Mention(name, kind))
        mention.aliases.add(name)
        mention.docs.add(s.doc)
        mention.count += 1
        for side in sides or _lone_side(s):
            mention.side_votes[side] += 1
    for full, short in re.findall(r"((?:[A-Z][\w'’-]+\s+){1,6}[A-Z][\w'’-]+)\s+\(([A-Z][A-Z0-9-]{1,9})\)", s.text):
        key = full.lower()
        for mention in found.values():
            if mention.name.lower().endswith(key) or key.endswith(mention.name.lower()):
                mention.aliases.add(short)


def _with_country(text: str, name: str) -> str | None:
    """'Russia's Defense Ministry' for a generic 'Defense Ministry' preceded by its country in the text."""
    m = re.search(r"([A-Z][\w-]+(?:['’]s)?)\s+" + re.escape(name), text)
    return f"{m.group(1)} {name}" if m else None


def _known(probe: Matcher, actors: dict[str, Actor], text: str) -> str | None:
    """The known actor that covers most of ``text``, if any covers at least half of it."""
    best: tuple[int, bool, str] | None = None
    for m in probe.match(Document(title=text)):
        for ev in m.evidence:
            kind, _, key = str(ev["rule"]).partition("__")
            if kind == "actor" and actors[key].type != "topic":
                span = int(ev["end"]) - int(ev["start"])
                # A country of its own beats the catch-all "other countries" entry for the same word.
                rank = (span, "third" not in actors[key].sides, key)
                if span * 2 >= len(text) and (best is None or rank > best):
                    best = rank
    return best[2] if best else None


def _known_type(probe: Matcher, actors: dict[str, Actor], text: str) -> str | None:
    """The type of the known actor ``text`` names ("Putin" -> person), so "Vladimir Putin" is not new."""
    known = _known(probe, actors, text)
    return actors[known].type if known is not None else None


def _lone_side(s: Sentence) -> list[str]:
    sides = [side for side in s.sides if side not in ("media", "third")]
    return sides if len(sides) == 1 else []


# ---------------------------------------------------------------------------------------------
# Dates and anniversaries


def _dates(text: str) -> list[tuple[str, int | None, int, int]]:
    """(matched text, year or None, month, day) for every date written in ``text``."""
    out: list[tuple[str, int | None, int, int]] = []
    for i, pattern in enumerate(_DATE_PATTERNS):
        for m in pattern.finditer(text):
            g = m.groups()
            if i == 0:
                month, day, year = _MONTHS[g[0].lower()], int(g[1]), g[2]
            elif i == 1:
                day, month, year = int(g[0]), _MONTHS[g[1].lower()], g[2]
            else:
                year, month, day = g[0], int(g[1]), int(g[2])
            if 1 <= month <= 12 and 1 <= day <= 31:
                out.append((m.group(), int(year) if year else None, month, day))
    for m in _RU_DATE.finditer(text):
        out.append((m.group(), int(m.group(3)) if m.group(3) else None, _RU_MONTHS[m.group(2).lower()],
                    int(m.group(1))))
    return out


def _anniversaries(text: str) -> list[tuple[int, str]]:
    """(ordinal, what) for "the 75th anniversary of diplomatic relations", "75 years of ties"."""
    out = []
    for m in _ANNIVERSARY.finditer(text):
        ordinal = (m.group(1) or m.group(3) or "").lower()
        what = " ".join((m.group(2) or m.group(4) or "").split()[:6]).strip(" '’")
        what = re.sub(r"^(?:\d{4}\s+)", "", what)
        number = _ORDINAL_WORDS.get(ordinal) or (int(ordinal) if ordinal.isdigit() else 0)
        if what and number:
            out.append((number, what))
    return out


def _head(phrase: str) -> list[str]:
    words = [w for w in re.findall(r"[\w'’]+", phrase.lower()) if w not in STOPWORDS and not w.isdigit()]
    return words[-2:] if len(words) >= 2 else words


def _events(sentences: list[Sentence], sources: dict[str, Source], base: LoadResult, parties: list[str],
            name: str) -> tuple[list[DraftEvent], list[tuple[str, str, str]], list[tuple[str, str]]]:
    """Calendar entries: known events the documents mention, and new ones whose date they give."""
    events: dict[str, DraftEvent] = {}
    dates: list[tuple[str, str, str]] = []
    undated: list[tuple[str, str]] = []
    by_doc: dict[str, list[Sentence]] = defaultdict(list)
    for s in sentences:
        by_doc[s.doc].append(s)
        for text, _, _, _ in _dates(s.text):
            dates.append((s.doc, text, s.text))
    for doc, doc_sentences in by_doc.items():
        for s in doc_sentences:
            for ordinal, what in _anniversaries(s.text):
                known = [e for e in s.events if set(base.calendar.events[e].parties) <= set(parties)]
                if known:
                    for eid in known:
                        ev = base.calendar.events[eid]
                        events.setdefault(eid, DraftEvent(eid, ev.name, "", list(ev.parties), [], ev.source, False))
                    continue
                found = _date_for(what, s, doc_sentences, ordinal, sources[doc].published)
                if found is None:
                    undated.append((doc, f"{ordinal}th anniversary of {what}"))
                    continue
                sides = [p for p in parties if p in s.sides] or list(parties)
                if len(sides) < 2:
                    sides = list(parties)
                same = next((e for e in events.values() if e.new and e.date == found and e.parties == sides), None)
                if same is not None:
                    # "the strategic partnership treaty" and "the comprehensive ... treaty": one event.
                    if what not in same.aliases:
                        same.aliases.append(what)
                    continue
                eid = _slug(f"{name} {what}")[:60] or f"{name}_event_{len(events) + 1}"
                events.setdefault(eid, DraftEvent(eid, what[:1].upper() + what[1:], found, sides, [what],
                                                  f"{doc}: {s.text[:160]}", True))
    return list(events.values()), dates, undated


def _date_for(what: str, s: Sentence, doc_sentences: list[Sentence], ordinal: int,
              published: date | None) -> str | None:
    """The date of the event named ``what``: a full date beside it in the documents, else the year
    from the ordinal and the document's date with a day written in the same sentence."""
    head = _head(what)
    candidates = [s] + [o for o in doc_sentences if o is not s and head and all(w in o.text.lower() for w in head)]
    for c in candidates:
        for _, year, month, day in _dates(c.text):
            if year is not None:
                return f"{year:04d}-{month:02d}-{day:02d}"
    if published is not None:
        for _, year, month, day in _dates(s.text):
            if year is None:
                return f"{published.year - ordinal:04d}-{month:02d}-{day:02d}"
    return None


# ---------------------------------------------------------------------------------------------
# The draft


def _parties(sentences: list[Sentence], docs: list[str], chosen: list[str] | None,
             sides: tuple[str, ...]) -> tuple[list[str], dict[str, int]]:
    side_docs: dict[str, set[str]] = defaultdict(set)
    mentions: Counter[str] = Counter()
    for s in sentences:
        for side in s.sides:
            side_docs[side].add(s.doc)
            mentions[side] += 1
    counts = {side: len(d) for side, d in side_docs.items()}
    if chosen:
        unknown = [c for c in chosen if c not in sides]
        if unknown:
            raise DraftError(f"--sides: unknown side {', '.join(unknown)} (known: {', '.join(sides)})")
        return chosen, counts
    ranked = sorted((s for s in counts if s not in ("media", "third")),
                    key=lambda s: (-counts[s], -mentions[s], s))
    # A party is named in at least two thirds of the documents; a country named in passing is not.
    need = math.ceil(len(docs) * 2 / 3)
    parties = [s for s in ranked if counts[s] >= need][:3]
    if len(parties) < 2:
        parties = ranked[:2]
    if len(parties) < 2:
        raise DraftError("the documents name fewer than two parties (countries or their officials); "
                         "name them with --sides")
    return parties, counts


def _mined(pairs: list[Sentence], docs: int, stop: set[str]) -> list[str]:
    """Lower-case words the documents use where the parties meet, in at least two fifths of them."""
    seen: dict[str, set[str]] = defaultdict(set)
    for s in pairs:
        for word in re.findall(r"\b[a-zа-яё][a-zа-яё'-]{3,}\b", s.text):
            if word not in STOPWORDS and word not in stop:
                seen[word].add(s.doc)
    need = max(2, math.ceil(docs * 0.4))
    ranked = sorted((w for w, d in seen.items() if len(d) >= need), key=lambda w: (-len(seen[w]), w))
    return ranked[:15]


def make_draft(sources: list[Source], base_dir: Path, name: str, *, sides: list[str] | None = None) -> Draft:
    """Decide the draft: parties, actors, cues, events, rules; then check it catches its documents.

    ``base_dir`` is the watchlist folder whose actor and calendar files the draft builds on.
    """
    base = load_watchlists(base_dir)
    if base.errors:
        raise DraftError(f"the watchlist folder {base_dir} has problems; run 'monitor watchlists validate' first")
    if not _ID.match(name):
        raise DraftError(f"--name {name!r}: use lower_snake_case (letters, digits, underscores)")
    if any(w.name == name for w in base.watchlists):
        raise DraftError(f"--name {name!r}: a watchlist of that name already exists; choose another name")
    if not sources:
        raise DraftError("no readable documents (.txt, .md, .html, .pdf) in the folder")
    countries = _country_actors(base)
    probe, probed = _probe(base, countries)
    actors = probed.actors
    sentences: list[Sentence] = []
    mentions: dict[str, Mention] = {}
    for src in sources:
        for text in _sentences(src.text):
            s = _read_sentence(probe, actors, src.name, text)
            sentences.append(s)
            _new_names(s, probe, actors, mentions)
    docs = [src.name for src in sources]
    parties, side_docs = _parties(sentences, docs, sides, probed.sides)
    # New people and bodies take the side most often written beside them.
    for m in mentions.values():
        for s in sentences:
            if m.name in s.text and m.docs and not m.side_votes:
                for side in _lone_side(s):
                    m.side_votes[side] += 1
    focus, partners = parties[0], parties[1:]
    pairs = [s for s in sentences if focus in s.sides and s.sides & set(partners)]
    families: dict[str, Counter[str]] = {}
    for s in pairs:
        for family, texts in s.families.items():
            families.setdefault(family, Counter()).update(texts)
    family_words = {w for phrases in CUE_FAMILIES.values() for p in phrases for w in re.findall(r"[a-z]+", p)}
    mined = _mined(pairs, len(docs), family_words)
    known: dict[str, set[str]] = defaultdict(set)
    for s in sentences:
        for aid in s.actors:
            if aid in base.actors:
                known[aid].add(s.doc)
    used_countries = {aid for s in sentences for aid in s.actors if aid in countries}
    new_actors: dict[str, Mention] = {}
    for cid in sorted(used_countries):
        c = countries[cid]
        new_actors[cid] = Mention(c.name, "country", set(c.aliases), Counter({cid: 1}),
                                  {s.doc for s in sentences if cid in s.actors})
    taken = set(base.actors) | set(new_actors)
    for m in sorted(mentions.values(), key=lambda m: m.name):
        if m.type == "body" and m.count < 1:
            continue
        aid = _slug(m.name) or f"{name}_actor"
        base_id, n = aid, 2
        while aid in taken:
            aid, n = f"{base_id}_{n}", n + 1
        taken.add(aid)
        new_actors[aid] = m
    new_sides = [cid for cid in sorted(used_countries) if cid not in base.sides]
    events, dates, undated = _events(sentences, {s.name: s for s in sources}, base, parties, name)
    draft = Draft(name, parties, side_docs, families, mined, dict(known), new_actors, new_sides, events, dates,
                  undated)
    _build(draft, sources, sentences, base, base_dir)
    return draft


# ---------------------------------------------------------------------------------------------
# Writing YAML (by hand, so the draft carries comments an analyst can follow)


def _q(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _qlist(values: Iterable[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _side_terms(parties: list[str], scope: str = "") -> list[str]:
    focus, partners = parties[0], parties[1:]
    partner = partners[0] if len(partners) == 1 else _qlist(partners)
    extra = ", scope: document" if scope else ""
    return [f"      - {{side: {focus}{extra}}}", f"      - {{side: {partner}{extra}}}"]


def _rules_yaml(draft: Draft, with_vocabulary: bool, with_paragraph: bool) -> list[str]:
    lines = ["rules:"]
    for family in draft.families:
        lines += [f"  - id: {family}", "    within: sentence", "    all:", *_side_terms(draft.parties),
                  f"      - cue: {family}"]
    if with_vocabulary and draft.mined:
        lines += ["  - id: document_vocabulary",
                  "    # Words these documents use where the parties meet; broad: check the report before keeping.",
                  "    within: sentence", "    all:", *_side_terms(draft.parties), "      - cue: document_vocabulary"]
    if with_paragraph and draft.families:
        lines += ["  - id: parties_in_paragraph",
                  "    # For documents that name the parties in neighbouring sentences only.",
                  "    within: paragraph", "    all:", *_side_terms(draft.parties),
                  "      - cue: " + _qlist(draft.families)]
    event_ids = [e.id for e in draft.events]
    if event_ids and "commemoration" in CUE_FAMILIES:
        lines += ["  - id: anniversary", "    anniversary: true", "    within: sentence", "    all:",
                  f"      - event: {_qlist(event_ids)}", "      - cue: commemoration_words",
                  *_side_terms(draft.parties, scope="document")]
    return lines


def _watchlist_yaml(draft: Draft, examples: list[tuple[str, str | None]], negatives: list[str],
                    *, with_vocabulary: bool, with_paragraph: bool) -> str:
    parties = " and ".join(draft.parties)
    lines = [
        f"# DRAFT written by `monitor watchlists draft` from {len(draft.caught) or 'the'} documents.",
        "# Not active: review it and its report, then copy it (with any draft actors and calendar",
        "# files beside it) into the watchlist folder and run `monitor watchlists validate`.",
        "kind: watchlist",
        f"name: {draft.name}",
        f"title: {_q('DRAFT: ' + draft.name.replace('_', ' ') + ' (' + parties + ')')}",
        'version: "0.1-draft"',
        "severity: medium",
        "description: " + _q(f"Drafted from documents: {parties} named in one sentence with an event cue "
                             f"({', '.join(draft.families) or 'none found'}). Review the scope before use."),
        "threshold: 0.75",
        "fields: {title: 1.0, summary: 0.9, content: 0.8}",
        "",
        "cues:",
    ]
    for family, seen in draft.families.items():
        lines.append(f"  # seen in the documents: {', '.join(t for t, _ in seen.most_common(8))}")
        lines.append(f"  {family}: {_qlist(CUE_FAMILIES[family])}")
    if with_vocabulary and draft.mined:
        lines.append(f"  document_vocabulary: {_qlist(draft.mined)}")
    if draft.events:
        lines.append(f"  commemoration_words: {_qlist(CUE_FAMILIES['commemoration'])}")
    lines.append("")
    lines += _rules_yaml(draft, with_vocabulary, with_paragraph)
    if examples or negatives:
        lines += ["", "examples:"]
        if examples:
            lines.append("  match:")
            for title, on in examples:
                lines.append(f"    - {{title: {_q(title)}" + (f", on: {_q(on)}" if on else "") + "}")
        if negatives:
            lines.append("  no_match:")
            lines += [f"    - {_q(t)}" for t in negatives]
    return "\n".join(lines) + "\n"


def _actors_yaml(draft: Draft, sides: tuple[str, ...]) -> str:
    if not draft.new_actors:
        return ""
    used = sorted({m.side for m in draft.new_actors.values() if m.side} | set(draft.new_sides))
    lines = ["# DRAFT actors found in the documents that the actor file does not list.",
             "# Check each name, side and alias; add spellings in other languages.",
             "kind: actors", f"sides: {_qlist(used) if used else '[]'}", "actors:"]
    for aid, m in draft.new_actors.items():
        docs = ", ".join(sorted(m.docs)[:4])
        lines.append(f"  {aid}:  # {m.count or len(m.docs)} mentions; {docs}")
        lines.append(f"    name: {_q(m.name)}")
        if m.side and (m.side in sides or m.side in draft.new_sides):
            lines.append(f"    side: {m.side}")
        lines.append(f"    type: {m.type}")
        lines.append(f"    aliases: {_qlist(sorted(m.aliases, key=lambda a: (-len(a), a)))}")
    return "\n".join(lines) + "\n"


def _calendar_yaml(draft: Draft) -> str:
    new = [e for e in draft.events if e.new]
    if not new:
        return ""
    lines = ["# DRAFT calendar entries for dates the documents give. Check each date against a source.",
             "kind: calendar", "events:"]
    for e in new:
        lines += [f"  {e.id}:", f"    name: {_q(e.name)}", f"    date: {_q(e.date)}",
                  f"    parties: {_qlist(e.parties)}", f"    source: {_q(e.source)}",
                  f"    aliases: {_qlist(e.aliases)}"]
    return "\n".join(lines) + "\n"


def _check(draft: Draft, base_dir: Path) -> LoadResult:
    """Load the draft with the real loader beside the base actor and calendar files."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for path in sorted(base_dir.glob("*.y*ml")):
            text = path.read_text(encoding="utf-8")
            if re.search(r"^kind:\s*(actors|calendar)\b", text, re.M):
                shutil.copy(path, folder / path.name)
        _write_files(draft, folder)
        result = load_watchlists(folder)
    draft.errors = [str(e) for e in result.errors]
    return result


def _write_files(draft: Draft, folder: Path) -> list[Path]:
    out = [folder / f"{draft.name}.watchlist.yaml"]
    out[0].write_text(draft.watchlist_yaml, encoding="utf-8")
    if draft.actors_yaml:
        out.append(folder / f"{draft.name}.actors.yaml")
        out[-1].write_text(draft.actors_yaml, encoding="utf-8")
    if draft.calendar_yaml:
        out.append(folder / f"{draft.name}.calendar.yaml")
        out[-1].write_text(draft.calendar_yaml, encoding="utf-8")
    return out


def _doc(src: Source) -> Document:
    return Document(title=src.title, content=src.text)


def _coverage(draft: Draft, result: LoadResult, sources: list[Source]) -> None:
    matcher = Matcher.compile(result)
    draft.caught = {}
    for src in sources:
        rules: list[str] = []
        for m in matcher.match(_doc(src), on=src.published):
            if m.watchlist == draft.name:
                rules = sorted({str(e["rule"]) for e in m.evidence})
        draft.caught[src.name] = rules


def _build(draft: Draft, sources: list[Source], sentences: list[Sentence], base: LoadResult,
           base_dir: Path) -> None:
    vocabulary = paragraph = False
    result = LoadResult()
    for _ in range(3):
        draft.watchlist_yaml = _watchlist_yaml(draft, [], [], with_vocabulary=vocabulary, with_paragraph=paragraph)
        draft.actors_yaml = _actors_yaml(draft, base.sides)
        draft.calendar_yaml = _calendar_yaml(draft)
        result = _check(draft, base_dir)
        if draft.errors:
            return
        _coverage(draft, result, sources)
        if not draft.missed:
            break
        # Widen only as far as needed to catch every document: first the documents' own
        # vocabulary, then a paragraph window.
        if not vocabulary and draft.mined:
            vocabulary = True
        elif not paragraph:
            paragraph = True
        else:
            break
    examples, negatives = _examples(draft, result, sentences, {s.name: s for s in sources})
    draft.watchlist_yaml = _watchlist_yaml(draft, examples, negatives, with_vocabulary=vocabulary,
                                           with_paragraph=paragraph)
    result = _check(draft, base_dir)
    if not draft.errors:
        draft.example_failures = run_examples(result, Matcher.compile(result))
        _coverage(draft, result, sources)


def _examples(draft: Draft, result: LoadResult, sentences: list[Sentence],
              sources: dict[str, Source]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """One sentence per document that matches on its own; a few one-party sentences that must not."""
    matcher = Matcher.compile(result)
    positives: list[tuple[str, str | None]] = []
    negatives: list[str] = []
    done: set[str] = set()
    for s in sentences:
        if s.doc in done or len(s.text) > 300 or len(positives) >= 12:
            continue
        published = sources[s.doc].published
        names = {m.watchlist for m in matcher.match(Document(title=s.text), on=published)}
        if draft.name in names:
            positives.append((s.text, published.isoformat() if published else None))
            done.add(s.doc)
    for s in sentences:
        if len(negatives) >= 3:
            break
        if s.families and len(s.sides & set(draft.parties)) == 1 and len(s.text) <= 200:
            if draft.name not in {m.watchlist for m in matcher.match(Document(title=s.text))}:
                negatives.append(s.text)
    return positives, negatives


# ---------------------------------------------------------------------------------------------
# The report


def render_report(draft: Draft, problems: list[str], sources: list[Source]) -> str:
    lines = [f"# Draft watchlist `{draft.name}`", "",
             "A draft: nothing here is active. Review, edit, then copy the YAML files into the watchlist folder.", ""]
    lines += ["## Documents", ""]
    for src in sources:
        when = f" ({src.published.isoformat()})" if src.published else ""
        lines.append(f"- `{src.name}`{when}: {src.title[:120]}")
    for p in problems:
        lines.append(f"- skipped: {p}")
    lines += ["", "## Parties", "",
              "Sides named in the most documents (the first is the one every rule requires):", ""]
    for side in draft.parties:
        lines.append(f"- `{side}`: named in {draft.side_docs.get(side, 0)} of {len(sources)} documents")
    lines += ["", "## Actors", "", "Known from the actor file:", ""]
    for aid, docs in sorted(draft.known_actors.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:40]:
        lines.append(f"- `{aid}`: {len(docs)} documents")
    lines += ["", "New (written to the draft actors file):", ""]
    for aid, m in draft.new_actors.items():
        lines.append(f"- `{aid}` ({m.type}, side {m.side or 'none'}): {', '.join(sorted(m.aliases)[:6])}")
    if not draft.new_actors:
        lines.append("- none")
    lines += ["", "## Event cues", ""]
    for family, seen in draft.families.items():
        lines.append(f"- `{family}`: {', '.join(f'{t} ({n})' for t, n in seen.most_common(10))}")
    if draft.mined:
        lines.append(f"- words the documents use where the parties meet: {', '.join(draft.mined)}")
    lines += ["", "## Dates and anniversaries", ""]
    for e in draft.events:
        state = "new calendar entry" if e.new else "existing calendar event"
        lines.append(f"- `{e.id}` ({state}) {e.name} {e.date}".rstrip())
    for doc, what in draft.undated:
        lines.append(f"- no date found in the documents for: {what} (`{doc}`)")
    for doc, text, _ in draft.dates[:30]:
        lines.append(f"- date written: {text} (`{doc}`)")
    lines += ["", "## What each rule catches", "", "| document | caught by |", "| --- | --- |"]
    for doc, rules in draft.caught.items():
        lines.append(f"| `{doc}` | {', '.join(rules) if rules else '**missed**'} |")
    rule_ids = sorted({r for rules in draft.caught.values() for r in rules})
    lines += ["", "| rule | documents caught | documents missed |", "| --- | --- | --- |"]
    for rule in rule_ids:
        hit = [d for d, rs in draft.caught.items() if rule in rs]
        miss = [d for d, rs in draft.caught.items() if rule not in rs]
        lines.append(f"| `{rule}` | {len(hit)}: {', '.join(hit)} | {len(miss)}: {', '.join(miss)} |")
    lines += ["", "## Checks", ""]
    lines.append("- loads with the watchlist loader: " + ("yes" if not draft.errors else "NO"))
    lines += [f"  - {e}" for e in draft.errors]
    lines.append("- embedded examples pass: " + ("yes" if not draft.example_failures else "NO"))
    lines += [f"  - {f}" for f in draft.example_failures]
    lines.append(f"- documents caught: {len(draft.caught) - len(draft.missed)} of {len(draft.caught)}")
    return "\n".join(lines) + "\n"


def write_draft(draft: Draft, out: Path, problems: list[str], sources: list[Source]) -> list[Path]:
    """Write the draft files and report into ``out/NAME/``; returns the paths written."""
    folder = out / draft.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{draft.name}.*.yaml"):
        old.unlink()
    files = _write_files(draft, folder)
    draft.report = render_report(draft, problems, sources)
    report = folder / "REPORT.md"
    report.write_text(draft.report, encoding="utf-8")
    draft.files = [*files, report]
    return draft.files
