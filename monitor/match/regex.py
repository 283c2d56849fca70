"""User regexes from watchlists, compiled with RE2: matching time is linear in the text.

Python's ``re`` backtracks: ``(\\w+\\s?)+:`` takes minutes on a 32-character title. RE2
(google-re2) never backtracks, so a regex rule costs time proportional to the text it reads,
whatever the pattern. The price is RE2 syntax: no look-around and no back-references;
patterns using them are refused when the watchlist is read, with file and line.

RE2's ``\\w`` and ``\\d`` know only ASCII, while watchlists match Korean, Chinese and Russian
text; they are rewritten to their Unicode meaning (any letter, digit or ``_``) so a pattern
means what it meant under ``re``. ``\\b`` stays ASCII-only (documented in docs/watchlists.md).
"""

from __future__ import annotations

from typing import Any

import re2

_WORD = r"\p{L}\p{N}_"
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the reason goes into the watchlist error, not to stderr


class RegexError(ValueError):
    """The pattern cannot be compiled by RE2; the message says why."""


def unicode_classes(pattern: str) -> str:
    """``pattern`` with ``\\w``, ``\\W``, ``\\d``, ``\\D`` given their Unicode meaning for RE2."""
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append(_class_escape(nxt, in_class))
            i += 2
            continue
        if in_class:
            if ch == "[" and pattern.startswith("[:", i):  # POSIX class such as [:alpha:]
                end = pattern.find(":]", i + 2)
                if end != -1:
                    out.append(pattern[i:end + 2])
                    i = end + 2
                    continue
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # A "]" right after "[" or "[^" is a literal, not the end of the class.
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _class_escape(letter: str, in_class: bool) -> str:
    if letter == "w":
        return _WORD if in_class else f"[{_WORD}]"
    if letter == "d":
        return r"\p{Nd}"
    if letter == "W" and not in_class:
        return f"[^{_WORD}]"
    if letter == "D" and not in_class:
        return r"\P{Nd}"
    return "\\" + letter


def compile_regex(pattern: str) -> Any:
    """The RE2 pattern for a watchlist regex; RegexError with RE2's reason when it cannot compile."""
    try:
        return re2.compile(unicode_classes(pattern), _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(str(reason)) from None
