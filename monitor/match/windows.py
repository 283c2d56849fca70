"""Hits and the windows they fall in: sentences, paragraphs and words of one field.

A field's sentence ends, line breaks and word gaps are found once, the first time a rule
with such a window asks, and each hit's sentence is then a bisection. Items whose keys
trigger no rule never get this far.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass


@dataclass(slots=True)
class Hit:
    field: int
    start: int  # offsets in the normalised field text
    end: int
    atom: int
    sentence: int = -1


@dataclass(slots=True)
class FieldText:
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
        return bisect_right(self.sentence_ends(), pos)

    def sentence_ends(self) -> list[int]:
        """Where each sentence of the field ends, found on the first call."""
        if self._sentences is None:
            norm = self.norm
            ends = []
            for m in _SENTENCE_END.finditer(norm):
                # Not after an abbreviation or an initial: "Mr. Kim", "N. Korea", "U.S. envoy".
                if norm[m.start()] == "." and _ABBREVIATION.search(norm, max(0, m.start() - 4), m.start()):
                    continue
                ends.append(m.end())
            self._sentences = ends
        return self._sentences

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
_WORD_GAP = re.compile(r"\s+|[\u3400-\u9fff]{2}")
