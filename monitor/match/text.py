"""Text as the matcher reads it: HTML tags blanked, case folded, dashes and underscores as
spaces, curly apostrophes straightened, with a map back to the original offsets.

Watchlist phrases go through the same normalisation when the matcher is compiled, so a phrase
and the text it names meet in one form. Pure functions, no state but a memo of phrases.
"""

from __future__ import annotations

import re
from functools import lru_cache

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


def needs_boundary(ch: str) -> bool:
    # Alphabetic scripts need word boundaries; Chinese and Korean do not (Korean particles
    # attach to the noun: 중국과, 조선은).
    return ch.isalnum() and not _is_cjk(ch)
