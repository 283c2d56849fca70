"""One compiled matcher for all watchlists: normalised text, one automaton, cheap rule checks.

Owns: text normalisation (HTML tags blanked, case folded, dashes/underscores as spaces,
curly apostrophes straightened) with a map back to the original offsets; compiling every
actor alias, cue, phrase and calendar phrasing of every watchlist into a single
Aho-Corasick automaton; per item, finding candidate rules from the automaton's hits only,
evaluating their windows (sentence, paragraph, document, N words), scores, exclusions and
anniversary resolution; evidence dicts; ``explain`` and ``run_examples``.

Must not: read the clock (the reference date is a parameter), do I/O, or import the
database, HTTP or CLI layers. Per-item work is proportional to the automaton's hits and
the candidate rules they trigger, never to the number of watchlists.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from operator import itemgetter
from typing import Any

import ahocorasick_rs

from monitor.domain import Document, Match
from monitor.match.anniversaries import CalendarEvent, Ordinal, Resolution, find_ordinals, resolve
from monitor.match.regex import compile_regex
from monitor.match.watchlist import FIELDS, Actor, LoadResult, Rule, Term, Watchlist, expand_alias

# ---------------------------------------------------------------------------------------------
# Normalisation

_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d_\u00b7\u30fb"
_TRANSLATE = str.maketrans(
    {**{c: " " for c in _DASHES}, "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "`": "'",
     "\u00b4": "'", "\u00a0": " ", "\t": " ", "\r": " ", "\u3000": " ", "\u200b": " "}
)
_TAG = re.compile(r"<[^<>]{0,2000}>")
# The same mapping as pairs, for _fold: every replacement is " " or "'", neither of which is
# mapped again, so replacing one character after another gives what ``translate`` gives.
_PAIRS = tuple((chr(k), str(v)) for k, v in _TRANSLATE.items())
_ASCII_PAIRS = tuple((a, b) for a, b in _PAIRS if a.isascii())


def _fold(text: str) -> str:
    """``text.translate(_TRANSLATE)``, several times faster: most text holds none of the few
    characters mapped, and a substring test per character is a fast scan."""
    for old, new in _ASCII_PAIRS if text.isascii() else _PAIRS:
        if old in text:
            text = text.replace(old, new)
    return text


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x1100 <= o <= 0x11FF or 0x3040 <= o <= 0x30FF or 0x3130 <= o <= 0x318F
            or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF
            or 0xF900 <= o <= 0xFAFF)


def normalise(text: str) -> tuple[str, list[int] | None]:
    """Text for matching, and for each of its characters the offset in ``text``.

    The map is None when offsets are unchanged (the common case: tags are blanked with
    spaces of the same length and lower-casing rarely changes lengths).
    """
    if "<" in text:
        text = _TAG.sub(lambda m: " " * len(m.group()), text)
    folded = _fold(text)
    out = folded.casefold()
    if len(out) == len(folded):
        return out, None
    # Rare: a character folds to several ("ß" -> "ss"); keep a per-character map.
    chars: list[str] = []
    offsets: list[int] = []
    for i, ch in enumerate(folded):
        f = ch.casefold()
        chars.append(f)
        offsets.extend([i] * len(f))
    return "".join(chars), offsets


@lru_cache(maxsize=1 << 16)
def normalise_phrase(phrase: str) -> tuple[str, bool]:
    """A phrase as the automaton stores it, and whether it is a prefix (trailing ``*``).

    Memoised: the same alias and cue phrases recur across rules and watchlists, and compiling
    the matcher is on the start-up path of every command that matches.
    """
    prefix = phrase.endswith("*")
    if prefix:
        phrase = phrase[:-1]
    text, _ = normalise(phrase)
    return " ".join(text.split()), prefix


def _needs_boundary(ch: str) -> bool:
    # Alphabetic scripts need word boundaries; Chinese and Korean do not (Korean particles
    # attach to the noun: 중국과, 조선은).
    return ch.isalnum() and not _is_cjk(ch)


# Per-field length caps (characters) applied before matching. What is past them is not read:
# headlines and summaries are far shorter, and the first 100 KB of an article is where its
# subject is named. They bound a hostile item's cost whatever the feed sends.
FIELD_CAPS = {"title": 1_000, "summary": 20_000, "content": 100_000}
# A watchlist regex reports at most this many matches per field: evidence needs the first one
# in each window, and the cap keeps a pattern that matches everywhere from costing n² in total.
MAX_REGEX_MATCHES = 200


# ---------------------------------------------------------------------------------------------
# Compiled values


@dataclass(slots=True)
class _Hit:
    field: int
    start: int  # offsets in the normalised field text
    end: int
    atom: int
    sentence: int = -1


@dataclass(frozen=True, slots=True)
class _Atom:
    kind: str  # actor | phrase | event | prefilter
    key: str  # normalised alias / phrase
    actor: str | None = None
    events: tuple[str, ...] = ()


@dataclass(slots=True)
class _CTerm:
    term: Term
    atoms: frozenset[int]
    regexes: tuple[Any, ...]  # RE2 patterns (see monitor.match.regex)
    document: bool
    label: str
    children: tuple[_CTerm, ...] = ()
    events: frozenset[str] | None = None  # for event terms: allowed calendar ids (None = any)
    event_filter: frozenset[str] | bool | None = False  # see _event_filter; set once compiled

    def __post_init__(self) -> None:
        self.event_filter = _event_filter(self)


@dataclass(slots=True)
class _CRule:
    rule: Rule
    watchlist: int
    terms: tuple[_CTerm, ...]
    none: tuple[_CTerm, ...]
    exclude: bool
    weights: dict[str, float] = field(default_factory=dict)  # the watchlist's field weights
    # Worked out once at compile time, as ``evaluate`` reads them for every candidate item.
    window_terms: tuple[_CTerm, ...] = ()
    doc_terms: tuple[tuple[_CTerm, bool], ...] = ()  # with whether the term is fillable
    none_doc: tuple[_CTerm, ...] = ()
    none_window: tuple[_CTerm, ...] = ()

    def __post_init__(self) -> None:
        self.window_terms = tuple(t for t in self.terms if not t.document)
        self.doc_terms = tuple((t, self.fillable(t)) for t in self.terms if t.document)
        self.none_doc = tuple(t for t in self.none if t.document)
        self.none_window = tuple(t for t in self.none if not t.document)

    def fillable(self, term: _CTerm) -> bool:
        """Whether a resolved bilateral event may stand in for this side term (see evaluate)."""
        return self.rule.anniversary and term.document and term.term.kind == "actor" and bool(term.term.sides)


@dataclass(slots=True)
class _Field:
    name: str
    original: str
    norm: str
    offsets: list[int] | None
    _sentences: list[int] | None = None
    _paragraphs: list[int] | None = None
    _words: list[int] | None = None

    def orig(self, start: int, end: int) -> tuple[int, int]:
        if self.offsets is None:
            return start, end
        return self.offsets[start], self.offsets[end - 1] + 1

    def sentence_of(self, pos: int) -> int:
        if self._sentences is None:
            norm = self.norm
            ends = []
            for m in _SENTENCE_END.finditer(norm):
                # Not after an abbreviation or an initial: "Mr. Kim", "N. Korea", "U.S. envoy".
                if norm[m.start()] == "." and _ABBREVIATION.search(norm, max(0, m.start() - 4), m.start()):
                    continue
                ends.append(m.end())
            self._sentences = ends
        return bisect_right(self._sentences, pos)

    def sentence_span(self, index: int) -> tuple[int, int]:
        self.sentence_of(0)
        ends = self._sentences or []
        start = ends[index - 1] if index > 0 else 0
        end = ends[index] if index < len(ends) else len(self.norm)
        return start, end

    def paragraph_of(self, pos: int) -> int:
        if self._paragraphs is None:
            self._paragraphs = [m.end() for m in re.finditer(r"\n", self.norm)]
        return bisect_right(self._paragraphs, pos)

    def word_of(self, pos: int) -> int:
        if self._words is None:
            self._words = [m.end() for m in _WORD_GAP.finditer(self.norm)]
        return bisect_right(self._words, pos)


# A sentence ends at . ! ? ; (not after Mr/Dr/St or a single letter such as "N." or "U.S.")
# or at CJK full stops, or at a line break.
# Linear: a run of marks is only tried from its first mark (the look-behind) and possessive
# quantifiers never give characters back, so "......" without a following space costs one pass,
# not one pass per dot (which made 60 KB of dots take 85 s).
_SENTENCE_END = re.compile(r"(?<![.!?;])[.!?;]++[\"')\]\u201d]*+(?=\s|$)|[。！？；\n]")
_ABBREVIATION = re.compile(r"(?:^|\W)(?:mr|mrs|ms|dr|st|no|vs|\w)$")
# Sides that may appear around a bilateral anniversary without being another party to it.
_BYSTANDER_SIDES = frozenset({"media", "usa", "china_historic"})
_WORD_GAP = re.compile(r"\s+|[\u3400-\u9fff]{2}")


# ---------------------------------------------------------------------------------------------
# The matcher


class Matcher:
    """All watchlists compiled once; ``match`` is pure and thread-safe."""

    def __init__(self) -> None:
        self._atoms: list[_Atom] = []
        self._atom_index: dict[tuple[str, str], int] = {}
        # Per automaton key, its (atom, needs right boundary) payloads in insertion order.
        self._keys: dict[str, dict[tuple[int, bool], None]] = defaultdict(dict)
        self._automaton: Any = None
        # Per automaton key (by its index in the automaton): needs a left boundary, needs a
        # right boundary, its payloads; and the atoms it stands for, for the early exit.
        self._key_info: list[tuple[bool, bool, tuple[tuple[int, bool], ...]]] = []
        self._key_atoms: list[frozenset[int]] = []
        self._is_actor: list[bool] = []  # by atom
        # Per rule, the atom sets each of which must have fired for the rule to be evaluated.
        self._rule_needs: list[tuple[frozenset[int], ...]] = []
        self._watchlists: list[Watchlist] = []
        self._rules: list[_CRule] = []
        self._triggers: dict[int, list[int]] = defaultdict(list)
        self._actors: dict[str, Actor] = {}
        self._actor_atoms: dict[str, int] = {}
        self._calendar: dict[str, CalendarEvent] = {}
        self._actor_sides: dict[int, tuple[str, ...]] = {}
        self._topic_atoms: set[int] = set()
        # Compile-time memos: watchlists share actors, cue phrases and calendar terms, so each
        # distinct phrase or selector is worked out once (see compile).
        self._phrase_memo: dict[str, int] = {}
        self._phrases_memo: dict[str, frozenset[int]] = {}
        self._selector_memo: dict[tuple[tuple[str, ...], ...], frozenset[int]] = {}
        self._event_atoms: list[int] = []

    # -- compile --------------------------------------------------------------------------

    @classmethod
    def compile(cls, result: LoadResult) -> Matcher:
        """Compile every valid watchlist of ``result`` into one matcher."""
        self = cls()
        self._actors = dict(result.actors)
        self._calendar = dict(result.calendar.events)
        for actor in result.actors.values():
            atom = self._atom("actor", actor.id, actor=actor.id)
            self._actor_atoms[actor.id] = atom
            self._actor_sides[atom] = actor.sides
            if actor.type == "topic":
                self._topic_atoms.add(atom)
            for alias in actor.aliases:
                for variant in _alias_variants(alias, person=actor.type == "person"):
                    self._add_key(variant, atom)
        event_atoms: dict[str, set[str]] = defaultdict(set)
        for event in result.calendar.events.values():
            for alias in event.aliases:
                for variant in expand_alias(alias):
                    event_atoms[variant].add(event.id)
        for variant, ids in event_atoms.items():
            key, _ = normalise_phrase(variant)
            atom = self._atom("event", key, events=tuple(sorted(ids)))
            self._add_key(variant, atom)
        self._event_atoms = [i for i, a in enumerate(self._atoms) if a.kind == "event"]
        for index, watchlist in enumerate(result.watchlists):
            self._watchlists.append(watchlist)
            for rule in watchlist.rules:
                self._add_rule(index, watchlist, rule, exclude=False)
            for rule in watchlist.exclude:
                self._add_rule(index, watchlist, rule, exclude=True)
        # Boundary needs are fixed per key, so they are decided here, not per hit.
        self._key_info = [(_needs_boundary(key[0]), _needs_boundary(key[-1]), tuple(payloads))
                          for key, payloads in self._keys.items()]
        self._is_actor = [a.kind == "actor" for a in self._atoms]
        self._key_atoms = [frozenset(atom for atom, _ in payloads) - self._topic_atoms
                           for payloads in self._keys.values()]
        self._phrase_memo.clear()
        self._phrases_memo.clear()
        self._selector_memo.clear()
        if self._keys:
            self._automaton = ahocorasick_rs.AhoCorasick(
                list(self._keys), matchkind=ahocorasick_rs.MatchKind.Standard,
                implementation=_implementation(len(self._keys)))
        return self

    def _atom(self, kind: str, key: str, *, actor: str | None = None, events: tuple[str, ...] = ()) -> int:
        ident = (kind, actor or key)
        if ident not in self._atom_index:
            self._atom_index[ident] = len(self._atoms)
            self._atoms.append(_Atom(kind, key, actor, events))
        return self._atom_index[ident]

    def _add_key(self, phrase: str, atom: int) -> None:
        key, prefix = normalise_phrase(phrase)
        if not key:
            return
        self._keys[key].setdefault((atom, not prefix), None)

    def _phrase_atom(self, phrase: str) -> int:
        atom = self._phrase_memo.get(phrase)
        if atom is None:
            key, prefix = normalise_phrase(phrase)
            atom = self._atom("phrase", key + ("*" if prefix else ""))
            self._add_key(phrase, atom)
            self._phrase_memo[phrase] = atom
        return atom

    def _phrase_atoms(self, phrases: Iterable[str]) -> frozenset[int]:
        """The atoms of some phrases with their ``{a|b}`` spellings, each phrase expanded once."""
        out: set[int] = set()
        for phrase in phrases:
            atoms = self._phrases_memo.get(phrase)
            if atoms is None:
                atoms = self._phrases_memo[phrase] = frozenset(self._phrase_atom(v) for v in expand_alias(phrase))
            out |= atoms
        return frozenset(out)

    def _actor_selection(self, term: Term) -> frozenset[int]:
        """The atoms of the actors an actor term selects (by id, side and type), once per selector."""
        selector = (term.actors, term.sides, term.types)
        atoms = self._selector_memo.get(selector)
        if atoms is None:
            chosen = [a for a in self._actors.values()
                      if (not term.actors or a.id in term.actors)
                      and (not term.sides or set(a.sides) & set(term.sides))
                      and (not term.types or a.type in term.types)]
            atoms = self._selector_memo[selector] = frozenset(self._actor_atoms[a.id] for a in chosen)
        return atoms

    def _compile_term(self, term: Term, watchlist: Watchlist) -> _CTerm:
        document = term.scope == "document"
        if term.kind == "any":
            children = tuple(self._compile_term(c, watchlist) for c in term.children)
            atoms = frozenset().union(*(c.atoms for c in children))
            regexes = tuple(r for c in children for r in c.regexes)
            return _CTerm(term, atoms, regexes, document, "any", children)
        if term.kind == "actor":
            label = "+".join(term.actors or term.sides or term.types)
            return _CTerm(term, self._actor_selection(term), (), document, label)
        if term.kind in ("cue", "phrase"):
            phrases = [p for name in term.values for p in watchlist.cues.get(name, ())] \
                if term.kind == "cue" else list(term.values)
            atoms = self._phrase_atoms(phrases)
            return _CTerm(term, atoms, (), document, ",".join(term.values) if term.kind == "cue" else "phrase")
        if term.kind == "event":
            allowed = None if term.values == ("any",) else frozenset(term.values)
            atoms = frozenset(i for i in self._event_atoms
                              if allowed is None or allowed.intersection(self._atoms[i].events))
            return _CTerm(term, atoms, (), document, "event", events=allowed)
        pattern = compile_regex(term.values[0])
        return _CTerm(term, frozenset(), (pattern,), document, "regex")

    def _add_rule(self, index: int, watchlist: Watchlist, rule: Rule, *, exclude: bool) -> None:
        terms = tuple(self._compile_term(t, watchlist) for t in rule.all)
        none = tuple(self._compile_term(t, watchlist) for t in rule.none)
        rule_index = len(self._rules)
        crule = _CRule(rule, index, terms, none, exclude, watchlist.field_weights)
        self._rules.append(crule)
        self._rule_needs.append(tuple(t.atoms for t in terms if not t.regexes and not crule.fillable(t)))
        # Trigger on the rarest term: a cue, phrase or event term beats a broad actor set.
        triggers: frozenset[int]
        if rule.prefilter:
            triggers = frozenset(self._phrase_atom(p) for p in rule.prefilter)  # as written: no {a|b}
        else:
            usable = [t for t in terms if t.atoms and not t.regexes]
            if not usable:
                usable = [t for t in terms if t.atoms]

            def rank(t: _CTerm) -> tuple[int, int]:
                broad = all(self._atoms[a].kind == "actor" for a in t.atoms)
                return (1 if broad else 0, len(t.atoms))

            triggers = min(usable, key=rank).atoms if usable else frozenset()
        for atom in triggers:
            self._triggers[atom].append(rule_index)

    # -- match ----------------------------------------------------------------------------

    @property
    def watchlist_names(self) -> list[str]:
        return [w.name for w in self._watchlists]

    def match_many(self, docs: Iterable[Document], on: date | None = None) -> list[list[Match]]:
        return [self.match(doc, on=on) for doc in docs]

    def match(self, doc: Document, on: date | None = None) -> list[Match]:
        """Every watchlist ``doc`` matches, best score first.

        ``on`` is the reference date for anniversary ordinals (the item's published date,
        else today); without it, falls back to ``doc.published``.
        """
        if self._automaton is None:
            return []
        if on is None and doc.published is not None:
            on = doc.published.date()
        fields: list[_Field] = []
        scanned: list[tuple[int, str, list[tuple[int, int, int]]]] = []
        find = self._automaton.find_matches_as_indexes
        for fi, name in enumerate(FIELDS):
            text = (getattr(doc, name) or "")[: FIELD_CAPS[name]]
            if not text:
                fields.append(_Field(name, "", "", None))
                continue
            norm, offsets = normalise(text)
            fields.append(_Field(name, text, norm, offsets))
            found = find(norm, overlapping=True)
            if found:
                scanned.append((fi, norm, found))
        # Most items of a feed name no actor: leave before any per-hit work when no rule could
        # have all its terms from the keys found (boundaries and suppression only remove hits).
        if not scanned or not self._could_fire(scanned):
            return []
        hits: list[_Hit] = []
        present: set[int] = set()
        for fi, norm, found in scanned:
            self._scan(fi, norm, found, hits, present)
        if not hits:
            return []
        candidates: set[int] = set()
        for atom in present:
            rules = self._triggers.get(atom)
            if rules:
                candidates.update(rules)
        if not candidates:
            return []
        ctx = _Context(self, fields, hits, on)
        by_watchlist: dict[int, list[tuple[_CRule, float, list[dict[str, Any]]]]] = defaultdict(list)
        excluded: set[int] = set()
        needs = self._rule_needs
        for rule_index in sorted(candidates):
            crule = self._rules[rule_index]
            if crule.watchlist in excluded:
                continue
            if not all(not need.isdisjoint(present) for need in needs[rule_index]):
                continue
            fired = ctx.evaluate(crule)
            if fired is None:
                continue
            if crule.exclude:
                excluded.add(crule.watchlist)
            else:
                by_watchlist[crule.watchlist].append((crule, *fired))
        matches: list[Match] = []
        for index, fired_rules in by_watchlist.items():
            if index in excluded:
                continue
            watchlist = self._watchlists[index]
            score = sum(crule.rule.weight * weight for crule, weight, _ in fired_rules)
            if score < watchlist.threshold:
                continue
            evidence = tuple(e for _, _, ev in fired_rules for e in ev)
            matches.append(Match(watchlist.name, watchlist.version, round(score, 4), evidence))
        matches.sort(key=lambda m: (-m.score, m.watchlist))
        return matches

    def _could_fire(self, scanned: list[tuple[int, str, list[tuple[int, int, int]]]]) -> bool:
        """Whether some rule triggered by the keys found has an atom found for each of its terms."""
        key_atoms = self._key_atoms
        atoms: set[int] = set()
        for _, _, found in scanned:
            for key, _, _ in found:
                atoms |= key_atoms[key]
        needs = self._rule_needs
        for atom in atoms:
            for rule_index in self._triggers.get(atom, ()):
                if all(not need.isdisjoint(atoms) for need in needs[rule_index]):
                    return True
        return False

    def _scan(self, fi: int, norm: str, raw: list[tuple[int, int, int]], hits: list[_Hit], present: set[int]) -> None:
        found: list[tuple[int, int, int]] = []  # start, end, atom
        n = len(norm)
        info = self._key_info
        # By end, longest first at the same end: the order hits are numbered in.
        raw.sort(key=_END_THEN_START)
        for key, start, end in raw:
            left, right, payloads = info[key]
            if left and start > 0 and norm[start - 1].isalnum():
                continue
            right_open = not right or end == n or not norm[end].isalnum()
            for atom, needs_right in payloads:
                if needs_right and not right_open:
                    continue
                found.append((start, end, atom))
        if not found:
            return
        # Longest actor mention wins: "South Korea" hides its "Korea", "Korean Peninsula"
        # hides "Korean", and a topic phrase ("North Korea's nuclear programme") hides the
        # country inside it, so a country discussed is not a country taking part.
        is_actor = self._is_actor
        suppressed: set[int] = set()
        # Sweep by start, longest first (then in found order): a span is inside a longer one
        # when an earlier, different span reaches at least as far.
        reach, reach_span = -1, (-1, -1)
        for start, shorter, i in sorted((start, start - end, i) for i, (start, end, atom) in enumerate(found)
                                        if is_actor[atom]):
            end = start - shorter
            if reach >= end and reach_span != (start, end):
                suppressed.add(i)
            elif end > reach:
                reach, reach_span = end, (start, end)
        topic = self._topic_atoms
        for i, (start, end, atom) in enumerate(found):
            if i in suppressed or atom in topic:
                continue
            hits.append(_Hit(fi, start, end, atom))
            present.add(atom)

    # -- helpers used by the evaluation context -----------------------------------------------

    def sides_of(self, atom: int) -> tuple[str, ...]:
        return self._actor_sides.get(atom, ())


class _Context:
    """Per-document evaluation state: hits grouped per term, units, regex results."""

    def __init__(self, matcher: Matcher, fields: list[_Field], hits: list[_Hit], on: date | None) -> None:
        self.m = matcher
        self.fields = fields
        self.hits = hits
        self.on = on
        self._regex_cache: dict[Any, list[_Hit]] = {}
        self._ordinals: dict[tuple[int, int, int], list[Ordinal]] = {}
        self._term_cache: dict[int, list[_Hit]] = {}  # by id of a compiled term (they live as long as the matcher)
        self._word_index: dict[int, tuple[list[_Hit], dict[int, tuple[list[int], list[tuple[int, int, _Hit]]]]]] = {}
        self._group_cache: dict[tuple[int, str], tuple[list[_Hit], dict[tuple[int, int], list[_Hit]]]] = {}
        self._atom_cache: dict[frozenset[int], list[_Hit]] = {}
        self._sides: frozenset[str] | None = None
        # Hit positions per atom, so a term's hits come from its atoms that fired, not from a
        # scan of every hit of the item for every term of every candidate rule.
        self._by_atom: dict[int, list[int]] = defaultdict(list)
        for i, h in enumerate(hits):
            self._by_atom[h.atom].append(i)
        self._fired: set[int] = set(self._by_atom)

    def _atom_hits(self, atoms: frozenset[int]) -> list[_Hit]:
        """The hits of ``atoms``, in the item's hit order (field, then position as scanned)."""
        fired = [self._by_atom[a] for a in atoms & self._fired]
        if not fired:
            return []
        hits = self.hits
        if len(fired) == 1:
            return [hits[i] for i in fired[0]]
        return [hits[i] for i in sorted(i for positions in fired for i in positions)]

    @property
    def sides(self) -> frozenset[str]:
        if self._sides is None:
            self._sides = frozenset(s for h in self.hits for s in self.m.sides_of(h.atom))
        return self._sides

    def term_hits(self, term: _CTerm) -> list[_Hit]:
        if not term.regexes:
            cached = self._atom_cache.get(term.atoms)
            if cached is None:
                cached = self._atom_cache[term.atoms] = self._atom_hits(term.atoms)
            return cached
        combined = self._term_cache.get(id(term))
        if combined is not None:
            return combined
        out = self._atom_hits(term.atoms) if term.atoms else []
        for pattern in term.regexes:
            if pattern not in self._regex_cache:
                found: list[_Hit] = []
                for fi, f in enumerate(self.fields):
                    if f.norm:
                        found.extend(_regex_hits(pattern, fi, f.norm))
                self._regex_cache[pattern] = found
            out.extend(self._regex_cache[pattern])
        self._term_cache[id(term)] = out
        return out

    def _near(self, hs: list[_Hit], field: int, word: int, within: int) -> list[_Hit]:
        """The hits of ``hs`` in ``field`` at most ``within`` words from ``word``, in ``hs`` order.

        Hits are indexed by word once per list, so each window costs a bisection, not a scan
        of every hit (which made many mentions in one item quadratic).
        """
        index = self._word_index.get(id(hs))
        if index is None or index[0] is not hs:
            per_field: dict[int, list[tuple[int, int, _Hit]]] = defaultdict(list)
            for i, h in enumerate(hs):
                per_field[h.field].append((self.fields[h.field].word_of(h.start), i, h))
            built = {fi: ([w for w, _, _ in rows], rows) for fi, rows in
                     ((fi, sorted(rows, key=lambda r: (r[0], r[1]))) for fi, rows in per_field.items())}
            index = (hs, built)
            self._word_index[id(hs)] = index
        words, rows = index[1].get(field, ([], []))
        lo, hi = bisect_left(words, word - within), bisect_right(words, word + within)
        return [h for _, _, h in sorted(rows[lo:hi], key=lambda r: r[1])]

    def _by_unit(self, hs: list[_Hit], within: str) -> dict[tuple[int, int], list[_Hit]]:
        """The hits of ``hs`` grouped by sentence (or paragraph), once per hit list: the lists
        are the per-term caches, shared by every candidate rule that has the term."""
        key = (id(hs), within)
        cached = self._group_cache.get(key)
        if cached is not None and cached[0] is hs:
            return cached[1]
        units: dict[tuple[int, int], list[_Hit]] = {}
        fields = self.fields
        for h in hs:
            # The same keys as ``unit`` gives, without a call per hit.
            if within == "sentence":
                sentence = h.sentence
                if sentence < 0:
                    sentence = h.sentence = fields[h.field].sentence_of(h.start)
                where = (h.field, sentence)
            elif within == "paragraph":
                where = (h.field, fields[h.field].paragraph_of(h.start))
            else:
                where = (0, 0)
            group = units.get(where)
            if group is None:
                units[where] = [h]
            else:
                group.append(h)
        self._group_cache[key] = (hs, units)
        return units

    def unit(self, hit: _Hit, within: str | int) -> tuple[int, int]:
        f = self.fields[hit.field]
        if within == "sentence":
            if hit.sentence < 0:
                hit.sentence = f.sentence_of(hit.start)
            return hit.field, hit.sentence
        if within == "paragraph":
            return hit.field, f.paragraph_of(hit.start)
        return (0, 0)

    def evaluate(self, crule: _CRule) -> tuple[float, list[dict[str, Any]]] | None:
        """The best window where the rule holds: (field weight, evidence), else None."""
        rule = crule.rule
        term_hits_of = self.term_hits
        doc_terms: list[_CTerm] = []
        doc_hits: list[list[_Hit]] = []
        # In an anniversary rule, a bilateral calendar event (its parties include the side)
        # stands in for a side the text leaves unnamed: "marks the 1961 treaty" ties the
        # DPRK to China even when only "Kim" is named. At least one side must be named.
        unnamed: list[_CTerm] = []
        for t, fillable in crule.doc_terms:
            found = term_hits_of(t)
            if not found:
                if fillable:
                    unnamed.append(t)
                    continue
                return None
            doc_terms.append(t)
            doc_hits.append(found)
        if unnamed and not doc_hits:
            return None
        for t in crule.none_doc:
            if term_hits_of(t):
                return None
        window_terms = crule.window_terms
        term_hits: list[list[_Hit]] = []
        for t in window_terms:
            hs = term_hits_of(t)
            if not hs:
                return None
            term_hits.append(hs)
        weights = crule.weights
        fields = self.fields
        for group in self._windows(window_terms, term_hits, rule.within):
            resolution: tuple[_Hit, Resolution] | None = None
            if rule.anniversary:
                resolution = self._resolve(window_terms, group)
                if resolution is None:
                    continue
                parties = resolution[1].event.parties
                # Only when the text names no third country: "China and Vietnam mark 75
                # years of ties" is not the DPRK–PRC anniversary.
                if unnamed and (len(parties) < 2 or any(not set(t.term.sides) & set(parties) for t in unnamed)
                                or self.sides - set(parties) - _BYSTANDER_SIDES):
                    continue
            if crule.none_window and any(self._inside(t, group, rule.within) for t in crule.none_window):
                continue
            chosen = [hs[0] for hs in group] + [hs[0] for hs in doc_hits]
            weight = max(weights[fields[h.field].name] for h in chosen)
            evidence = [self._evidence(rule.id, t, hs[0], resolution)
                        for t, hs in zip([*window_terms, *doc_terms], [*group, *doc_hits], strict=True)]
            return weight, evidence
        return None

    def _windows(self, terms: tuple[_CTerm, ...], term_hits: list[list[_Hit]],
                 within: str | int) -> Iterable[list[list[_Hit]]]:
        """Groups of hits (one list per term) that share a window, best field first."""
        if not terms:
            yield []
            return
        if isinstance(within, int):
            # Anchor on each hit of the rarest term; every other term needs a hit within N words.
            anchor_index = min(range(len(terms)), key=lambda i: len(term_hits[i]))
            for anchor in sorted(term_hits[anchor_index], key=lambda h: (h.field, h.start)):
                aw = self.fields[anchor.field].word_of(anchor.start)
                group = []
                for i, hs in enumerate(term_hits):
                    near = self._near(hs, anchor.field, aw, within) if i != anchor_index else [anchor]
                    if not near:
                        break
                    group.append(near)
                else:
                    yield group
            return
        per_term = [self._by_unit(hs, within) for hs in term_hits]
        first = per_term[0]
        if len(per_term) == 1:
            shared: Iterable[tuple[int, int]] = first
        else:
            shared = first.keys() & per_term[1].keys()
            for units in per_term[2:]:
                shared &= units.keys()
        for key in sorted(shared):
            yield [units[key] for units in per_term]

    def _inside(self, term: _CTerm, group: list[list[_Hit]], within: str | int) -> bool:
        found = self.term_hits(term)
        if not found or not group:
            return bool(found) and not group
        anchor = group[0][0]
        if isinstance(within, int):
            aw = self.fields[anchor.field].word_of(anchor.start)
            return bool(self._near(found, anchor.field, aw, within))
        return self.unit(anchor, within) in self._by_unit(found, within)

    def _resolve(self, terms: tuple[_CTerm, ...], group: list[list[_Hit]]) -> tuple[_Hit, Resolution] | None:
        for term, hs in zip(terms, group, strict=True):
            allowed = term.event_filter
            if allowed is False or allowed is True:
                continue
            for hit in hs:
                atom = self.m._atoms[hit.atom] if hit.atom >= 0 else None
                if atom is None or atom.kind != "event":
                    continue
                ids = [e for e in atom.events if allowed is None or e in allowed]
                candidates = [self.m._calendar[e] for e in ids]
                f = self.fields[hit.field]
                if hit.sentence < 0:
                    hit.sentence = f.sentence_of(hit.start)
                s_start, s_end = f.sentence_span(hit.sentence)
                # Closest ordinal first: "the 64th anniversary of the 1961 treaty".
                ordinals = sorted(self._sentence_ordinals(hit.field, s_start, s_end),
                                  key=lambda o: abs(o.start + s_start - hit.start))
                found = resolve(candidates, [o.value for o in ordinals], self.on, self.sides)
                if found is not None:
                    return hit, found
        return None

    def _sentence_ordinals(self, field: int, start: int, end: int) -> list[Ordinal]:
        """Ordinals of one sentence, found once however many event mentions it holds."""
        key = (field, start, end)
        if key not in self._ordinals:
            self._ordinals[key] = find_ordinals(self.fields[field].norm[start:end])
        return self._ordinals[key]

    def _evidence(self, rule_id: str, term: _CTerm, hit: _Hit,
                  resolution: tuple[_Hit, Resolution] | None) -> dict[str, Any]:
        f = self.fields[hit.field]
        start, end = f.orig(hit.start, hit.end)
        atom = self.m._atoms[hit.atom] if hit.atom >= 0 else None
        kind = "regex" if atom is None else "actor" if atom.kind == "actor" else \
            "cue" if term.term.kind == "cue" or _has_cue(term) else "phrase"
        out: dict[str, Any] = {"rule": rule_id, "field": f.name, "start": start, "end": end,
                               "text": f.original[start:end], "kind": kind}
        if atom is not None and atom.kind == "actor":
            out["actor"] = atom.actor
            out["alias"] = f.norm[hit.start:hit.end]
        elif atom is not None:
            out["alias"] = atom.key
            if term.term.kind == "cue":
                out["cue"] = term.label
        else:
            out["alias"] = term.regexes[0].pattern if term.regexes else ""
        if resolution is not None and resolution[0] is hit:
            out["kind"] = "anniversary"
            out.update(resolution[1].evidence())
        return out


