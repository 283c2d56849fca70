"""Chat webhook formats: a digest → one or more JSON bodies for Slack, Discord, Teams or Mattermost.

Owns the table of payload builders (``CHAT_FORMATS``), per-platform escaping of
feed text, link sanitising, and splitting a long digest into bodies that each
respect the platform's limits. Every entry lands in exactly one body, in digest
order; a split body says "part i/n".

Pure: values in, bytes out. No I/O, no clock, no settings, no HTTP client.
Sending, retrying and idempotency keys per body belong to the outbox and the
webhook transport.

Feed text (titles, sources, matched phrases) is hostile input: it is flattened
to one line, clipped *after* escaping so an escape is never cut in half, and
escaped for the target so it cannot mention, link or format anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from monitor.deliver.digest import AlsoReported, Digest, DigestEntry, DigestSection

__all__ = ["CHAT_FORMATS", "Builder", "ChatFormat", "render_chat", "safe_url"]

APP_NAME = "monitor"
ZWSP = "\u200b"  # after "@" so no platform reads a mention, whatever its parser settings
TIME_FORMAT = "%Y-%m-%d %H:%M"

# Caps on feed-derived pieces, chosen so one entry always fits an empty body on every platform.
MAX_URL = 1000  # longer links are shown unlinked rather than blowing a block or embed limit
MAX_TITLE = 250
MAX_SOURCE = 100
MAX_WHY = 250  # matched phrases and anniversary text, per watchlist
MAX_REASONS = 4  # further watchlists are summarised as "+N more"
MAX_HEADING = 120
MAX_LIST_NAME = 60

SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT = 3000  # section text, context element and top-level fallback
SLACK_MAX_HEADER = 150
SLACK_MAX_ENTRIES = 40

DISCORD_MAX_EMBEDS = 10
DISCORD_MAX_TITLE = 256
DISCORD_MAX_DESCRIPTION = 4096
DISCORD_MAX_FOOTER = 2048
DISCORD_MAX_TOTAL = 6000  # title + description + footer over all embeds of one message
DISCORD_MAX_CONTENT = 2000

TEAMS_MAX_BYTES = 27_000  # Workflows rejects cards over ~28 KB; keep headroom for the envelope
TEAMS_MAX_ENTRIES = 40

MATTERMOST_MAX_TEXT = 16_383
MATTERMOST_MAX_ENTRIES = 40

# Per-character escape tables for str.translate; per character so clipping can stop between escapes.
_SLACK = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;"}
_DISCORD = {ord(c): "\\" + c for c in "\\*_~`|>#[]()<"} | {ord("@"): "@" + ZWSP}
_TEAMS = {ord(c): "\\" + c for c in "\\*_~`[]()#>"}
_MATTERMOST = _SLACK | {ord(c): "\\" + c for c in "\\*_~`[]()#|!"} | {ord("@"): "@" + ZWSP}

# Characters kept as-is in links; everything else (space, | < > ( ) " ` \ { } ^, non-ASCII) is
# percent-encoded so a link cannot close Slack's <url|label> or a Markdown (url) early.
_URL_SAFE = "/:?#[]@!$&'*+,;=%~"


def units(text: str) -> int:
    """Length as platforms count it in the worst case: UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int, table: Mapping[int, str]) -> str:
    """Flatten ``text`` to one line, escape it with ``table`` and clip to ``limit`` units, ending in "…"."""
    flat = " ".join(text.split())
    escaped = flat.translate(table)
    if units(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for ch in flat:
        piece = table.get(ord(ch), ch)
        size = units(piece)
        if used + size > limit - 1:
            break
        out.append(piece)
        used += size
    return "".join(out) + "…"


def safe_url(link: str | None) -> str | None:
    """An http(s) link with delimiter characters percent-encoded, or None if it cannot be linked safely."""
    if not link:
        return None
    link = link.strip()
    try:
        parts = urlsplit(link)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None  # javascript:, data:, relative links: shown as text only
        if not parts.netloc.isascii():
            link = parts._replace(netloc=parts.netloc.encode("idna").decode("ascii")).geturl()
    except (ValueError, UnicodeError):
        return None
    url = quote(link, safe=_URL_SAFE)
    return url if len(url) <= MAX_URL else None


def _when(entry: DigestEntry) -> str:
    """The item's time with its zone (``2024-06-10 09:00 KST``): a reader elsewhere is never an hour off."""
    if entry.published is None:
        return ""
    zone = entry.published.strftime("%Z") or entry.published.strftime("%z")
    return f"{entry.published.strftime(TIME_FORMAT)} {zone}".strip()


def _meta(entry: DigestEntry, table: Mapping[int, str]) -> str:
    source = fit(entry.source, MAX_SOURCE, table)
    when = _when(entry)
    return f"{source} · {when}" if when else source


def _why_lines(entry: DigestEntry, table: Mapping[int, str]) -> list[str]:
    """One line per watchlist: the matched phrases and the anniversary text, escaped."""
    lines = []
    for reason in entry.reasons[:MAX_REASONS]:
        detail = ", ".join(reason.phrases)
        if reason.anniversary:
            detail = f"{detail}; {reason.anniversary}" if detail else reason.anniversary
        head = f"Why ({fit(reason.watchlist, MAX_LIST_NAME, table)})"
        lines.append(f"{head}: {fit(detail, MAX_WHY, table)}" if detail else head)
    extra = len(entry.reasons) - MAX_REASONS
    if extra > 0:
        lines.append(f"+{extra} more watchlists")
    return lines


MAX_ALSO = 5  # other outlets' reports named per entry; more wait for the next message (never dropped)
MAX_ALSO_URL = 400


def _also(entry: DigestEntry) -> tuple[AlsoReported, ...]:
    return entry.also[:MAX_ALSO]


def _carried_hits(entry: DigestEntry) -> list[int]:
    """The hits a chat message names: the entry's own and those of the outlets it lists."""
    return [*entry.hit_ids, *(h for a in _also(entry) for h in a.hit_ids)]


def _also_lines(entry: DigestEntry, table: Mapping[int, str], link: Callable[[str, str], str]) -> list[str]:
    lines = []
    if entry.follow_up and entry.follow_up_of is not None:
        first = entry.follow_up_of
        lines.append(f"Follow-up to “{fit(first.title, MAX_WHY, table)}” ({fit(first.source, MAX_SOURCE, table)}), "
                     "sent earlier")
    elif entry.follow_up:
        lines.append("Follow-up: more reports of a story sent earlier")
    for other in _also(entry):
        source = fit(other.source, MAX_SOURCE, table)
        url = safe_url(other.link)
        lines.append(f"Also reported by {link(url, source) if url and len(url) <= MAX_ALSO_URL else source}")
    return lines


def _summary_line(digest: Digest, part: int, parts: int) -> str:
    """Unescaped: count, time and part. Callers escape it for their target."""
    count = len(digest.entries)
    text = f"{count} new {'hit' if count == 1 else 'hits'} · {digest.generated_at.strftime(TIME_FORMAT)} " \
           f"{digest.timezone}"
    return f"{text} · part {part}/{parts}" if parts > 1 else text


@dataclass(frozen=True, slots=True)
class Placed:
    """One digest entry with its section and the format's rendering of it (built once, reused by every trial)."""

    section: DigestSection
    entry: DigestEntry
    unit: Any


@dataclass(frozen=True, slots=True)
class Group:
    """A run of entries from one digest section inside one body."""

    section: DigestSection
    units: tuple[Any, ...]
    continued: bool  # the section began in an earlier body

    def heading(self, table: Mapping[int, str]) -> str:
        return fit(self.section.title, MAX_HEADING, table) + (" (continued)" if self.continued else "")


@dataclass(frozen=True, slots=True)
class Page:
    """What one body shows: its groups of entries and its place in the split."""

    digest: Digest
    groups: tuple[Group, ...]
    part: int
    parts: int


class Builder(Protocol):
    def __call__(self, digest: Digest, *, delivery_key: str) -> list[bytes]: ...


@dataclass(frozen=True, slots=True)
class ChatFormat:
    """A platform: how to render one entry, assemble a body, and check the body against the platform's limits."""

    name: str
    max_entries: int
    entry: Callable[[DigestEntry], Any]
    body: Callable[[Page], dict[str, Any]]
    fits: Callable[[dict[str, Any]], bool]

    def __call__(self, digest: Digest, *, delivery_key: str) -> list[bytes]:
        # delivery_key is not shown: chat platforms have no idempotency field, and the
        # transport already sends it as webhook-id. Accepted for one signature across formats.
        return [body for body, _hits in self.parts(digest)]

    def parts(self, digest: Digest) -> list[tuple[bytes, list[int]]]:
        """Each body with the hit ids it carries (every hit in exactly one body)."""
        placed = [Placed(s, e, self.entry(e)) for s in digest.sections for e in s.entries]
        chunks = self._paginate(digest, placed)
        return [
            (_encode(self.body(_page(digest, chunk, i, len(chunks)))),
             [h for p in chunk for h in _carried_hits(p.entry)])
            for i, chunk in enumerate(chunks, 1)
        ]

    def _paginate(self, digest: Digest, placed: Sequence[Placed]) -> list[list[Placed]]:
        """Greedy split, checked against the real body. Trial bodies carry the widest "part N/N"
        label, so the final, shorter labels can only make a body smaller."""
        worst = max(len(placed), 1)
        chunks: list[list[Placed]] = []
        current: list[Placed] = []
        for item in placed:
            trial = [*current, item]
            if len(trial) <= self.max_entries and self.fits(self.body(_page(digest, trial, worst, worst))):
                current = trial
                continue
            if not current or not self.fits(self.body(_page(digest, [item], worst, worst))):
                # The per-field caps make every entry fit on its own; reaching here is a bug in a cap.
                raise ValueError(f"{self.name}: one digest entry exceeds the platform's limits")
            chunks.append(current)
            current = [item]
        if current or not chunks:
            chunks.append(current)
        return chunks


def _page(digest: Digest, chunk: Sequence[Placed], part: int, parts: int) -> Page:
    groups: list[Group] = []
    for item in chunk:
        if groups and groups[-1].section is item.section:
            last = groups[-1]
            groups[-1] = Group(last.section, (*last.units, item.unit), last.continued)
        else:
            continued = item.entry is not item.section.entries[0]
            groups.append(Group(item.section, (item.unit,), continued))
    return Page(digest=digest, groups=tuple(groups), part=part, parts=parts)


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# --- Slack: Block Kit -------------------------------------------------------------------------


def _slack_mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: no auto-linking of bare URLs, #channels or @names Slack might otherwise parse.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _slack_entry(entry: DigestEntry) -> dict[str, Any]:
    title = fit(entry.title, MAX_TITLE, _SLACK)
    url = safe_url(entry.link)
    # & is entity-escaped inside the URL too; Slack decodes it back, and it keeps "&lt;" spellings inert.
    line = f"<{url.translate(_SLACK)}|{title}>" if url else f"*{title}*"
    also = _also_lines(entry, _SLACK, lambda u, label: f"<{u.translate(_SLACK)}|{label}>")
    text = "\n".join([line, _meta(entry, _SLACK), *_why_lines(entry, _SLACK), *also])
    return {"type": "section", "text": _slack_mrkdwn(text)}


def _slack_body(page: Page) -> dict[str, Any]:
    digest = page.digest
    summary = _summary_line(digest, page.part, page.parts)
    blocks: list[dict[str, Any]] = [
        # plain_text renders literally, so the header needs no escaping, only the length cap.
        {"type": "header", "text": {"type": "plain_text", "emoji": False,
                                    "text": fit(f"{APP_NAME} · {digest.subscription}", SLACK_MAX_HEADER, {})}},
        {"type": "context", "elements": [_slack_mrkdwn(summary.translate(_SLACK))]},
    ]
    for group in page.groups:
        heading = group.heading(_SLACK)
        blocks.append({"type": "section", "text": _slack_mrkdwn(f"*{heading}*")})
        blocks.extend(group.units)
    # The fallback feeds notifications, so it carries no feed text at all.
    fallback = f"{APP_NAME}: {summary} for {digest.subscription}"
    return {"text": fit(fallback, SLACK_MAX_TEXT, _SLACK), "blocks": blocks}


def _slack_fits(body: dict[str, Any]) -> bool:
    blocks = body["blocks"]
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    texts += [el["text"] for b in blocks if b["type"] == "context" for el in b["elements"]]
    return (len(blocks) <= SLACK_MAX_BLOCKS and units(body["text"]) <= SLACK_MAX_TEXT
            and all(units(t) <= SLACK_MAX_TEXT for t in texts)
            and all(units(b["text"]["text"]) <= SLACK_MAX_HEADER for b in blocks if b["type"] == "header"))


# --- Discord: embeds ----------------------------------------------------------------------------


def _discord_entry(entry: DigestEntry) -> dict[str, Any]:
    embed: dict[str, Any] = {"title": fit(entry.title, MAX_TITLE, _DISCORD)}
    url = safe_url(entry.link)
    if url:
        embed["url"] = url
    also = _also_lines(entry, _DISCORD, lambda u, label: f"[{label}]({u})")
    embed["description"] = "\n".join([_meta(entry, _DISCORD), *_why_lines(entry, _DISCORD), *also])
    return embed


def _discord_body(page: Page) -> dict[str, Any]:
    digest = page.digest
    embeds: list[dict[str, Any]] = []
    for group in page.groups:
        # Footers are plain text (no Markdown), so the section title goes there unescaped.
        footer = {"text": fit(group.section.title, MAX_HEADING, {ord("@"): "@" + ZWSP})}
        embeds.extend({**unit, "footer": footer} for unit in group.units)
    subscription = fit(digest.subscription, MAX_HEADING, _DISCORD)
    content = f"**{APP_NAME}** · {subscription}: {_summary_line(digest, page.part, page.parts)}"
    # allowed_mentions.parse == []: even a mention that slipped past escaping pings nobody.
    return {"content": content, "embeds": embeds, "allowed_mentions": {"parse": []}}


def _discord_fits(body: dict[str, Any]) -> bool:
    embeds = body["embeds"]
    total = 0
    for embed in embeds:
        title, description, footer = embed["title"], embed["description"], embed["footer"]["text"]
        if (units(title) > DISCORD_MAX_TITLE or units(description) > DISCORD_MAX_DESCRIPTION
                or units(footer) > DISCORD_MAX_FOOTER):
            return False
        total += units(title) + units(description) + units(footer)
    return (len(embeds) <= DISCORD_MAX_EMBEDS and total <= DISCORD_MAX_TOTAL
            and units(body["content"]) <= DISCORD_MAX_CONTENT)


# --- Microsoft Teams: Adaptive Card for Workflows webhooks ------------------------------------


def _text_block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _teams_entry(entry: DigestEntry) -> dict[str, Any]:
    title = fit(entry.title, MAX_TITLE, _TEAMS)
    url = safe_url(entry.link)
    items = [
        _text_block(f"[{title}]({url})" if url else title, weight="Bolder"),
        _text_block(_meta(entry, _TEAMS), isSubtle=True, spacing="None"),
    ]
    also = _also_lines(entry, _TEAMS, lambda u, label: f"[{label}]({u})")
    items.extend(_text_block(line, isSubtle=True, size="Small", spacing="None")
                 for line in [*_why_lines(entry, _TEAMS), *also])
    return {"type": "Container", "items": items, "spacing": "Medium"}


def _teams_body(page: Page) -> dict[str, Any]:
    digest = page.digest
    body: list[dict[str, Any]] = [
        _text_block(fit(f"{APP_NAME} · {digest.subscription}", MAX_HEADING, _TEAMS), size="Large", weight="Bolder"),
        _text_block(_summary_line(digest, page.part, page.parts).translate(_TEAMS), isSubtle=True, spacing="None"),
    ]
    for group in page.groups:
        body.append(_text_block(group.heading(_TEAMS), size="Medium", weight="Bolder",
                                separator=True))
        body.extend(group.units)
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    }
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]}


