"""One compiled matcher for all watchlists: normalised text, one automaton, cheap rule checks.

Owns: compiling every actor alias, cue, phrase and calendar phrasing of every watchlist into
a single Aho-Corasick automaton (``ahocorasick_rs``); per item, normalising each field once
(``monitor.match.text``), one automaton pass over it, an early exit when no rule could have
all its terms, and handing the candidate rules to ``monitor.match.evaluate`` (windows,
exclusions, anniversary resolution, evidence); scores; ``explain`` and ``run_examples``.

Must not: read the clock (the reference date is a parameter), do I/O, or import the
database, HTTP or CLI layers. Per-item work is proportional to the automaton's hits and
the candidate rules they trigger, never to the number of watchlists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from operator import itemgetter
from typing import Any

import ahocorasick_rs

from monitor.domain import Document, Match
from monitor.match.anniversaries import CalendarEvent
from monitor.match.evaluate import Atom, Context, CRule, CTerm
from monitor.match.regex import compile_regex
from monitor.match.text import needs_boundary, normalise, normalise_phrase
from monitor.match.watchlist import FIELDS, Actor, Example, LoadResult, Rule, Term, Watchlist, expand_alias
from monitor.match.windows import FieldText, Hit

# Per-field length caps (characters) applied before matching. What is past them is not read:
# headlines and summaries are far shorter, and the first 100 KB of an article is where its
# subject is named. They bound a hostile item's cost whatever the feed sends.
FIELD_CAPS = {"title": 1_000, "summary": 20_000, "content": 100_000}


# ---------------------------------------------------------------------------------------------
# The matcher


class Matcher:
    """All watchlists compiled once; ``match`` is pure and thread-safe."""

    def __init__(self) -> None:
        self._atoms: list[Atom] = []
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
        self._rules: list[CRule] = []
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
        self._key_info = [(needs_boundary(key[0]), needs_boundary(key[-1]), tuple(payloads))
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
                # A contiguous NFA rather than a DFA: builds in a few milliseconds (a DFA of the
                # seeded lists takes 25 ms, of 1,000 lists 400 ms and 26 MB) and, being small,
                # stays in cache; items per second are the same.
                implementation=ahocorasick_rs.Implementation.ContiguousNFA)
        return self

    def _atom(self, kind: str, key: str, *, actor: str | None = None, events: tuple[str, ...] = ()) -> int:
        ident = (kind, actor or key)
        if ident not in self._atom_index:
            self._atom_index[ident] = len(self._atoms)
            self._atoms.append(Atom(kind, key, actor, events))
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

    def _compile_term(self, term: Term, watchlist: Watchlist) -> CTerm:
        document = term.scope == "document"
        if term.kind == "any":
            children = tuple(self._compile_term(c, watchlist) for c in term.children)
            atoms = frozenset().union(*(c.atoms for c in children))
            regexes = tuple(r for c in children for r in c.regexes)
            return CTerm(term, atoms, regexes, document, "any", children)
        if term.kind == "actor":
            label = "+".join(term.actors or term.sides or term.types)
            return CTerm(term, self._actor_selection(term), (), document, label)
        if term.kind in ("cue", "phrase"):
            phrases = [p for name in term.values for p in watchlist.cues.get(name, ())] \
                if term.kind == "cue" else list(term.values)
            atoms = self._phrase_atoms(phrases)
            return CTerm(term, atoms, (), document, ",".join(term.values) if term.kind == "cue" else "phrase")
        if term.kind == "event":
            allowed = None if term.values == ("any",) else frozenset(term.values)
            atoms = frozenset(i for i in self._event_atoms
                              if allowed is None or allowed.intersection(self._atoms[i].events))
            return CTerm(term, atoms, (), document, "event", events=allowed)
        pattern = compile_regex(term.values[0])
        return CTerm(term, frozenset(), (pattern,), document, "regex")

    def _add_rule(self, index: int, watchlist: Watchlist, rule: Rule, *, exclude: bool) -> None:
        terms = tuple(self._compile_term(t, watchlist) for t in rule.all)
        none = tuple(self._compile_term(t, watchlist) for t in rule.none)
        rule_index = len(self._rules)
        crule = CRule(rule, index, terms, none, exclude, watchlist.field_weights)
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

            def rank(t: CTerm) -> tuple[int, int]:
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
        texts: list[tuple[str, str, list[int] | None]] = []  # per field: original, normalised, offsets
        scanned: list[tuple[int, str, list[tuple[int, int, int]]]] = []
        find = self._automaton.find_matches_as_indexes
        for fi, name in enumerate(FIELDS):
            text = (getattr(doc, name) or "")[: FIELD_CAPS[name]]
            if not text:
                texts.append(("", "", None))
                continue
            norm, offsets = normalise(text)
            texts.append((text, norm, offsets))
            found = find(norm, overlapping=True)
            if found:
                scanned.append((fi, norm, found))
        # Most items of a feed name no actor: leave before any per-hit work when no rule could
        # have all its terms from the keys found (boundaries and suppression only remove hits).
        if not scanned or not self._could_fire(scanned):
            return []
        fields = [FieldText(name, *text) for name, text in zip(FIELDS, texts, strict=True)]
        hits: list[Hit] = []
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
        ctx = Context(self, fields, hits, on)
        by_watchlist: dict[int, list[tuple[CRule, float, list[dict[str, Any]]]]] = defaultdict(list)
        excluded: set[int] = set()
        needs = self._rule_needs
        for rule_index in sorted(candidates):
            crule = self._rules[rule_index]
            if crule.watchlist in excluded:
                continue
            if any(map(present.isdisjoint, needs[rule_index])):  # a term with no atom found
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
                if not any(map(atoms.isdisjoint, needs[rule_index])):
                    return True
        return False

    def _scan(self, fi: int, norm: str, raw: list[tuple[int, int, int]], hits: list[Hit], present: set[int]) -> None:
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
            hits.append(Hit(fi, start, end, atom))
            present.add(atom)

    # -- helpers used by the evaluation context -----------------------------------------------

    def sides_of(self, atom: int) -> tuple[str, ...]:
        return self._actor_sides.get(atom, ())


_END_THEN_START = itemgetter(2, 1)
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


def example_outcomes(result: LoadResult, matcher: Matcher) -> list[tuple[Watchlist, Example, bool]]:
    """Every watchlist's embedded examples with whether each behaves as written (matches, or does not)."""
    outcomes: list[tuple[Watchlist, Example, bool]] = []
    for watchlist in result.watchlists:
        for example in watchlist.examples:
            on = date.fromisoformat(example.on) if example.on else None
            doc = Document(title=example.title, summary=example.summary, content=example.content)
            names = {m.watchlist for m in matcher.match(doc, on=on)}
            outcomes.append((watchlist, example, (watchlist.name in names) == example.expect))
    return outcomes


def run_examples(result: LoadResult, matcher: Matcher) -> list[str]:
    """Run every watchlist's embedded examples; one message per failure, [] when all pass."""
    failures: list[str] = []
    for watchlist, example, passed in example_outcomes(result, matcher):
        if not passed:
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