_END_THEN_START = itemgetter(2, 1)
# Up to this many keys the automaton is compiled to a DFA (fastest scan); beyond, a contiguous
# NFA, which builds several times faster in a tenth of the memory (1,000 lists: 12,000 keys).
_DFA_KEYS = 5_000


def _implementation(keys: int) -> Any:
    impl = ahocorasick_rs.Implementation
    return impl.DFA if keys <= _DFA_KEYS else impl.ContiguousNFA


def _regex_hits(pattern: Any, fi: int, text: str) -> list[_Hit]:
    """Non-empty matches of ``pattern`` in ``text``, at most :data:`MAX_REGEX_MATCHES`."""
    out: list[_Hit] = []
    for m in pattern.finditer(text):
        if m.end() > m.start():
            out.append(_Hit(fi, m.start(), m.end(), -1))
            if len(out) >= MAX_REGEX_MATCHES:
                break
    return out


def _event_filter(term: _CTerm) -> frozenset[str] | bool | None:
    """Allowed calendar ids for an event term (None = any); False when the term has no events."""
    if term.term.kind == "event":
        return term.events
    if term.term.kind == "any":
        kids = [_event_filter(c) for c in term.children]
        sets = [k for k in kids if k is not False]
        if not sets:
            return False
        if any(k is None for k in sets):
            return None
        return frozenset().union(*(k for k in sets if isinstance(k, frozenset)))
    return False


