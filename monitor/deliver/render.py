"""Rendering digests: email trio from Jinja2 templates, webhook payloads built in code.

Pure: values in, strings/bytes out. Prose lives in ``monitor/templates/``; JSON
structure is built here. HTML is autoescaped and undefined names fail loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined, select_autoescape

from monitor.deliver.digest import Digest, spell

PAYLOAD_VERSION = 1


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@cache
def _environment(root: str | None) -> Environment:
    """Templates ship inside the package (``monitor/templates``), so an installed wheel renders
    digests like a checkout does; ``root`` points at another folder (tests, customised prose)."""
    loader: BaseLoader = FileSystemLoader(root) if root is not None else PackageLoader("monitor", "templates")
    return Environment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace (CR/LF included) so a value can never span lines."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def list_name(digest: Digest, watchlist: str) -> str:
    """How a watchlist is named in prose: its name with spaces, in the subscription's spelling."""
    return spell(watchlist.replace("_", " "), digest.language)


def render_email(digest: Digest, *, templates: Path | None = None) -> RenderedEmail:
    env = _environment(str(templates) if templates is not None else None)
    follows = digest.follows or tuple(digest.watchlists)
    context: dict[str, Any] = {
        "digest": digest,
        "count": len(digest.entries),
        "section_titles": [spell(s.title, digest.language) for s in digest.sections],
        "list_names": [list_name(digest, s.watchlist) for s in digest.sections],
        "name": lambda watchlist: list_name(digest, watchlist),
        "spell": lambda text: spell(text, digest.language),
        "follows": [spell(digest.titles.get(w) or w.replace("_", " "), digest.language) for w in follows],
        "when": _when,
    }
    subject = one_line(env.get_template("email/digest.subject.txt").render(context), 180)
    context["subject"] = subject
    text = env.get_template("email/digest.body.txt").render(context)
    html = env.get_template("email/digest.body.html").render(context)
    return RenderedEmail(subject=subject, text=text, html=html)


def _when(moment: datetime) -> str:
    """A time with its zone, so a reader in another zone is never an hour off: ``2024-06-10 09:00 KST``."""
    zone = moment.strftime("%Z") or moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} {zone}".strip()


def webhook_payload(digest: Digest, *, delivery_key: str) -> dict[str, Any]:
    """The versioned JSON payload (docs/webhook-payload.md): every hit with its evidence."""
    items = []
    for section in digest.sections:
        for entry in section.entries:
            items.append({
                "item_id": entry.item_id,
                "title": entry.title,
                "link": entry.link,
                "source": entry.source,
                "published": entry.published.isoformat() if entry.published else None,
                "summary": entry.summary,
                "watchlists": list(entry.watchlists),
                "hit_ids": list(entry.hit_ids),
                "follow_up": entry.follow_up,
                "follow_up_of": None if entry.follow_up_of is None else {
                    "item_id": entry.follow_up_of.item_id, "title": entry.follow_up_of.title,
                    "link": entry.follow_up_of.link, "source": entry.follow_up_of.source},
                "also_reported_by": [
                    {"item_id": a.item_id, "title": a.title, "link": a.link, "source": a.source,
                     "published": a.published.isoformat() if a.published else None, "hit_ids": list(a.hit_ids)}
                    for a in entry.also
                ],
                "reasons": [
                    {"watchlist": r.watchlist, "score": round(r.score, 4), "phrases": list(r.phrases),
                     "anniversary": r.anniversary, "evidence": [dict(ev) for ev in r.evidence]}
                    for r in entry.reasons
                ],
            })
    return {
        "type": "monitor.digest",
        "version": PAYLOAD_VERSION,
        "id": delivery_key,
        "subscription": digest.subscription,
        "generated_at": digest.generated_at.isoformat(),
        "watchlists": digest.watchlists,
        "count": len(items),
        "items": items,
    }


def render_webhook(digest: Digest, *, delivery_key: str, fmt: str = "json") -> bytes:
    if fmt != "json":
        raise ValueError(f"unknown webhook format {fmt!r}")
    payload = webhook_payload(digest, delivery_key=delivery_key)
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
