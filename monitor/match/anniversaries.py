"""The reference calendar of anniversaries, ordinal reading and resolution, upcoming round dates.

Owns: the ``CalendarEvent`` / ``Calendar`` values loaded from ``watchlists/calendar.yaml``,
reading an ordinal ("75th", "seventy-fifth", "75 years", "75周年", "75주년", "75돐",
"75-летие", "七十五周年") out of case-folded text, deciding which calendar event a
mention resolved to given the reference date, and listing upcoming round-number
anniversaries.

Must not: read the clock (the reference date is always a parameter), do I/O, or know
about watchlists or the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One reference event: the date it happened and who it ties together."""

    id: str
    name: str
    month: int
    day: int
    year: int | None
    parties: tuple[str, ...]
    aliases: tuple[str, ...]
    source: str
    line: int | None = None

    def occurrence(self, year: int) -> date:
        """The anniversary date in ``year`` (29 February falls on the 28th in common years)."""
        try:
            return date(year, self.month, self.day)
        except ValueError:
            return date(year, self.month, self.day - 1)

    def nearest_occurrence(self, on: date) -> date:
        """The occurrence of this date closest to ``on`` (last year's, this year's or next year's)."""
        options = [self.occurrence(on.year + k) for k in (-1, 0, 1)]
        return min(options, key=lambda d: abs((d - on).days))

    def expected_ordinal(self, on: date) -> int | None:
        """Which anniversary a text dated ``on`` is most likely about (None when the year is unknown)."""
        if self.year is None:
            return None
        return self.nearest_occurrence(on).year - self.year


@dataclass(frozen=True, slots=True)
class Calendar:
    """All reference events by id."""

    events: dict[str, CalendarEvent] = field(default_factory=dict)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.events

    def __len__(self) -> int:
        return len(self.events)


@dataclass(frozen=True, slots=True)
class Upcoming:
    """A round-number anniversary falling inside a window."""

    date: date
    event: str
    name: str
    years: int
    parties: tuple[str, ...]


def upcoming(calendar: Calendar, today: date, days: int) -> list[Upcoming]:
    """Round (multiple-of-5) anniversaries from ``today`` to ``today + days`` inclusive, by date."""
    end = today + timedelta(days=days)
    found: list[Upcoming] = []
    for event in calendar.events.values():
        if event.year is None:
            continue
        for year in range(today.year, end.year + 1):
            when = event.occurrence(year)
            years = year - event.year
            if today <= when <= end and years > 0 and years % 5 == 0:
                found.append(Upcoming(when, event.id, event.name, years, event.parties))
    found.sort(key=lambda u: (u.date, u.event))
    return found


# ---------------------------------------------------------------------------------------------
# Ordinals. Text arrives case-folded (see engine.normalise), so patterns are lower case.

_UNIT_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9,
}
_ORD_WORDS = {
    **_UNIT_ORDINALS,
    "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14, "fifteenth": 15,
    "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19, "twentieth": 20,
    "thirtieth": 30, "fortieth": 40, "fiftieth": 50, "sixtieth": 60, "seventieth": 70,
    "eightieth": 80, "ninetieth": 90, "hundredth": 100, "centenary": 100, "centennial": 100,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}
# An ordinal only counts when it is attached to an anniversary word ("75th anniversary",
# "75th founding anniversary", "marks 75 years", "seventy-fifth anniversary"), so that
# "the second visit" or "20 diplomats" are never read as ordinals. Hyphens arrive as spaces.
_ANNIV_TAIL = r"(?:\s+[\w']+){0,2}?\s+(?:anniversary|anniversaries|birthday|years?\b|jubilee)"
_TENS_RE = "|".join(_TENS)
_WORD_ORDINAL = re.compile(
    r"\b(?:(?P<tens>" + _TENS_RE + r")\s(?P<unit>" + "|".join(_UNIT_ORDINALS) + r")"
    r"|(?P<single>" + "|".join(sorted(_ORD_WORDS, key=len, reverse=True)) + r")"
    r"|(?P<card>" + _TENS_RE + r")(?=\s+years?\b))\b"
    r"(?=" + _ANNIV_TAIL + r"|\s+years?\b|(?<=centenary)|(?<=centennial))"
)
_DIGIT_ORDINAL = re.compile(
    r"(?<![\d.,])(?P<n>\d{1,3})(?:"
    r"(?:st|nd|rd|th)\b(?=" + _ANNIV_TAIL + r")"
    r"|(?=\s+years?\b)"
    r"|\s*(?:周年|週年|주년|돐|돌\b)"
    r"|\s*(?:летие|летия|летию|летием|летнего|летней)"
    r"|\s*(?:й|я|ю|ой|ую|ей)\s+(?:годовщин|юбиле)"
    r")"
)

