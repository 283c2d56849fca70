"""Turning stored, hostile feed text into safe HTML and XML.

Feed text is attacker-controlled: every piece is escaped, highlights are
inserted around escaped segments only, and links are kept only when they are
http(s).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from markupsafe import Markup, escape

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Text without the characters XML 1.0 cannot carry (control characters, lone surrogates)."""
    return _XML_INVALID.sub("", text)


def _spans(text: str, evidence: Sequence[dict[str, Any]], field: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for ev in evidence:
        if ev.get("field") != field:
            continue
        start, end, quoted = ev.get("start"), ev.get("end"), ev.get("text")
        if (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)
                and (not isinstance(quoted, str) or text[start:end] == quoted)):
            spans.append((start, end))
        elif isinstance(quoted, str) and quoted:  # offsets from another version of the text: find the words
            found = text.find(quoted)
            if found < 0 and len(text.lower()) == len(text):  # search terms match whatever the case
                found = text.lower().find(quoted.lower())
            if found >= 0:
                spans.append((found, found + len(quoted)))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, evidence: Sequence[dict[str, Any]], field: str) -> Markup:
    """``text`` escaped, with the evidence found in ``field`` wrapped in ``<mark>``."""
    out: list[str] = []
    position = 0
    for start, end in _spans(text, evidence, field):
        out.append(str(escape(text[position:start])))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        position = end
    out.append(str(escape(text[position:])))
    return Markup("".join(out))


def evidence_note(ev: dict[str, Any]) -> str:
    """One line of plain text saying what a piece of evidence is (escaped when rendered)."""
    kind = str(ev.get("kind") or "evidence")
    text = str(ev.get("text") or "")
    line = f"{kind}: {text}"
    if ev.get("actor"):
        line += f" (actor {ev['actor']})"
    elif ev.get("cue"):
        line += f" (cue {ev['cue']})"
    if kind == "anniversary":
        line += f" → {ev.get('event_name') or ev.get('event')}"
        ordinal = ev.get("ordinal")
        if ordinal is not None:
            verdict = {True: "as expected", False: f"expected {ev.get('expected_ordinal')}",
                       None: "unchecked"}.get(ev.get("ordinal_ok"), "unchecked")
            line += f", {_ordinal(ordinal)} ({verdict})"
    return line


def _ordinal(n: Any) -> str:
    from monitor.operations.calendar import ordinal

    return ordinal(n) if isinstance(n, int) else str(n)