def _teams_fits(body: dict[str, Any]) -> bool:
    return len(_encode(body)) <= TEAMS_MAX_BYTES


# --- Mattermost: Slack-compatible incoming webhook, Markdown text -----------------------------


def _mattermost_entry(entry: DigestEntry) -> str:
    title = fit(entry.title, MAX_TITLE, _MATTERMOST)
    url = safe_url(entry.link)
    link = f"[{title}]({url})" if url else f"**{title}**"
    # Two-space indent keeps the detail lines inside the list item.
    also = _also_lines(entry, _MATTERMOST, lambda u, label: f"[{label}]({u})")
    details = [*_why_lines(entry, _MATTERMOST), *also]
    return "\n".join([f"- {link} — {_meta(entry, _MATTERMOST)}", *(f"  {w}" for w in details)])


def _mattermost_body(page: Page) -> dict[str, Any]:
    digest = page.digest
    subscription = fit(digest.subscription, MAX_HEADING, _MATTERMOST)
    parts = [f"**{APP_NAME}** · {subscription}: {_summary_line(digest, page.part, page.parts)}"]
    for group in page.groups:
        parts.append(f"#### {group.heading(_MATTERMOST)}\n" + "\n".join(group.units))
    return {"text": "\n\n".join(parts), "username": APP_NAME}