_ZH_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
              "八": 8, "九": 9}
_ZH_ORDINAL = re.compile(r"(?P<n>[一二两三四五六七八九十百〇零]{1,5})(?:周年|週年)")


def _zh_number(text: str) -> int | None:
    total, current = 0, 0
    for ch in text:
        if ch == "百":
            total += (current or 1) * 100
            current = 0
        elif ch == "十":
            total += (current or 1) * 10
            current = 0
        elif ch in _ZH_DIGITS:
            current = current * 10 + _ZH_DIGITS[ch] if ch in "零〇" else _ZH_DIGITS[ch]
        else:
            return None
    total += current
    return total or None


@dataclass(frozen=True, slots=True)
class Ordinal:
    value: int
    start: int
    end: int


def find_ordinals(text: str) -> list[Ordinal]:
    """Every ordinal-looking number in case-folded ``text``, with its span, in text order."""
    found: list[Ordinal] = []
    for m in _DIGIT_ORDINAL.finditer(text):
        value = int(m.group("n"))
        if 0 < value <= 200:
            found.append(Ordinal(value, m.start(), m.end()))
    for m in _ZH_ORDINAL.finditer(text):
        zh = _zh_number(m.group("n"))
        if zh:
            found.append(Ordinal(zh, m.start(), m.end()))
    if any(c.isascii() and c.isalpha() for c in text):
        for m in _WORD_ORDINAL.finditer(text):
            if m.group("single"):
                value = _ORD_WORDS[m.group("single")]
            elif m.group("card"):
                value = _TENS[m.group("card")]
            else:
                value = _TENS[m.group("tens")] + _UNIT_ORDINALS[m.group("unit")]
            found.append(Ordinal(value, m.start(), m.end()))
    found.sort(key=lambda o: o.start)
    return found


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which calendar event a mention resolved to, and whether its ordinal fits the date."""

    event: CalendarEvent
    ordinal: int | None
    expected_ordinal: int | None
    ordinal_ok: bool | None

    def evidence(self) -> dict[str, object]:
        return {
            "event": self.event.id,
            "event_name": self.event.name,
            "ordinal": self.ordinal,
            "expected_ordinal": self.expected_ordinal,
            "ordinal_ok": self.ordinal_ok,
        }


def resolve(
    candidates: list[CalendarEvent],
    ordinals: list[int],
    on: date | None,
    sides: frozenset[str],
) -> Resolution | None:
    """Pick the candidate event that best explains a mention.

    ``ordinals`` are the numbers read near the mention (closest first); ``sides`` are the
    sides the text names. An event whose ordinal disagrees with every number in the text
    loses to any candidate that agrees, and is otherwise returned with ``ordinal_ok`` false.
    Returns None when there is no candidate.
    """
    best: tuple[float, int, Resolution] | None = None
    for rank, event in enumerate(candidates):
        # The nearest occurrence once per candidate: it gives the expected ordinal and the gap.
        nearest = event.nearest_occurrence(on) if on is not None else None
        expected = nearest.year - event.year if nearest is not None and event.year is not None else None
        ordinal: int | None = None
        ok: bool | None = None
        score = 0.0
        if ordinals and expected is not None:
            if expected in ordinals:
                ordinal, ok = expected, True
                score += 4
            else:
                ordinal, ok = ordinals[0], False
        elif ordinals and on is None and event.year is not None:
            ordinal = ordinals[0]
        elif ordinals:
            ordinal = ordinals[0]
        if ok is False:
            # Kept, but any candidate whose ordinal fits the year wins ("30th anniversary of ties"
            # in 2022 is the ROK–PRC one when that is a candidate). A lone mismatch is still a
            # hit, recorded with ordinal_ok false: a late report or a wrong date must not hide it.
            score -= 6
        if nearest is not None and on is not None:
            gap = abs((nearest - on).days)
            score += 2 if gap <= 14 else 1 if gap <= 60 else 0
        score += len(sides.intersection(event.parties))
        key = (score, -rank)
        if best is None or key > (best[0], best[1]):
            best = (score, -rank, Resolution(event, ordinal, expected, ok))
    return best[2] if best else None
