"""Evaluating candidate rules for one item: windows, exclusions, anniversaries, evidence.

The matcher (``monitor.match.engine``) compiles watchlists into the values defined here and,
per item, hands the hits of its one automaton pass to a :class:`Context`, which evaluates only
the rules those hits trigger. A term's hits, and their grouping by sentence or paragraph, are
worked out once per item and shared by every candidate rule that has the term.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from itertools import chain
from typing import TYPE_CHECKING, Any

from monitor.match.anniversaries import Ordinal, Resolution, find_ordinals, resolve
from monitor.match.watchlist import Rule, Term
from monitor.match.windows import FieldText, Hit

if TYPE_CHECKING:
    from monitor.match.engine import Matcher

@dataclass(frozen=True, slots=True)
class Atom:
    kind: str  # actor | phrase | event | prefilter
    key: str  # normalised alias / phrase
    actor: str | None = None
    events: tuple[str, ...] = ()


@dataclass(slots=True)
class CTerm:
    term: Term
    atoms: frozenset[int]
    regexes: tuple[Any, ...]  # RE2 patterns (see monitor.match.regex)
    document: bool
    label: str
    children: tuple[CTerm, ...] = ()
    events: frozenset[str] | None = None  # for event terms: allowed calendar ids (None = any)
    event_filter: frozenset[str] | bool | None = False  # see _event_filter; set once compiled

    def __post_init__(self) -> None:
        self.event_filter = _event_filter(self)


@dataclass(slots=True)
class CRule:
    rule: Rule
    watchlist: int
    terms: tuple[CTerm, ...]
    none: tuple[CTerm, ...]
    exclude: bool
    weights: dict[str, float] = field(default_factory=dict)  # the watchlist's field weights
    # Worked out once at compile time, as ``evaluate`` reads them for every candidate item.
    window_terms: tuple[CTerm, ...] = ()
    doc_terms: tuple[tuple[CTerm, bool], ...] = ()  # with whether the term is fillable
    none_doc: tuple[CTerm, ...] = ()
    none_window: tuple[CTerm, ...] = ()
    # The atoms of all document (window) exclusions, and whether one has a regex: when none of
    # those atoms fired and there is no regex, no exclusion can hold, checked in one step.
    none_doc_atoms: frozenset[int] = frozenset()
    none_doc_regex: bool = False
    none_window_atoms: frozenset[int] = frozenset()
    none_window_regex: bool = False

    def __post_init__(self) -> None:
        self.window_terms = tuple(t for t in self.terms if not t.document)
        self.doc_terms = tuple((t, self.fillable(t)) for t in self.terms if t.document)
        self.none_doc = tuple(t for t in self.none if t.document)
        self.none_window = tuple(t for t in self.none if not t.document)
        self.none_doc_atoms = frozenset().union(*(t.atoms for t in self.none_doc))
        self.none_doc_regex = any(t.regexes for t in self.none_doc)
        self.none_window_atoms = frozenset().union(*(t.atoms for t in self.none_window))
        self.none_window_regex = any(t.regexes for t in self.none_window)

    def fillable(self, term: CTerm) -> bool:
        """Whether a resolved bilateral event may stand in for this side term (see evaluate)."""
        return self.rule.anniversary and term.document and term.term.kind == "actor" and bool(term.term.sides)


# Sides that may appear around a bilateral anniversary without being another party to it.
_BYSTANDER_SIDES = frozenset({"media", "usa", "china_historic"})
# A watchlist regex reports at most this many matches per field: evidence needs the first one
# in each window, and the cap keeps a pattern that matches everywhere from costing n² in total.
MAX_REGEX_MATCHES = 200


class Context:
    """Per-document evaluation state: hits grouped per term, units, regex results."""

    def __init__(self, matcher: Matcher, fields: list[FieldText], hits: list[Hit], on: date | None) -> None:
        self.m = matcher
        self.fields = fields
        self.hits = hits
        self.on = on
        self._regex_cache: dict[Any, list[Hit]] = {}
        self._ordinals: dict[tuple[int, int, int], list[Ordinal]] = {}
        self._term_cache: dict[int, list[Hit]] = {}  # by id of a compiled term (they live as long as the matcher)
        self._word_index: dict[int, tuple[list[Hit], dict[int, tuple[list[int], list[tuple[int, int, Hit]]]]]] = {}
        self._group_cache: dict[tuple[int, str], tuple[list[Hit], dict[tuple[int, int], list[Hit]]]] = {}
        self._atom_cache: dict[frozenset[int], list[Hit]] = {}
        self._sides: frozenset[str] | None = None
        # Hit positions per atom, so a term's hits come from its atoms that fired, not from a
        # scan of every hit of the item for every term of every candidate rule.
        self._by_atom: dict[int, list[int]] = defaultdict(list)
        for i, h in enumerate(hits):
            self._by_atom[h.atom].append(i)
        self._fired: set[int] = set(self._by_atom)

    def _atom_hits(self, atoms: frozenset[int]) -> list[Hit]:
        """The hits of ``atoms``, in the item's hit order (field, then position as scanned)."""
        fired = [self._by_atom[a] for a in atoms & self._fired]
        if not fired:
            return []
        hits = self.hits
        if len(fired) == 1:
            return [hits[i] for i in fired[0]]
        return [hits[i] for i in sorted(chain.from_iterable(fired))]

    @property
    def sides(self) -> frozenset[str]:
        if self._sides is None:
            # Per atom that fired, not per hit: the same sides, each atom looked up once.
            sides_of = self.m.sides_of
            self._sides = frozenset(s for atom in self._fired for s in sides_of(atom))
        return self._sides

    def term_hits(self, term: CTerm) -> list[Hit]:
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
                found: list[Hit] = []
                for fi, f in enumerate(self.fields):
                    if f.norm:
                        found.extend(_regex_hits(pattern, fi, f.norm))
                self._regex_cache[pattern] = found
            out.extend(self._regex_cache[pattern])
        self._term_cache[id(term)] = out
        return out

    def _near(self, hs: list[Hit], field: int, word: int, within: int) -> list[Hit]:
        """The hits of ``hs`` in ``field`` at most ``within`` words from ``word``, in ``hs`` order.

        Hits are indexed by word once per list, so each window costs a bisection, not a scan
        of every hit (which made many mentions in one item quadratic).
        """
        index = self._word_index.get(id(hs))
        if index is None or index[0] is not hs:
            per_field: dict[int, list[tuple[int, int, Hit]]] = defaultdict(list)
            for i, h in enumerate(hs):
                per_field[h.field].append((self.fields[h.field].word_of(h.start), i, h))
            built = {fi: ([w for w, _, _ in rows], rows) for fi, rows in
                     ((fi, sorted(rows, key=lambda r: (r[0], r[1]))) for fi, rows in per_field.items())}
            index = (hs, built)
            self._word_index[id(hs)] = index
        words, rows = index[1].get(field, ([], []))
        lo, hi = bisect_left(words, word - within), bisect_right(words, word + within)
        return [h for _, _, h in sorted(rows[lo:hi], key=lambda r: r[1])]

    def _by_unit(self, hs: list[Hit], within: str) -> dict[tuple[int, int], list[Hit]]:
        """The hits of ``hs`` grouped by sentence (or paragraph), once per hit list: the lists
        are the per-term caches, shared by every candidate rule that has the term."""
        key = (id(hs), within)
        cached = self._group_cache.get(key)
        if cached is not None and cached[0] is hs:
            return cached[1]
        units: dict[tuple[int, int], list[Hit]] = {}
        fields = self.fields
        for h in hs:
            # The same keys as ``unit`` gives, without a call per hit.
            if within == "sentence":
                sentence = h.sentence
                if sentence < 0:
                    sentence = h.sentence = bisect_right(fields[h.field].sentence_ends(), h.start)
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

    def unit(self, hit: Hit, within: str | int) -> tuple[int, int]:
        f = self.fields[hit.field]
        if within == "sentence":
            if hit.sentence < 0:
                hit.sentence = f.sentence_of(hit.start)
            return hit.field, hit.sentence
        if within == "paragraph":
            return hit.field, f.paragraph_of(hit.start)
        return (0, 0)

    def evaluate(self, crule: CRule) -> tuple[float, list[dict[str, Any]]] | None:
        """The best window where the rule holds: (field weight, evidence), else None."""
        rule = crule.rule
        term_hits_of = self.term_hits
        doc_terms: list[CTerm] = []
        doc_hits: list[list[Hit]] = []
        # In an anniversary rule, a bilateral calendar event (its parties include the side)
        # stands in for a side the text leaves unnamed: "marks the 1961 treaty" ties the
        # DPRK to China even when only "Kim" is named. At least one side must be named.
        unnamed: list[CTerm] = []
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
        if crule.none_doc_regex or not crule.none_doc_atoms.isdisjoint(self._fired):
            for t in crule.none_doc:
                if term_hits_of(t):
                    return None
        window_terms = crule.window_terms
        term_hits: list[list[Hit]] = []
        for t in window_terms:
            hs = term_hits_of(t)
            if not hs:
                return None
            term_hits.append(hs)
        weights = crule.weights
        fields = self.fields
        may_exclude = crule.none_window_regex or not crule.none_window_atoms.isdisjoint(self._fired)
        for group in self._windows(window_terms, term_hits, rule.within):
            resolution: tuple[Hit, Resolution] | None = None
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
            if may_exclude and any(self._inside(t, group, rule.within) for t in crule.none_window):
                continue
            chosen = [hs[0] for hs in group] + [hs[0] for hs in doc_hits]
            weight = max(weights[fields[h.field].name] for h in chosen)
            evidence = [self._evidence(rule.id, t, hs[0], resolution)
                        for t, hs in zip([*window_terms, *doc_terms], [*group, *doc_hits], strict=True)]
            return weight, evidence
        return None

    def _windows(self, terms: tuple[CTerm, ...], term_hits: list[list[Hit]],
                 within: str | int) -> Iterable[list[list[Hit]]]:
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

    def _inside(self, term: CTerm, group: list[list[Hit]], within: str | int) -> bool:
        found = self.term_hits(term)
        if not found or not group:
            return bool(found) and not group
        anchor = group[0][0]
        if isinstance(within, int):
            aw = self.fields[anchor.field].word_of(anchor.start)
            return bool(self._near(found, anchor.field, aw, within))
        return self.unit(anchor, within) in self._by_unit(found, within)

    def _resolve(self, terms: tuple[CTerm, ...], group: list[list[Hit]]) -> tuple[Hit, Resolution] | None:
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

    def _evidence(self, rule_id: str, term: CTerm, hit: Hit,
                  resolution: tuple[Hit, Resolution] | None) -> dict[str, Any]:
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


def _regex_hits(pattern: Any, fi: int, text: str) -> list[Hit]:
    """Non-empty matches of ``pattern`` in ``text``, at most :data:`MAX_REGEX_MATCHES`."""
    out: list[Hit] = []
    for m in pattern.finditer(text):
        if m.end() > m.start():
            out.append(Hit(fi, m.start(), m.end(), -1))
            if len(out) >= MAX_REGEX_MATCHES:
                break
    return out


def _event_filter(term: CTerm) -> frozenset[str] | bool | None:
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


def _has_cue(term: CTerm) -> bool:
    return any(c.term.kind == "cue" for c in term.children)
