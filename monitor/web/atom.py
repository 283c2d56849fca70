"""Hits as an Atom feed (RFC 4287), built with ElementTree so every text is escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import datetime

from monitor.operations import HitView
from monitor.web.render import evidence_note, xml_safe
from monitor.web.security import safe_href

ATOM = "http://www.w3.org/2005/Atom"


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    element.text = xml_safe(text)
    return element


def hits_feed(name: str, hits: Sequence[HitView], *, self_url: str, id_base: str, now: datetime,
              kind: str = "watchlist") -> bytes:
    """An Atom document of a watchlist's (or, with ``kind="subscription"``, a subscription's) hits: one entry
    per hit, its evidence in the content."""
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "id", f"{id_base}:{kind}:{name}")
    _text(feed, "title", f"monitor: {name}" if kind == "watchlist" else f"monitor: {kind} {name}")
    _text(feed, "updated", _iso(max((h.created_at for h in hits), default=now)))
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "self", "href": xml_safe(self_url)})
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", "monitor")
    _text(feed, "generator", "monitor")
    for hit in hits:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        _text(entry, "id", f"{id_base}:hit:{hit.hit_id}")
        _text(entry, "title", hit.title or "(untitled)", type="text")
        _text(entry, "updated", _iso(hit.created_at))
        if hit.published_at is not None:
            _text(entry, "published", _iso(hit.published_at))
        href = safe_href(hit.link)
        if href:
            ET.SubElement(entry, f"{{{ATOM}}}link", {"rel": "alternate", "href": xml_safe(href)})
        _text(entry, "summary", hit.summary[:1000], type="text")
        lines = [f"{hit.watchlist} (score {hit.score:g}) — {hit.feed}"]
        lines += [evidence_note(ev) for ev in hit.evidence]
        if hit.also_reported_by:
            lines.append("also reported by: " + ", ".join(hit.also_reported_by))
        _text(entry, "content", "\n".join(lines), type="text")
        ET.SubElement(entry, f"{{{ATOM}}}category", {"term": hit.watchlist})
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)