def _mattermost_fits(body: dict[str, Any]) -> bool:
    return units(body["text"]) <= MATTERMOST_MAX_TEXT


CHAT_FORMATS: dict[str, ChatFormat] = {
    "slack": ChatFormat("slack", SLACK_MAX_ENTRIES, _slack_entry, _slack_body, _slack_fits),
    "discord": ChatFormat("discord", DISCORD_MAX_EMBEDS, _discord_entry, _discord_body, _discord_fits),
    "teams": ChatFormat("teams", TEAMS_MAX_ENTRIES, _teams_entry, _teams_body, _teams_fits),
    "mattermost": ChatFormat("mattermost", MATTERMOST_MAX_ENTRIES, _mattermost_entry, _mattermost_body,
                             _mattermost_fits),
}


def _chat_format(fmt: str) -> ChatFormat:
    try:
        return CHAT_FORMATS[fmt]
    except KeyError:
        known = ", ".join(sorted(CHAT_FORMATS))
        raise ValueError(f"unknown chat webhook format {fmt!r}; expected one of {known}") from None


def render_chat(digest: Digest, fmt: str, *, delivery_key: str) -> list[bytes]:
    """The JSON bodies to POST, in order; several when the digest exceeds one message's limits."""
    return _chat_format(fmt)(digest, delivery_key=delivery_key)


def render_chat_parts(digest: Digest, fmt: str) -> list[tuple[bytes, list[int]]]:
    """Like :func:`render_chat`, with the hit ids each body carries (one delivery per body)."""
    return _chat_format(fmt).parts(digest)
