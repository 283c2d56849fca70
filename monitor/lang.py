"""Guess an item's language from the scripts its text is written in.

Pure and cheap: the feeds monitor reads are Korean, Chinese, Japanese, Russian and
English (or another Latin-script language), and those are told apart by script
alone. Good enough to filter hits by language; not a language identifier.
"""

from __future__ import annotations

_SAMPLE = 2000  # characters looked at: the title and the start of the summary decide
# Every byte but the ASCII letters: deleting them counts the letters of an ASCII text in C (most
# text polled is English; the character loop below costs about 100 times more).
_NOT_ASCII_LETTERS = bytes(b for b in range(256) if not chr(b).isalpha() or b >= 0x80)


def script_language(text: str) -> str | None:
    """``ko``, ``ja``, ``zh``, ``ru``, ``en`` (any Latin script) or None when the text has no letters."""
    sample = text[:_SAMPLE]
    if sample.isascii():
        return "en" if sample.encode("ascii").translate(None, _NOT_ASCII_LETTERS) else None
    hangul = kana = han = cyrillic = latin = 0
    for char in sample:
        code = ord(char)
        if code < 0x80:
            latin += char.isalpha()
        elif 0xAC00 <= code <= 0xD7A3 or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
            hangul += 1
        elif 0x3040 <= code <= 0x30FF:
            kana += 1
        elif 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
            han += 1
        elif 0x0400 <= code <= 0x04FF:
            cyrillic += 1
        elif char.isalpha():
            latin += 1
    # Han characters appear in Japanese (and old Korean) text too: kana or hangul decide.
    counts = {"ko": hangul, "ja": kana, "zh": han, "ru": cyrillic, "en": latin}
    if hangul and hangul * 4 >= han:
        counts["ko"] += han
    elif kana:
        counts["ja"] += han
    # CJK characters carry a word each; Latin and Cyrillic letters a fraction of one.
    weights = {"ko": 3, "ja": 3, "zh": 3, "ru": 1, "en": 1}
    best = max(counts, key=lambda k: counts[k] * weights[k])
    return best if counts[best] else None