def _has_cue(term: _CTerm) -> bool:
    return any(c.term.kind == "cue" for c in term.children)


def _alias_variants(alias: str, *, person: bool) -> list[str]:
    """Spellings of one alias: ``{a|b}`` alternatives and, for Korean personal names,
    the given name written as one word (Choe Son Hui / Choe Son-hui / Choe Sonhui)."""
    out = []
    for variant in expand_alias(alias):
        out.append(variant)
        if person:
            parts = normalise_phrase(variant)[0].split()
            if len(parts) == 3 and all(p.isascii() and p.isalpha() for p in parts):
                out.append(f"{parts[0]} {parts[1]}{parts[2]}")
    return out


# ---------------------------------------------------------------------------------------------
# Examples and explanations


def run_examples(result: LoadResult, matcher: Matcher) -> list[str]:
    """Run every watchlist's embedded examples; one message per failure, [] when all pass."""
    failures: list[str] = []
    for watchlist in result.watchlists:
        for example in watchlist.examples:
            on = date.fromisoformat(example.on) if example.on else None
            doc = Document(title=example.title, summary=example.summary, content=example.content)
            names = {m.watchlist for m in matcher.match(doc, on=on)}
            if (watchlist.name in names) != example.expect:
                verb = "should match but did not" if example.expect else "should not match but did"
                failures.append(f"{watchlist.path}:{example.line}: watchlist {watchlist.name!r}: example "
                                f"{example.title[:80]!r} {verb}")
    return failures


def explain(match: Match) -> str:
    """A readable account of why ``match`` matched, one line per piece of evidence."""
    lines = [f"{match.watchlist} (version {match.version}) score {match.score:g}"]
    for ev in match.evidence:
        where = f"{ev.get('field')}[{ev.get('start')}:{ev.get('end')}]"
        what = f"{ev.get('kind')} {ev.get('text')!r}"
        if ev.get("actor"):
            what += f" = actor {ev['actor']}"
        elif ev.get("cue"):
            what += f" = cue {ev['cue']}"
        line = f"  rule {ev.get('rule')}: {what} at {where}"
        if ev.get("kind") == "anniversary":
            ordinal = ev.get("ordinal")
            line += f" -> {ev.get('event_name')} ({ev.get('event')})"
            if ordinal is not None:
                check = {True: "matches", False: "does not match", None: "unchecked"}[ev.get("ordinal_ok")]
                line += f", ordinal {ordinal} {check} expected {ev.get('expected_ordinal')}"
        lines.append(line)
    return "\n".join(lines)

