"""The script-language guess counts characters with the regex engine; it must say what counting them one
by one says, for any text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.lang import _SAMPLE, script_language


def one_by_one(text: str) -> str | None:
    """The definition, a character at a time."""
    hangul = kana = han = cyrillic = latin = 0
    for char in text[:_SAMPLE]:
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
    counts = {"ko": hangul, "ja": kana, "zh": han, "ru": cyrillic, "en": latin}
    if hangul and hangul * 4 >= han:
        counts["ko"] += han
    elif kana:
        counts["ja"] += han
    weights = {"ko": 3, "ja": 3, "zh": 3, "ru": 1, "en": 1}
    best = max(counts, key=lambda k: counts[k] * weights[k])
    return best if counts[best] else None


# Every script the guess tells apart, their edges, and letters and non-letters of others.
_EDGES = "".join(map(chr, [0x40, 0x41, 0x5A, 0x5B, 0x7A, 0x7F, 0x80, 0xE9, 0x3FF, 0x400, 0x482, 0x4FF, 0x500,
                           0x10FF, 0x1100, 0x11FF, 0x1200, 0x303F, 0x3040, 0x30FB, 0x30FC, 0x30FF, 0x3100,
                           0x312F, 0x3130, 0x318F, 0x3190, 0x33FF, 0x3400, 0x4DBF, 0x4DC0, 0x4DFF, 0x4E00,
                           0x9FFF, 0xA000, 0xABFF, 0xAC00, 0xD7A3, 0xD7A4, 0x2160, 0xB2, 0x10400]))
_TEXT = st.one_of(st.text(alphabet=st.one_of(st.sampled_from(_EDGES), st.characters()), max_size=300),
                  st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=300))  # ASCII text: its own path


@settings(max_examples=500)
@given(_TEXT)
def test_the_guess_agrees_with_counting_one_character_at_a_time(text: str) -> None:
    assert script_language(text) == one_by_one(text)


@given(st.text(alphabet=st.sampled_from(_EDGES + "김정은中方ロシアВизит "), min_size=_SAMPLE - 50,
               max_size=_SAMPLE + 200))
def test_only_the_first_characters_count(text: str) -> None:
    assert script_language(text) == one_by_one(text)
