"""The watchlist file schema: loading and validating ``watchlists/*.yaml`` with file:line errors.

Owns: reading the watchlist folder, telling the three kinds of file apart by their
top-level ``kind:`` (``watchlist``, ``actors``, ``calendar``), checking every key against
the documented schema (docs/watchlists.md) and turning the YAML into frozen values the
engine compiles. Every problem becomes a :class:`~monitor.errors.WatchlistError` naming the
file and line; a bad watchlist is skipped and the others keep working, so
:func:`load_watchlists` never raises for a bad file.

Must not: match text, read the clock, touch the database or the settings. The only I/O is
reading the folder it is given.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from monitor import safe_yaml
from monitor.errors import WatchlistError
from monitor.match.anniversaries import Calendar, CalendarEvent
from monitor.match.regex import RegexError, compile_regex

SEVERITIES = ("info", "low", "medium", "high", "critical")
FIELDS = ("title", "summary", "content")
DEFAULT_FIELD_WEIGHTS = {"title": 1.0, "summary": 0.9, "content": 0.8}
WINDOWS = ("sentence", "paragraph", "document")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True, slots=True)
class Actor:
    """A country, capital, state body, person or outlet, with every way it is written."""

    id: str
    name: str
    sides: tuple[str, ...]
    type: str
    aliases: tuple[str, ...]
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Term:
    """One condition inside a rule.

    ``kind`` is ``actor`` (actors, sides and types filter the shared actor file), ``cue``,
    ``phrase``, ``regex``, ``event`` or ``any`` (a union of ``children``). ``scope`` is
    ``window`` (must hit inside the rule's window) or ``document`` (anywhere in the item).
    """

    kind: str
    line: int
    actors: tuple[str, ...] = ()
    sides: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    children: tuple[Term, ...] = ()
    scope: str = "window"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    line: int
    all: tuple[Term, ...]
    none: tuple[Term, ...] = ()
    within: str | int = "sentence"
    weight: float = 1.0
    anniversary: bool = False
    prefilter: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Example:
    """A text embedded in the watchlist that must (``expect``) or must not match."""

    title: str
    summary: str
    content: str
    on: str | None
    expect: bool
    line: int


@dataclass(frozen=True, slots=True)
class Watchlist:
    name: str
    title: str
    version: str
    severity: str
    description: str
    threshold: float
    field_weights: dict[str, float]
    cues: dict[str, tuple[str, ...]]
    rules: tuple[Rule, ...]
    exclude: tuple[Rule, ...]
    examples: tuple[Example, ...]
    path: str
    line: int


@dataclass
class LoadResult:
    """Everything the folder held: valid watchlists, the shared files, and every problem found."""

    watchlists: list[Watchlist] = field(default_factory=list)
    errors: list[WatchlistError] = field(default_factory=list)
    actors: dict[str, Actor] = field(default_factory=dict)
    sides: tuple[str, ...] = ()
    calendar: Calendar = field(default_factory=Calendar)

    @property
    def ok(self) -> bool:
        return not self.errors


# ---------------------------------------------------------------------------------------------
# YAML nodes -> values, collecting errors with line numbers.

Node = yaml.Node


class _Invalid(Exception):
    """Raised inside one section to stop reading it; the error is already recorded."""


class _Reader:
    """Validates one file's node tree, recording every problem with its line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[WatchlistError] = []

    def error(self, node: Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else None
        self.errors.append(WatchlistError(message, path=self.path, line=line))

    def fail(self, node: Node | None, message: str) -> _Invalid:
        self.error(node, message)
        return _Invalid()

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, tuple[Node, Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping")
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.error(key_node, f"{what}: keys must be strings")
                continue
            if key in out:
                self.error(key_node, f"{what}: duplicate key {key!r}")
                continue
            if key not in allowed:
                self.error(key_node, f"{what}: unknown key {key!r} (allowed: {', '.join(allowed)})")
                continue
            out[key] = (key_node, value_node)
        for key in required:
            if key not in out:
                self.error(node, f"{what}: missing required key {key!r}")
        return out

    def string(self, node: Node, what: str, *, nonempty: bool = True) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
            raise self.fail(node, f"{what} must be a string")
        value = str(node.value)
        if nonempty and not value.strip():
            raise self.fail(node, f"{what} must not be empty")
        return value

    def number(self, node: Node, what: str) -> float:
        text = self.string(node, what)
        try:
            return float(text)
        except ValueError:
            raise self.fail(node, f"{what} must be a number, got {text!r}") from None

    def integer(self, node: Node, what: str) -> int:
        text = self.string(node, what)
        if not re.fullmatch(r"-?\d+", text):
            raise self.fail(node, f"{what} must be an integer, got {text!r}")
        return int(text)

    def strings(self, node: Node, what: str) -> list[tuple[str, Node]]:
        """A string or a list of strings, each with its node (for its line)."""
        if isinstance(node, yaml.ScalarNode):
            return [(self.string(node, what), node)]
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.fail(node, f"{what} must be a string or a non-empty list of strings")
        return [(self.string(item, what), item) for item in node.value]

    def items(self, node: Node, what: str) -> list[Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, f"{what} must be a list")
        return list(node.value)

    def each(self, nodes: list[Node], read: Callable[[Node], Any]) -> Iterator[Any]:
        """Read every node, keeping going after a bad one so all problems are reported."""
        for node in nodes:
            try:
                yield read(node)
            except _Invalid:
                continue


# ---------------------------------------------------------------------------------------------
# Alias expansion shared by actors, cues and calendar phrasings.

MAX_FILE_BYTES = 4 * 2**20  # the bundled files are tens of KB; anything this large is a mistake

# One alias may stand for at most this many spellings. ``{a|b}`` written 26 times is 67 million
# strings; refusing it when the file is read keeps compiling (and memory) bounded.
MAX_ALIAS_VARIANTS = 1000


def _braces_balanced(alias: str) -> bool:
    depth = 0
    for ch in alias:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def count_variants(alias: str) -> int:
    """How many spellings ``{a|b}`` alternatives make of ``alias``, counted without expanding them.

    Linear in the alias: a stack holds, per open group, the product of the current
    alternative and the sum of the finished ones. Braces must be balanced.
    """
    stack: list[list[int]] = [[1, 0]]  # [product of the current alternative, sum of finished alternatives]
    for ch in alias:
        if ch == "{":
            stack.append([1, 0])
        elif ch == "|" and len(stack) > 1:
            top = stack[-1]
            top[1] += top[0]
            top[0] = 1
        elif ch == "}" and len(stack) > 1:
            product, finished = stack.pop()
            stack[-1][0] *= product + finished
    return stack[0][0]


def check_alias(alias: str) -> str | None:
    """Why ``alias`` cannot be used, or None when it is fine."""
    if not alias.strip(" *"):
        return "an alias must contain text"
    if "*" in alias.rstrip("*") or alias.endswith("**"):
        return f"alias {alias!r}: '*' is only allowed once, at the end"
    if not _braces_balanced(alias):
        return f"alias {alias!r}: unbalanced '{{' '}}'"
    variants = count_variants(alias)
    if variants > MAX_ALIAS_VARIANTS:
        return (f"alias {_short(alias)!r}: expands to {variants} variants, limit {MAX_ALIAS_VARIANTS} "
                "(split it into several aliases)")
    return None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def expand_alias(alias: str) -> list[str]:
    """Expand ``{a|b}`` alternatives: ``"{Ri|Lee} Su Yong"`` -> ``["Ri Su Yong", "Lee Su Yong"]``.

    An empty alternative drops the part: ``"Kim Jong{ |-|}Un"`` covers three spellings.
    Groups may nest. Callers check the alias with :func:`check_alias` first; an alias over
    :data:`MAX_ALIAS_VARIANTS` raises ValueError here rather than exhausting memory.
    """
    if "{" not in alias:
        return [alias]
    if not _braces_balanced(alias):
        raise ValueError(f"alias {_short(alias)!r}: unbalanced '{{' '}}'")
    variants = count_variants(alias)
    if variants > MAX_ALIAS_VARIANTS:
        raise ValueError(f"alias {_short(alias)!r}: expands to {variants} variants, limit {MAX_ALIAS_VARIANTS}")
    out, _ = _expand_sequence(alias, 0, top=True)
    return list(dict.fromkeys(out))


def _expand_sequence(alias: str, i: int, *, top: bool) -> tuple[list[str], int]:
    """Spellings of the text from ``i`` up to the ``|`` or ``}`` that ends it (or the end), and that index."""
    out = [""]
    literal: list[str] = []
    while i < len(alias):
        ch = alias[i]
        if not top and ch in "|}":
            break
        if ch == "{":
            options, i = _expand_group(alias, i + 1)
            head = "".join(literal)
            literal = []
            out = [o + head + option for o in out for option in options]
            continue
        literal.append(ch)
        i += 1
    tail = "".join(literal)
    return [o + tail for o in out], i


def _expand_group(alias: str, i: int) -> tuple[list[str], int]:
    """Spellings of a ``{…|…}`` group starting after its ``{``; returns them and the index after ``}``."""
    options: list[str] = []
    while True:
        spellings, i = _expand_sequence(alias, i, top=False)
        options.extend(spellings)
        if i >= len(alias) or alias[i] == "}":
            return options, i + 1
        i += 1  # past "|"


# ---------------------------------------------------------------------------------------------
# The three kinds of file.

_ACTOR_KEYS = ("name", "side", "type", "aliases")
_ACTOR_TYPES = ("country", "capital", "place", "body", "person", "media", "group", "topic")
_EVENT_KEYS = ("name", "date", "parties", "aliases", "source")
_WATCHLIST_KEYS = ("kind", "name", "title", "description", "version", "severity", "threshold",
                   "fields", "cues", "rules", "exclude", "examples")
_RULE_KEYS = ("id", "all", "any", "none", "within", "weight", "anniversary", "prefilter")
_TERM_KEYS = ("actor", "side", "type", "cue", "phrase", "regex", "event", "any", "scope")
_EXAMPLE_KEYS = ("title", "summary", "content", "on")


def _read_actors(r: _Reader, top: dict[str, tuple[Node, Node]], result: LoadResult) -> None:
    sides: list[str] = []
    if "sides" in top:
        for side, node in r.strings(top["sides"][1], "sides"):
            if not _ID.match(side):
                r.error(node, f"side {side!r} must be lower_snake_case")
            sides.append(side)
    known_sides = set(sides) | set(result.sides)
    if "actors" not in top:
        raise r.fail(None, "an actors file needs an 'actors:' mapping")
    actors_node = top["actors"][1]
    if not isinstance(actors_node, yaml.MappingNode):
        raise r.fail(actors_node, "actors must be a mapping of id -> actor")
    for key_node, value_node in actors_node.value:
        try:
            actor_id = r.string(key_node, "actor id")
            if not _ID.match(actor_id):
                raise r.fail(key_node, f"actor id {actor_id!r} must be lower_snake_case")
            if actor_id in result.actors:
                raise r.fail(key_node, f"actor {actor_id!r} is defined twice")
            fields = r.mapping(value_node, f"actor {actor_id!r}", _ACTOR_KEYS, ("type", "aliases"))
            actor_sides = [s for s, _ in r.strings(fields["side"][1], "side")] if "side" in fields else []
            for side in actor_sides:
                if side not in known_sides:
                    r.error(fields["side"][1], f"actor {actor_id!r}: unknown side {side!r} "
                            f"(declare it under 'sides:')")
            kind = r.string(fields["type"][1], "type") if "type" in fields else ""
            if kind and kind not in _ACTOR_TYPES:
                r.error(fields["type"][1], f"actor {actor_id!r}: unknown type {kind!r} "
                        f"(one of {', '.join(_ACTOR_TYPES)})")
            aliases = _aliases(r, fields["aliases"][1]) if "aliases" in fields else []
            name = r.string(fields["name"][1], "name") if "name" in fields else (aliases[0] if aliases else "")
            result.actors[actor_id] = Actor(actor_id, name, tuple(actor_sides), kind, tuple(aliases),
                                            key_node.start_mark.line + 1)
        except _Invalid:
            continue
    result.sides = tuple(dict.fromkeys((*result.sides, *sides)))


def _read_calendar(r: _Reader, top: dict[str, tuple[Node, Node]], result: LoadResult) -> None:
    if "events" not in top:
        raise r.fail(None, "a calendar file needs an 'events:' mapping")
    events_node = top["events"][1]
    if not isinstance(events_node, yaml.MappingNode):
        raise r.fail(events_node, "events must be a mapping of id -> event")
    for key_node, value_node in events_node.value:
        try:
            event_id = r.string(key_node, "event id")
            if not _ID.match(event_id):
                raise r.fail(key_node, f"event id {event_id!r} must be lower_snake_case")
            if event_id in result.calendar.events:
                raise r.fail(key_node, f"event {event_id!r} is defined twice")
            fields = r.mapping(value_node, f"event {event_id!r}", _EVENT_KEYS,
                               ("name", "date", "parties", "aliases", "source"))
            if len(fields) < len(_EVENT_KEYS):
                continue
            date_node = fields["date"][1]
            text = r.string(date_node, "date")
            m = re.fullmatch(r"(?:(\d{4})-)?(\d{2})-(\d{2})", text)
            if m is None:
                raise r.fail(date_node, f"event {event_id!r}: date must be YYYY-MM-DD or MM-DD, got {text!r}")
            year = int(m.group(1)) if m.group(1) else None
            month, day = int(m.group(2)), int(m.group(3))
            if not (1 <= month <= 12 and 1 <= day <= 31):
                raise r.fail(date_node, f"event {event_id!r}: no such date {text!r}")
            parties = [p for p, _ in r.strings(fields["parties"][1], "parties")]
            for party in parties:
                if party not in result.sides:
                    r.error(fields["parties"][1], f"event {event_id!r}: unknown party {party!r} "
                            f"(parties are sides from the actors file)")
            aliases = tuple(_aliases(r, fields["aliases"][1]))
            result.calendar.events[event_id] = CalendarEvent(
                event_id, r.string(fields["name"][1], "name"), month, day, year, tuple(parties), aliases,
                r.string(fields["source"][1], "source"), key_node.start_mark.line + 1)
        except _Invalid:
            continue


class _WatchlistReader:
    def __init__(self, r: _Reader, result: LoadResult) -> None:
        self.r = r
        self.result = result
        self.cues: dict[str, tuple[str, ...]] = {}

    def term(self, node: Node, where: str) -> Term:
        r = self.r
        if isinstance(node, yaml.ScalarNode):
            # A bare string is shorthand for a cue name.
            name = r.string(node, where)
            if name not in self.cues:
                raise r.fail(node, f"{where}: unknown cue {name!r}")
            return Term("cue", node.start_mark.line + 1, values=(name,))
        fields = r.mapping(node, where, _TERM_KEYS)
        line = node.start_mark.line + 1
        scope = "window"
        if "scope" in fields:
            scope = r.string(fields["scope"][1], "scope")
            if scope not in ("window", "document"):
                raise r.fail(fields["scope"][1], f"{where}: scope must be 'window' or 'document'")
        kinds = [k for k in ("cue", "phrase", "regex", "event", "any") if k in fields]
        is_actor = any(k in fields for k in ("actor", "side", "type"))
        if len(kinds) + int(is_actor) != 1:
            raise r.fail(node, f"{where}: a term needs exactly one of actor/side/type, cue, phrase, "
                         "regex, event or any")
        if is_actor:
            actors = tuple(self._names(fields, "actor", set(self.result.actors), "actor"))
            sides = tuple(self._names(fields, "side", set(self.result.sides), "side"))
            types = tuple(self._names(fields, "type", set(_ACTOR_TYPES), "actor type"))
            return Term("actor", line, actors=actors, sides=sides, types=types, scope=scope)
        kind = kinds[0]
        value_node = fields[kind][1]
        if kind == "any":
            children = tuple(r.each(r.items(value_node, f"{where}: any"),
                                    lambda n: self.term(n, f"{where}: any")))
            if not children:
                raise r.fail(value_node, f"{where}: any needs at least one term")
            return Term("any", line, children=children, scope=scope)
        if kind == "cue":
            names = tuple(self._names(fields, "cue", set(self.cues), "cue"))
            return Term("cue", line, values=names, scope=scope)
        if kind == "event":
            values = [v for v, _ in r.strings(value_node, "event")]
            if values != ["any"]:
                for v, n in r.strings(value_node, "event"):
                    if v not in self.result.calendar.events:
                        r.error(n, f"{where}: unknown calendar event {v!r}")
            return Term("event", line, values=tuple(values), scope=scope)
        if kind == "regex":
            pattern = r.string(value_node, "regex")
            try:
                compile_regex(pattern)
            except RegexError as exc:
                raise r.fail(value_node, f"{where}: regex does not compile: {exc} in {_short(pattern)!r} "
                             "(regexes use RE2 syntax: no look-around, no back-references)") from None
            return Term("regex", line, values=(pattern,), scope=scope)
        phrases = tuple(_aliases(r, value_node))
        return Term("phrase", line, values=phrases, scope=scope)

    def _names(self, fields: dict[str, tuple[Node, Node]], key: str, known: set[str], what: str) -> list[str]:
        if key not in fields:
            return []
        out = []
        for value, node in self.r.strings(fields[key][1], key):
            if value not in known:
                self.r.error(node, f"unknown {what} {value!r}")
            out.append(value)
        return out

    def rule(self, node: Node, what: str) -> Rule:
        r = self.r
        fields = r.mapping(node, what, _RULE_KEYS, ("id",))
        if "id" not in fields:
            raise _Invalid()
        rule_id = r.string(fields["id"][1], "id")
        where = f"rule {rule_id!r}"
        terms: list[Term] = []
        if "all" in fields:
            terms.extend(r.each(r.items(fields["all"][1], f"{where}: all"), lambda n: self.term(n, where)))
        if "any" in fields:
            children = tuple(r.each(r.items(fields["any"][1], f"{where}: any"),
                                    lambda n: self.term(n, where)))
            if children:
                terms.append(Term("any", fields["any"][0].start_mark.line + 1, children=children))
        if not terms:
            raise r.fail(node, f"{where}: needs 'all' and/or 'any' terms")
        none: tuple[Term, ...] = ()
        if "none" in fields:
            none = tuple(r.each(r.items(fields["none"][1], f"{where}: none"), lambda n: self.term(n, where)))
        within: str | int = "sentence"
        if "within" in fields:
            wnode = fields["within"][1]
            text = r.string(wnode, "within")
            if text.isdigit() and int(text) > 0:
                within = int(text)
            elif text in WINDOWS:
                within = text
            else:
                r.error(wnode, f"{where}: within must be sentence, paragraph, document or a number of words")
        weight = r.number(fields["weight"][1], "weight") if "weight" in fields else 1.0
        anniversary = False
        if "anniversary" in fields:
            flag = r.string(fields["anniversary"][1], "anniversary")
            if flag not in ("true", "false"):
                r.error(fields["anniversary"][1], f"{where}: anniversary must be true or false")
            anniversary = flag == "true"
        prefilter = tuple(p for p, _ in r.strings(fields["prefilter"][1], "prefilter")) \
            if "prefilter" in fields else ()
        if all(_only_regex(t) for t in terms) and not prefilter:
            r.error(node, f"{where}: a rule made only of regexes needs a 'prefilter' list of plain phrases "
                    "(the regex runs only on items containing one)")
        if anniversary and not any(_has_kind(t, "event") for t in terms):
            r.error(node, f"{where}: anniversary: true needs an 'event' term to resolve")
        return Rule(rule_id, node.start_mark.line + 1, tuple(terms), none, within, weight, anniversary, prefilter)

    def example(self, node: Node, *, expect: bool) -> Example:
        r = self.r
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            return Example(r.string(node, "example"), "", "", None, expect, line)
        fields = r.mapping(node, "example", _EXAMPLE_KEYS, ("title",))
        if "title" not in fields:
            raise _Invalid()
        get = {k: r.string(v[1], k) for k, v in fields.items()}
        if "on" in get and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", get["on"]):
            r.error(fields["on"][1], "example 'on' must be a date YYYY-MM-DD")
        return Example(get["title"], get.get("summary", ""), get.get("content", ""), get.get("on"), expect, line)

    def read(self, top: dict[str, tuple[Node, Node]], root: Node) -> Watchlist:
        r = self.r
        for key in ("name", "title", "version", "severity", "rules"):
            if key not in top:
                r.error(root, f"watchlist: missing required key {key!r}")
        name = r.string(top["name"][1], "name") if "name" in top else ""
        if name and not _ID.match(name):
            r.error(top["name"][1], f"name {name!r} must be lower_snake_case")
        severity = r.string(top["severity"][1], "severity") if "severity" in top else "medium"
        if severity not in SEVERITIES:
            r.error(top["severity"][1], f"severity must be one of {', '.join(SEVERITIES)}")
        weights = dict(DEFAULT_FIELD_WEIGHTS)
        if "fields" in top:
            for key, (_, vnode) in r.mapping(top["fields"][1], "fields", FIELDS).items():
                weights[key] = r.number(vnode, f"fields.{key}")
        if "cues" in top:
            cues_node = top["cues"][1]
            if not isinstance(cues_node, yaml.MappingNode):
                r.error(cues_node, "cues must be a mapping of name -> list of phrases")
            else:
                for key_node, value_node in cues_node.value:
                    try:
                        cue = r.string(key_node, "cue name")
                        self.cues[cue] = tuple(_aliases(r, value_node))
                    except _Invalid:
                        continue
        rules: list[Rule] = []
        if "rules" in top:
            rules = list(r.each(r.items(top["rules"][1], "rules"), lambda n: self.rule(n, "rule")))
            if not rules and not r.errors:
                r.error(top["rules"][1], "rules must not be empty")
        exclude: list[Rule] = []
        if "exclude" in top:
            exclude = list(r.each(r.items(top["exclude"][1], "exclude"), lambda n: self.rule(n, "exclude")))
        examples: list[Example] = []
        if "examples" in top:
            ex = r.mapping(top["examples"][1], "examples", ("match", "no_match"))
            for key, expect in (("match", True), ("no_match", False)):
                if key in ex:
                    examples.extend(r.each(r.items(ex[key][1], f"examples.{key}"),
                                           partial(self.example, expect=expect)))
        ids = [rule.id for rule in (*rules, *exclude)]
        for rule in (*rules, *exclude):
            if ids.count(rule.id) > 1:
                r.error(None, f"rule id {rule.id!r} is used more than once")
                break
        return Watchlist(
            name=name,
            title=r.string(top["title"][1], "title") if "title" in top else name,
            version=r.string(top["version"][1], "version") if "version" in top else "",
            severity=severity,
            description=r.string(top["description"][1], "description", nonempty=False)
            if "description" in top else "",
            threshold=r.number(top["threshold"][1], "threshold") if "threshold" in top else 0.5,
            field_weights=weights,
            cues=self.cues,
            rules=tuple(rules),
            exclude=tuple(exclude),
            examples=tuple(examples),
            path=r.path,
            line=root.start_mark.line + 1,
        )


def _aliases(r: _Reader, node: Node) -> list[str]:
    out = []
    for alias, item in r.strings(node, "aliases"):
        problem = check_alias(alias)
        if problem:
            r.error(item, problem)
        else:
            out.append(alias)
    return out


def _only_regex(term: Term) -> bool:
    if term.kind == "any":
        return all(_only_regex(c) for c in term.children)
    return term.kind == "regex"


def _has_kind(term: Term, kind: str) -> bool:
    return term.kind == kind or any(_has_kind(c, kind) for c in term.children)


# ---------------------------------------------------------------------------------------------
# The folder.


def _compose(path: Path, result: LoadResult) -> tuple[_Reader, Node] | None:
    r = _Reader(str(path))
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            result.errors.append(WatchlistError(f"file is larger than {MAX_FILE_BYTES // 2**20} MiB", path=str(path)))
            return None
        text = path.read_text(encoding="utf-8")
        root = safe_yaml.compose(text)
    except OSError as exc:
        result.errors.append(WatchlistError(f"cannot read file: {exc.strerror}", path=str(path)))
        return None
    except UnicodeDecodeError:
        result.errors.append(WatchlistError("file is not UTF-8 text", path=str(path)))
        return None
    except yaml.YAMLError as exc:
        reason, line = safe_yaml.describe(exc)
        result.errors.append(WatchlistError(f"invalid YAML: {reason}", path=str(path), line=line))
        return None
    if root is None:
        result.errors.append(WatchlistError("file is empty", path=str(path), line=1))
        return None
    return r, root


def _sort_file(path: Path, result: LoadResult,
               by_kind: dict[str, list[tuple[_Reader, Node, dict[str, tuple[Node, Node]]]]]) -> None:
    """Read one file's tree and file it under its ``kind:``; problems go to ``result.errors``."""
    composed = _compose(path, result)
    if composed is None:
        return
    r, root = composed
    if not isinstance(root, yaml.MappingNode):
        result.errors.append(WatchlistError("top level must be a mapping with a 'kind:' key",
                                            path=str(path), line=root.start_mark.line + 1))
        return
    kind_node = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "kind"), None)
    kind = kind_node.value if isinstance(kind_node, yaml.ScalarNode) else None
    if kind not in by_kind:
        result.errors.append(WatchlistError(
            "top-level 'kind:' must be one of watchlist, actors, calendar", path=str(path),
            line=(kind_node or root).start_mark.line + 1))
        return
    allowed = {"actors": ("kind", "sides", "actors"), "calendar": ("kind", "events"),
               "watchlist": _WATCHLIST_KEYS}[kind]
    top = r.mapping(root, kind, allowed)
    by_kind[kind].append((r, root, top))


def _unexpected(path: str, exc: BaseException) -> WatchlistError:
    """A problem the checks above did not foresee, reported like any other (no traceback)."""
    detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no detail"
    return WatchlistError(f"this file could not be read ({detail}); the other files are unaffected", path=path)


def load_watchlists(directory: Path) -> LoadResult:
    """Load every ``*.yaml``/``*.yml`` file in ``directory``; never raises for a bad file.

    Actors and calendar files are read first, so watchlists in any file order can refer to
    them. A watchlist with any error is left out and its errors are in ``result.errors``.
    """
    result = LoadResult()
    directory = Path(directory)
    try:
        paths = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except OSError as exc:
        result.errors.append(WatchlistError(f"cannot read watchlist folder: {exc.strerror}",
                                            path=str(directory)))
        return result
    by_kind: dict[str, list[tuple[_Reader, Node, dict[str, tuple[Node, Node]]]]] = {
        "actors": [], "calendar": [], "watchlist": []}
    for path in paths:
        try:
            _sort_file(path, result, by_kind)
        except Exception as exc:  # a file must never take the others (or the caller) down with it
            result.errors.append(_unexpected(str(path), exc))

    for kind, reader in (("actors", _read_actors), ("calendar", _read_calendar)):
        for r, _root, top in by_kind[kind]:
            try:
                reader(r, top, result)
            except _Invalid:
                pass
            except Exception as exc:
                r.errors.append(_unexpected(r.path, exc))
            result.errors.extend(r.errors)

    names: set[str] = set()
    for r, root, top in by_kind["watchlist"]:
        try:
            watchlist = _WatchlistReader(r, result).read(top, root)
        except _Invalid:
            watchlist = None
        except Exception as exc:
            r.errors.append(_unexpected(r.path, exc))
            watchlist = None
        if watchlist is not None and watchlist.name in names:
            r.error(top["name"][1], f"watchlist name {watchlist.name!r} is already used by another file")
        result.errors.extend(r.errors)
        if watchlist is not None and not r.errors:
            names.add(watchlist.name)
            result.watchlists.append(watchlist)
    return result


def watchlist_versions(result: LoadResult) -> dict[str, str]:
    """``{name: "version:fingerprint"}`` of the lists in ``result``, stored with the items matched against
    them; the same in every process that loads the same files (the parse workers compare them). The
    fingerprint changes with any edit that can change what matches (rules, cues, threshold, or the
    shared actors and calendar)."""
    shared = repr(sorted(result.actors.items())) + repr(result.calendar)
    return {
        w.name: f"{w.version}:" + hashlib.sha256(
            (repr(dataclasses.replace(w, line=0, examples=(), path="")) + shared).encode()).hexdigest()[:12]
        for w in result.watchlists
    }
